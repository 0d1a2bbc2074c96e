#!/usr/bin/env python3
"""A program that ignores SIGTERM: a Cancel can only end it with SIGKILL, after the grace period.

Configuration: ``seconds`` (int, default 30): how long it runs if nobody stops it.

It sets SIGTERM to ignored (``signal.SIG_IGN``, so Python's default "die on SIGTERM" is gone and no handler runs),
records its process id as the result ``pid`` and flushes it at once (a test can then check that the process is
really gone after the cancel), and logs a heartbeat with progress every second. Cancel it: Athanor sends SIGTERM to
the process group, nothing happens, and after ``ATHANOR_CANCEL_GRACE_SECS`` (5 s by default) it sends SIGKILL; the
run ends as cancelled with the heartbeats up to that moment kept.

It never calls ``athanor.cancelled()``: that would install a handler for SIGTERM, and this program is meant to be
deaf to it. Left alone it exits 0 after ``seconds``.

By hand::

    PYTHONPATH=clients/python python3 demos/python/ignore_sigterm.py '{"seconds": 3}'
"""

import os
import signal
import time

import athanor

cfg = athanor.config({"seconds": 30})
seconds = int(cfg["seconds"])

signal.signal(signal.SIGTERM, signal.SIG_IGN)
athanor.result("pid", os.getpid())
athanor.flush()  # a watcher can read the pid right away, not 50 ms later
athanor.info("SIGTERM is ignored; only SIGKILL stops this process", pid=os.getpid(), seconds=seconds)

start = time.monotonic()
for beat in range(1, seconds + 1):
    time.sleep(max(0.0, start + beat - time.monotonic()))  # on a fixed one-second grid, not drifting
    athanor.info("heartbeat %d/%d" % (beat, seconds), beat=beat)
    athanor.progress(beat, seconds, "heartbeat %d" % beat)
athanor.info("not stopped: finished on its own")
