#!/usr/bin/env python3
"""A program that starts a child process and exits at once without waiting for it: Athanor must not leave the child
running.

Configuration:

    child_seconds      (int, default 60) how long the child sleeps if nobody kills it
    child_keeps_pipe   (bool, default false) let the child inherit the protocol pipe (``pass_fds``); Python's
                       ``subprocess`` closes it in children by default
    child_new_session  (bool, default false) start the child in a new session (``setsid``), i.e. outside the
                       program's process group, as a daemon would; it then escapes the group kill and lives on for
                       ``child_seconds`` (this shows why a program must not do that)

It starts ``python3 -c "import time; time.sleep(N)"`` with ``subprocess.Popen`` (not waited for), records the
results ``pid`` and ``child_pid``, logs, and exits 0 at once. The child inherits standard output and error, so those
pipes stay open after the program has exited; with ``child_keeps_pipe`` the protocol pipe does too. When the main
process exits, Athanor kills whatever is left in its process group, so the child dies with it and the pipes close;
the run completes. Check afterwards that ``/proc/<child_pid>`` is gone or shows state ``Z`` (killed, and waiting for
an init that reaps orphans: ``kill -0`` still succeeds on such a zombie).

By hand (no Athanor) nothing kills the child: it sleeps its ``child_seconds`` and then exits on its own::

    PYTHONPATH=clients/python python3 demos/python/orphan_spawner.py '{"child_seconds": 5}'
"""

import os
import subprocess
import sys

import athanor

cfg = athanor.config({"child_seconds": 60, "child_keeps_pipe": False, "child_new_session": False})
keep = ()
if cfg["child_keeps_pipe"] and athanor.inside_athanor():
    keep = (int(os.environ["ATHANOR_FD"]),)

child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(%d)" % int(cfg["child_seconds"])],
    pass_fds=keep,
    start_new_session=bool(cfg["child_new_session"]),
)
athanor.result("pid", os.getpid())
athanor.result("child_pid", child.pid)
athanor.info("started a child and leaving without waiting for it", pid=os.getpid(), child_pid=child.pid,
             child_seconds=cfg["child_seconds"], child_keeps_pipe=bool(keep),
             child_new_session=bool(cfg["child_new_session"]))
sys.exit(0)
