"""Waits to be cancelled; on SIGTERM, logs that it is saving its work and exits cleanly."""
import json
import os
import signal
import sys


def send(**message):
    os.write(3, (json.dumps(message) + "\n").encode())


def stop(signum, frame):
    send(type="log", message="SIGTERM received: saving a checkpoint")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
send(type="progress", current=0, message="waiting to be cancelled")
while True:
    signal.pause()
