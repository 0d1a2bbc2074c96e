"""Writes every kind of bad protocol line, an oversized stdout line, then valid output that must still arrive."""
import os
import sys

TWO_MIB = 2 * 1024 * 1024


def raw(line):
    os.write(3, line.encode() + b"\n")


raw("")  # blank lines are skipped without a warning
raw(" \t ")
raw("epoch 3 done")
raw("[1, 2, 3]")
raw('{"type":"metric","key":"loss","value":0.3}')
raw('{"type":"result","key":"accuracy"}')
raw('{"type":"log","message":"' + "x" * TWO_MIB + '"}')
raw('{"type":"log","message":"listed metadata","metadata":[1,2]}')
raw('{"type":"result","key":"","value":1}')
raw('{"type":"log","message":"null metadata counts as none","metadata":null}')
os.write(3, b'{"type":"result","key":"crlf","value":true}\r\n')
raw('{"type":"result","key":"after_garbage","value":true}')
raw('{"type":"log","level":"info","message":"protocol still works"}')

sys.stdout.write("y" * TWO_MIB + "\n")
sys.stdout.write("stdout still works\n")
sys.stdout.flush()
