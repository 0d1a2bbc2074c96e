#!/usr/bin/env python3
"""A program that dies in the middle of writing a protocol line: Athanor must keep everything before it, turn the
half line into a ``warn`` log, and fail the run with "exited with status 1".

Configuration: ``lines`` (int, default 1000): how many ordinary log lines to send first.

It logs ``lines`` lines through the client, flushes them, writes the first half of a ``result`` message straight to
the protocol pipe (no newline, flushed: a raw ``os.write``), says on stderr that it is about to die, and ends at once
with ``os._exit(1)``.

Why ``os._exit(1)`` and not ``os.abort()``: ``os._exit`` ends the process immediately, without running ``atexit``
handlers, ``finally`` blocks or flushing any Python buffer, so nothing can complete or follow the half line, which is
exactly a crash mid-write as the reader sees it. It also gives a fixed, predictable outcome (exit status 1, the
stderr line shown in the error). ``os.abort()`` would raise SIGABRT instead: "killed by signal SIGABRT", plus a core
dump written (or handed to a crash collector) on many machines, which is slow and leaves files behind.

By hand (no Athanor) the half line goes to standard output instead, so you can see it::

    PYTHONPATH=clients/python python3 demos/python/crash_midline.py '{"lines": 3}'
"""

import os
import sys

import athanor

HALF_LINE = b'{"type":"result","key":"never_fin'

cfg = athanor.config({"lines": 1000})
for i in range(int(cfg["lines"])):
    athanor.log("line %d of %d" % (i + 1, cfg["lines"]), line=i + 1)
athanor.flush()  # everything above is complete and on the pipe before the half line

if athanor.inside_athanor():
    os.write(int(os.environ["ATHANOR_FD"]), HALF_LINE)
else:
    sys.stdout.write(HALF_LINE.decode())
    sys.stdout.flush()
sys.stderr.write("crash_midline: dying in the middle of a protocol line\n")
sys.stderr.flush()
os._exit(1)
