"""Ignores SIGTERM, starts a grandchild that ignores it too, reports both pids, then never stops by itself."""
import json
import os
import signal
import subprocess
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
# An ignored signal stays ignored across exec, so the grandchild cannot be stopped politely either.
grandchild = subprocess.Popen(["sleep", "1000"])
pids = {"child": os.getpid(), "grandchild": grandchild.pid}
os.write(3, (json.dumps({"type": "result", "key": "pids", "value": pids}) + "\n").encode())
while True:
    time.sleep(1)
