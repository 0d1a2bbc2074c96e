"""Tests of the Athanor Python client. Standard library only:

    python3 -m unittest discover clients/python
"""

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from contextlib import redirect_stdout
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import athanor  # noqa: E402 - after the path is set

PROTOCOL_ENV = ("ATHANOR_PROTOCOL", "ATHANOR_RUN_ID", "ATHANOR_EXPERIMENT", "ATHANOR_CONFIG", "ATHANOR_FD")


def clean_env(**extra):
    """The current environment without any ATHANOR_* variable, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in PROTOCOL_ENV}
    env["PYTHONPATH"] = HERE
    env.update(extra)
    return env


def run_child(code, env, fd3=True, timeout=30, read_after=None):
    """Run ``code`` in a new interpreter with a pipe on file descriptor 3 (exactly 3, as Athanor does), reading the
    pipe only after ``read_delay`` seconds; return (exit status, protocol lines parsed as JSON, stdout, stderr)."""
    read_end, write_end = os.pipe()

    def put_pipe_on_fd3():
        os.dup2(write_end, 3)

    try:
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=put_pipe_on_fd3 if fd3 else None,
            pass_fds=(3,) if fd3 else (),
        )
    finally:
        os.close(write_end)
    if read_after is not None:
        # The child says on stderr when the pipe may be read (e.g. once its write is blocked on a full pipe).
        said = child.stderr.readline()
        assert said == read_after, "the child did not get to %r: %r" % (read_after, said + child.stderr.read())
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    stdout, stderr = child.communicate(timeout=timeout)
    lines = raw.decode("utf-8").splitlines()
    return child.returncode, [json.loads(line) for line in lines], stdout.decode(), stderr.decode()


class Pipe:
    """A pipe whose write end is ATHANOR_FD for this process, drained by a thread."""

    def __init__(self):
        self.read_end, self.write_end = os.pipe()
        self.data = bytearray()
        self.lock = threading.Lock()
        # Notified on every chunk the drain thread receives, so waiters wake on data instead of polling.
        self.arrived = threading.Condition(self.lock)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while True:
            chunk = os.read(self.read_end, 65536)
            if not chunk:
                return
            with self.arrived:
                self.data += chunk
                self.arrived.notify_all()

    def texts(self):
        """The complete lines received so far, as text."""
        with self.lock:
            return self._texts()

    def _texts(self):
        complete = bytes(self.data[: self.data.rfind(b"\n") + 1])
        return complete.decode("utf-8").split("\n")[:-1]

    def lines(self):
        """The complete lines received so far, parsed."""
        return [json.loads(line) for line in self.texts()]

    def wait_for(self, count, timeout=2.0):
        """The lines received once there are `count` of them (or all there are after `timeout` seconds)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self._texts()) >= count, timeout)
        return self.lines()

    def until_marker(self, timeout=5.0, parse=True):
        """Write a marker line behind whatever is in the pipe, wait for it, and return the lines before it (parsed,
        or as text)."""
        marker = '{"type":"test-marker"}'
        os.write(self.write_end, marker.encode() + b"\n")
        with self.arrived:
            if not self.arrived.wait_for(lambda: self._texts()[-1:] == [marker], timeout):
                raise AssertionError("the marker never came through the pipe")
            texts = self._texts()
            del self.data[-len(marker) - 1:]
        return [json.loads(text) for text in texts[:-1]] if parse else texts[:-1]

    def close(self):
        os.close(self.write_end)
        self.thread.join(5)
        os.close(self.read_end)


class InProcess(unittest.TestCase):
    """Base: the client talks to a pipe of this process (ATHANOR_FD set to its write end)."""

    def setUp(self):
        athanor._reset_for_tests()
        self.pipe = Pipe()
        self.env = mock.patch.dict(os.environ, {"ATHANOR_FD": str(self.pipe.write_end), "ATHANOR_PROTOCOL": "1"})
        self.env.start()

    def tearDown(self):
        athanor._reset_for_tests()
        self.env.stop()
        self.pipe.close()

    def sent(self):
        """Everything the client wrote so far, as parsed lines (flushes, then waits for an end marker)."""
        athanor.flush()
        return self.pipe.until_marker()


class MessagesOnFd3(unittest.TestCase):
    def test_every_message_is_one_json_object_per_line_of_the_documented_shape(self):
        code = """
import athanor
assert athanor.inside_athanor()
athanor.log("plain")
athanor.debug("with metadata", step=3, tags=["a", "b"])
athanor.log("a warning", level="warn")
athanor.error("an error", code=7)
athanor.result("accuracy", 0.93)
athanor.result("matrix", {"rows": [[1, 2], [3, 4]], "label": "é ✓"})
athanor.series("loss", 12, 0.25)
athanor.progress(3, 10, "three of ten")
athanor.progress(4)
athanor.fail(ValueError("it broke"))
print("stdout stays stdout")
"""
        status, lines, stdout, stderr = run_child(code, clean_env(ATHANOR_FD="3", ATHANOR_PROTOCOL="1"))
        self.assertEqual(status, 0, stderr)
        self.assertEqual(stdout, "stdout stays stdout\n")
        self.assertEqual(lines, [
            {"type": "log", "level": "info", "message": "plain"},
            {"type": "log", "level": "debug", "message": "with metadata", "metadata": {"step": 3, "tags": ["a", "b"]}},
            {"type": "log", "level": "warn", "message": "a warning"},
            {"type": "log", "level": "error", "message": "an error", "metadata": {"code": 7}},
            {"type": "result", "key": "accuracy", "value": 0.93},
            {"type": "result", "key": "matrix", "value": {"rows": [[1, 2], [3, 4]], "label": "é ✓"}},
            {"type": "result", "key": "loss/12", "value": 0.25},
            {"type": "progress", "current": 3, "total": 10, "message": "three of ten"},
            {"type": "progress", "current": 4},
            {"type": "fail", "error": "it broke"},
        ])

    def test_what_is_buffered_is_written_at_exit(self):
        code = "import athanor\nfor i in range(1000): athanor.log(f'line {i}')\n"
        status, lines, _, stderr = run_child(code, clean_env(ATHANOR_FD="3"))
        self.assertEqual(status, 0, stderr)
        self.assertEqual([line["message"] for line in lines], ["line %d" % i for i in range(1000)])

    def test_a_different_protocol_version_is_refused(self):
        code = "import athanor\nathanor.log('x')\n"
        status, lines, _, stderr = run_child(code, clean_env(ATHANOR_FD="3", ATHANOR_PROTOCOL="2"))
        self.assertEqual(status, 1)
        self.assertEqual(lines, [])
        self.assertIn("protocol 2", stderr)

    def test_a_closed_descriptor_falls_back_to_stdout(self):
        code = "import athanor\nathanor.log('x')\nprint(athanor.inside_athanor())\n"
        status, lines, stdout, stderr = run_child(code, clean_env(ATHANOR_FD="3"), fd3=False)
        self.assertEqual(status, 0, stderr)
        self.assertEqual(stdout, "[info] x\nFalse\n")
        self.assertIn("ATHANOR_FD", stderr)


class Buffering(InProcess):
    def test_a_lone_line_is_flushed_by_the_timer_without_any_further_call(self):
        athanor.log("alone")
        lines = self.pipe.wait_for(1, timeout=1.0)
        self.assertEqual(lines, [{"type": "log", "level": "info", "message": "alone"}])

    def test_fail_is_written_at_once(self):
        with mock.patch.object(athanor, "FLUSH_INTERVAL", 60.0):  # the timer cannot be what flushes
            athanor.log("before")
            athanor.fail("broken")
            lines = self.pipe.wait_for(2)
        self.assertEqual(lines[-1], {"type": "fail", "error": "broken"})
        self.assertEqual(len(lines), 2)

    def test_many_threads_never_interleave_lines(self):
        def worker(n):
            for i in range(5000):
                athanor.info("t%d line %d" % (n, i), thread=n)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        lines = self.sent()
        self.assertEqual(len(lines), 40000)
        for n in range(8):
            mine = [line["message"] for line in lines if line["metadata"]["thread"] == n]
            self.assertEqual(mine, ["t%d line %d" % (n, i) for i in range(5000)])

    @unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
    def test_parent_and_forked_child_both_report_whole_lines(self):
        athanor.log("before fork")
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's test machinery
            try:
                for i in range(3000):
                    athanor.log("child %d %s" % (i, "x" * (i % 200)))
                athanor.flush()
            finally:
                os._exit(0)
        for i in range(3000):
            athanor.log("parent %d %s" % (i, "y" * (i % 200)))
        athanor.flush()
        os.waitpid(pid, 0)
        lines = self.pipe.wait_for(6001)
        messages = [line["message"] for line in lines]
        self.assertEqual(messages.count("before fork"), 1)
        self.assertEqual(len([m for m in messages if m.startswith("child ")]), 3000)
        self.assertEqual(len([m for m in messages if m.startswith("parent ")]), 3000)


def log_line(message):
    return {"type": "log", "level": "info", "message": message}


def short(lines):
    """Protocol lines in brief, so that a failed comparison of long lines stays readable: "log x*100000"."""
    def text(value):
        return "%s*%d" % (value[0], len(value)) if len(value) > 50 and value == value[0] * len(value) else value
    return ["%s %s" % (line["type"], text(line.get("message", line.get("error", line.get("key", "")))))
            for line in lines]


class SignalHandlers(InProcess):
    """A signal handler runs in the main thread between two bytecodes, possibly in the middle of a write; the lock is
    re-entrant, so a handler that reports gets in. Its lines must wait for the line being written to end."""

    def partial_writes(self, handler):
        """An ``os.write`` that writes 10 bytes at a time and runs ``handler`` once, after the first partial write,
        as a signal arriving during a write on a full pipe would."""
        real_write = os.write
        state = {"handled": False}

        def write(fd, data):
            written = real_write(fd, bytes(data[:10]))
            if not state["handled"]:
                state["handled"] = True
                handler()
            return written

        return mock.patch.object(os, "write", write)

    def test_a_handler_that_reports_during_a_write_waits_for_the_line_to_end(self):
        def handler():
            athanor.fail("from a handler")
            athanor.log("logged by the handler")
            athanor.flush()

        for i in range(5):
            athanor.log("line %d" % i)
        with self.partial_writes(handler):
            athanor.flush()
        self.assertEqual(self.sent(), [log_line("line %d" % i) for i in range(5)]
                         + [{"type": "fail", "error": "from a handler"}, log_line("logged by the handler")])

    def test_a_handler_that_reports_during_a_write_forced_by_size_too(self):
        def handler():
            athanor.log("y" * 100000)  # over the 64 KiB threshold as well: a nested forced flush
            athanor.fail("from a handler")

        with self.partial_writes(handler):
            athanor.log("x" * 100000)  # over the 64 KiB threshold: written by the call itself
        self.assertEqual(short(self.sent()), ["log x*100000", "log y*100000", "fail from a handler"])

    def test_a_handler_that_raises_mid_write_costs_one_torn_line_and_no_repeated_lines(self):
        real_write = os.write

        def write(fd, data):  # a SIGTERM handler that reports, then exits, after part of the chunk went out
            real_write(fd, bytes(data[:25]))
            athanor.fail("terminated")
            raise SystemExit(1)

        for i in range(5):
            athanor.log("line %d" % i)
        with mock.patch.object(os, "write", write), self.assertRaises(SystemExit):
            athanor.flush()
        athanor.log("after")  # say, from a finally block; the next flush (at exit, here now) ends the torn line
        athanor.flush()
        texts = self.pipe.until_marker(parse=False)
        self.assertEqual(texts[0], json.dumps(log_line("line 0"), separators=(",", ":"))[:25])
        self.assertEqual([json.loads(text) for text in texts[1:]],
                         [{"type": "fail", "error": "terminated"}, log_line("after")])

    def test_a_real_signal_during_a_blocked_write(self):
        code = """
import athanor, os, signal, threading
def handler(signum, frame):
    athanor.fail("from a signal handler")
    os.write(2, b"handled\\n")  # only now does the parent start reading the pipe

signal.signal(signal.SIGUSR1, handler)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
athanor.log("x" * 300000)  # over the 64 KiB a pipe holds: the write blocks until the handler has run
athanor.flush()
athanor.log("after")
"""
        status, lines, _, stderr = run_child(code, clean_env(ATHANOR_FD="3", ATHANOR_PROTOCOL="1"), read_after=b"handled\n")
        self.assertEqual(status, 0, stderr)
        self.assertEqual(short(lines), ["log x*300000", "fail from a signal handler", "log after"])


@unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
class ForkedChildren(unittest.TestCase):
    """A forked child usually ends with os._exit (multiprocessing does): no atexit, no flusher thread to wait for.
    So it writes every message at once."""

    def test_a_child_that_ends_with_os_exit_loses_nothing(self):
        code = """
import athanor, os
athanor.log("parent before")
pid = os.fork()
if pid == 0:
    athanor.log("child")
    athanor.result("child_result", 1)
    os._exit(0)
os.waitpid(pid, 0)
athanor.log("parent after")
"""
        status, lines, _, stderr = run_child(code, clean_env(ATHANOR_FD="3", ATHANOR_PROTOCOL="1"))
        self.assertEqual(status, 0, stderr)
        self.assertEqual(lines, [log_line("parent before"), log_line("child"),
                                 {"type": "result", "key": "child_result", "value": 1}, log_line("parent after")])

    def test_multiprocessing_workers_report_even_when_terminated(self):
        # The parent never reports before forking, so the children choose their sink themselves; the pool's
        # workers are terminated (SIGTERM) on leaving the block, and Process children end with os._exit.
        code = """
import athanor, multiprocessing, os, time

def square(n):
    athanor.result("square/%d" % n, n * n)
    return n

def stay(logged):
    athanor.log("worker %d" % os.getpid())
    logged.set()
    time.sleep(60)

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        assert sorted(pool.map(square, range(6))) == list(range(6))
    worker = context.Process(target=square, args=(6,))
    worker.start()
    worker.join()
    logged = context.Event()
    sleeper = context.Process(target=stay, args=(logged,))
    sleeper.start()
    assert logged.wait(30), "the worker never logged"
    sleeper.terminate()
    sleeper.join()
    athanor.log("done")
"""
        status, lines, _, stderr = run_child(code, clean_env(ATHANOR_FD="3", ATHANOR_PROTOCOL="1"))
        self.assertEqual(status, 0, stderr)
        results = sorted(line["key"] for line in lines if line["type"] == "result")
        self.assertEqual(results, sorted("square/%d" % n for n in range(7)))
        self.assertEqual(len([line for line in lines if line.get("message", "").startswith("worker ")]), 1)
        self.assertEqual(lines[-1], log_line("done"))

    def test_the_parent_stays_buffered(self):
        athanor._reset_for_tests()
        try:
            with mock.patch.dict(os.environ, {"ATHANOR_FD": "1", "ATHANOR_PROTOCOL": "1"}):
                pid = os.fork()
                if pid == 0:  # the child: answer with the exit status, never return into the test machinery
                    try:
                        os._exit(0 if athanor._open().unbuffered else 3)
                    finally:
                        os._exit(4)
                _, status = os.waitpid(pid, 0)
                self.assertEqual(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode")
                                 else status >> 8, 0, "the child writes unbuffered")
                self.assertFalse(athanor._open().unbuffered)
        finally:
            athanor._reset_for_tests()


class Encoding(InProcess):
    def test_nan_and_infinities_become_null(self):
        athanor.result("nan", float("nan"))
        athanor.result("nested", {"a": [1.0, float("inf"), -float("inf")], "b": 2})
        athanor.info("metadata too", value=float("nan"))
        self.assertEqual(self.sent(), [
            {"type": "result", "key": "nan", "value": None},
            {"type": "result", "key": "nested", "value": {"a": [1.0, None, None], "b": 2}},
            {"type": "log", "level": "info", "message": "metadata too", "metadata": {"value": None}},
        ])

    def test_values_json_cannot_encode_fall_back(self):
        class ArrayLike:
            def tolist(self):
                return [1, 2, float("nan")]

        class Thing:
            def __str__(self):
                return "a thing"

        loop = []
        loop.append(loop)
        athanor.result("array", ArrayLike())
        athanor.result("thing", {"x": Thing(), (1, 2): "tuple key"})
        athanor.result("cycle", loop)
        athanor.log(Thing())
        self.assertEqual(self.sent(), [
            {"type": "result", "key": "array", "value": [1, 2, None]},
            {"type": "result", "key": "thing", "value": {"x": "a thing", "(1, 2)": "tuple key"}},
            {"type": "result", "key": "cycle", "value": ["<cycle>"]},
            {"type": "log", "level": "info", "message": "a thing"},
        ])

    def test_control_characters_and_lone_surrogates_keep_lines_valid(self):
        athanor.log('quote " backslash \\ newline \n tab \t nul \0 surrogate \udcff')
        (line,) = self.sent()
        self.assertEqual(line["message"], 'quote " backslash \\ newline \n tab \t nul \0 surrogate ?')

    def test_an_oversized_log_message_is_shortened_under_the_cap(self):
        athanor.log("é" * athanor.MAX_LINE_BYTES, big=True)
        lines = self.sent()
        raw = bytes(self.pipe.data).split(b"\n")[0]
        self.assertLessEqual(len(raw), athanor.MAX_LINE_BYTES)
        self.assertIn("truncated", lines[0]["message"])
        self.assertEqual(lines[0]["metadata"], {"big": True})

    def test_an_oversized_result_is_refused(self):
        with self.assertRaises(ValueError):
            athanor.result("huge", "x" * athanor.MAX_LINE_BYTES)
        self.assertEqual(self.sent(), [])

    def test_bad_arguments_are_refused_at_the_call(self):
        with self.assertRaises(ValueError):
            athanor.log("x", level="warning")
        with self.assertRaises(ValueError):
            athanor.series("loss", 1.5, 0.1)
        with self.assertRaises(ValueError):
            athanor.series("loss", -1, 0.1)
        with self.assertRaises(ValueError):
            athanor.progress(-1)
        athanor.series("loss", 2.0, 0.1)  # a whole float is fine
        self.assertEqual(self.sent(), [{"type": "result", "key": "loss/2", "value": 0.1}])


class OutsideAthanor(unittest.TestCase):
    def setUp(self):
        athanor._reset_for_tests()
        self.env = mock.patch.dict(os.environ, {}, clear=False)
        self.env.start()
        for key in PROTOCOL_ENV:
            os.environ.pop(key, None)

    def tearDown(self):
        athanor._reset_for_tests()
        self.env.stop()

    def test_messages_are_printed_readably(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertFalse(athanor.inside_athanor())
            athanor.log("hello")
            athanor.warn("careful", free_gb=1.5)
            athanor.result("accuracy", 0.93)
            athanor.result("table", {"a": [1, None]})
            athanor.series("loss", 3, 0.5)
            athanor.progress(3, 10, "message")
            athanor.progress(7)
            athanor.fail("broken")
        self.assertEqual(out.getvalue().splitlines(), [
            "[info] hello",
            '[warn] careful {"free_gb": 1.5}',
            "result accuracy = 0.93",
            'result table = {"a": [1, null]}',
            "result loss/3 = 0.5",
            "progress 3/10 message",
            "progress 7",
            "fail: broken",
        ])
        self.assertIsNone(athanor.run_id())


class Config(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.env = mock.patch.dict(os.environ, {}, clear=False)
        self.env.start()
        os.environ.pop("ATHANOR_CONFIG", None)

    def tearDown(self):
        self.env.stop()
        self.dir.cleanup()

    def write(self, name, value):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as file:
            json.dump(value, file)
        return path

    def test_athanor_config_wins_over_the_command_line(self):
        from_athanor = self.write("athanor.json", {"lr": 0.5})
        from_argv = self.write("argv.json", {"lr": 0.1})
        os.environ["ATHANOR_CONFIG"] = from_athanor
        with mock.patch.object(sys, "argv", ["exp.py", from_argv]):
            self.assertEqual(athanor.config({"lr": 1, "epochs": 3}), {"lr": 0.5, "epochs": 3})

    def test_the_first_argument_is_a_file_or_inline_json(self):
        path = self.write("argv.json", {"lr": 0.1})
        with mock.patch.object(sys, "argv", ["exp.py", path, "ignored"]):
            self.assertEqual(athanor.config({"epochs": 3}), {"lr": 0.1, "epochs": 3})
        with mock.patch.object(sys, "argv", ["exp.py", '{"epochs": 9}']):
            self.assertEqual(athanor.config({"epochs": 3}), {"epochs": 9})

    def test_nothing_gives_the_defaults_and_nested_objects_merge(self):
        with mock.patch.object(sys, "argv", ["exp.py"]):
            self.assertEqual(athanor.config(), {})
            defaults = {"optim": {"lr": 1, "beta": 0.9}, "layers": [1, 2]}
            self.assertEqual(athanor.config(defaults), defaults)
        path = self.write("partial.json", {"optim": {"lr": 0.01}, "layers": [7]})
        with mock.patch.object(sys, "argv", ["exp.py", path]):
            merged = athanor.config(defaults)
        self.assertEqual(merged, {"optim": {"lr": 0.01, "beta": 0.9}, "layers": [7]})
        self.assertEqual(defaults, {"optim": {"lr": 1, "beta": 0.9}, "layers": [1, 2]})  # not changed

    def test_a_configuration_that_is_not_an_object_is_refused(self):
        os.environ["ATHANOR_CONFIG"] = self.write("list.json", [1, 2])
        with self.assertRaises(ValueError):
            athanor.config()


class Cancel(unittest.TestCase):
    CHILD = """
import athanor, sys, time
armed = {arm}
if armed:
    athanor.cancelled()
print("ready", flush=True)
for step in range(500):
    if armed and athanor.cancelled():
        athanor.result("stopped_at", step)
        break
    time.sleep(0.01)
else:
    athanor.result("stopped_at", None)
"""

    def start(self, arm):
        child = subprocess.Popen([sys.executable, "-c", self.CHILD.format(arm=arm)], env=clean_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(child.stdout.readline(), b"ready\n")
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
        return child.returncode, stdout.decode(), stderr.decode()

    def test_after_the_first_call_sigterm_sets_the_flag(self):
        status, stdout, stderr = self.start(arm=True)
        self.assertEqual(status, 0, stderr)
        self.assertRegex(stdout, r"^result stopped_at = \d+\n$")

    def test_a_program_that_never_asks_dies_on_sigterm(self):
        status, stdout, _ = self.start(arm=False)
        self.assertEqual(status, -signal.SIGTERM)
        self.assertEqual(stdout, "")

    def test_the_flag_is_false_until_sigterm(self):
        athanor._reset_for_tests()
        try:
            self.assertFalse(athanor.cancelled())
            # raise_signal delivers in this thread; Python runs the handler before the next statement.
            signal.raise_signal(signal.SIGTERM)
            self.assertTrue(athanor.cancelled())
        finally:
            athanor._reset_for_tests()
        self.assertEqual(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)


if __name__ == "__main__":
    unittest.main()
