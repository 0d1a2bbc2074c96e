"""Report logs, results, progress and failure to Athanor from any Python program.

Athanor runs a *command experiment* (a program declared in ``athanor.toml``) as a child process, once per run. The
program learns its configuration from a JSON file and talks back over a pipe, one JSON object per line; the whole
protocol is in ``docs/protocol.md``. This module is a client for that protocol: one file, standard library only,
Python 3.8 or newer. Copy it next to your program or ``pip install ./clients/python``.

A complete experiment::

    import athanor

    cfg = athanor.config({"epochs": 10, "lr": 0.1})       # the run's configuration, with your defaults underneath
    for epoch in range(cfg["epochs"]):
        if athanor.cancelled():                            # the user pressed Cancel: stop now, keep what you have
            athanor.warn("cancelled", epoch=epoch)
            break
        loss = train_one_epoch(cfg["lr"])
        athanor.series("loss", epoch, loss)                # results loss/0, loss/1, ... charted on the compare page
        athanor.progress(epoch + 1, cfg["epochs"], f"loss {loss:.3f}")
        athanor.info("epoch done", epoch=epoch, loss=loss) # a log line with structured metadata
    athanor.result("final_loss", loss)                     # any JSON value under a key

The same script runs by hand: outside Athanor (no ``ATHANOR_FD`` in the environment) every call prints a readable
line to standard output instead (``[info] epoch done {"epoch": 0, "loss": 0.9}``, ``result final_loss = 0.1``,
``progress 3/10 loss 0.412``), and ``config()`` reads the JSON file named by the first command-line argument::

    python3 train.py                  # the defaults
    python3 train.py my-config.json   # a configuration file (or inline JSON: python3 train.py '{"epochs": 3}')

How a run ends: exit status 0 means *completed* unless :func:`fail` was called; :func:`fail`, a non-zero status or a
signal means *failed*; a cancel or a timeout overrides all of these. Call :func:`fail` to give the failure a readable
reason (it does not exit: exit afterwards).

Throughput: messages are buffered and written to the pipe in large chunks, at least every 50 ms while there is
something to write, when about 64 KiB have gathered, at exit, and at once for :func:`fail` or :func:`flush`. If
Athanor reads more slowly than you write, writes block rather than let memory grow. A process killed outright
(SIGKILL, ``os._exit``, a crash in native code) loses what it had buffered, at most the last 50 ms; call
:func:`flush` before anything you expect might kill you.

Every function is thread-safe, and safe to call from a signal handler: a message sent by a handler that interrupted
a write goes out after that write, never in the middle of a line. After ``os.fork()`` (``multiprocessing`` with the
*fork* start method) parent and child both keep reporting, and whole lines never interleave. The child writes each
message at once, unbuffered (one ``write`` per message), because it usually ends with ``os._exit``, which runs no
exit handlers: a worker loses nothing it reported, at the cost of a system call per message. Processes started with
``subprocess`` do not inherit the pipe (``close_fds=True`` is Python's default): pass
``pass_fds=(int(os.environ["ATHANOR_FD"]),)`` if one should report too.
"""

import atexit
import json
import math
import os
import signal
import sys
import threading
import time
from json.encoder import encode_basestring as _quote  # the C implementation when available: a JSON string literal

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_LINE_BYTES",
    "config",
    "log",
    "debug",
    "info",
    "warn",
    "error",
    "result",
    "series",
    "progress",
    "fail",
    "flush",
    "cancelled",
    "run_id",
    "inside_athanor",
]

__version__ = "1.0.0"

#: The protocol version this client speaks. Under any other, its first message raises ``RuntimeError`` (see
#: ``docs/protocol.md``, section 8).
PROTOCOL_VERSION = 1

#: The longest line Athanor accepts on the protocol pipe, in bytes (the newline not counted). Longer log messages
#: are shortened by this client; a longer result is refused with ``ValueError``.
MAX_LINE_BYTES = 1 << 20

#: How long a message may wait in the buffer, in seconds.
FLUSH_INTERVAL = 0.05

_LEVELS = ("debug", "info", "warn", "error")
_LOG_PREFIX = {level: '{"type":"log","level":"%s","message":' % level for level in _LEVELS}
_FLUSH_CHARS = 64 * 1024  # buffered characters that trigger an immediate write
_SAFE_CHARS = MAX_LINE_BYTES // 4 - 16  # a line this long or shorter is under the cap, whatever its characters
_PIPE_BUF = 4096  # POSIX: writes to a pipe up to this size are atomic
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_READABLE = json.JSONEncoder(ensure_ascii=False, allow_nan=False)  # for printing by hand: spaces after , and :

# All state sits behind one re-entrant lock (re-entrant so that a signal handler that logs cannot deadlock the main
# thread it interrupted).
_lock = threading.RLock()
_sink = None  # _PipeSink or _TextSink, chosen on the first message
_forked = False  # set in both processes once this process forks: from then on writes are made atomic per line
_fork_child = False  # set in a child made by os.fork(): it writes every message at once (it may end with os._exit)
_cancel_flag = False
_cancel_armed = False
_previous_sigterm = None


# --------------------------------------------------------------------------------------------------- configuration


def config(defaults=None):
    """Return this run's configuration as a ``dict``, with ``defaults`` underneath.

    Where it comes from, first match wins:

    1. ``ATHANOR_CONFIG``: inside Athanor, the path of a JSON file holding the run's configuration, already checked
       against the experiment's schema with every schema default filled in. Command-line arguments are ignored.
    2. The first command-line argument, when the program is run by hand: the path of a JSON file, or JSON text if it
       starts with ``{`` (``python3 exp.py '{"epochs": 3}'``).
    3. Nothing: ``{}``.

    ``defaults`` (a ``dict``) fills what that source leaves out; nested objects are merged key by key, any other
    value (lists included) is replaced whole. Each call reads the source again and returns a new ``dict``.

    Raises ``ValueError`` when the source is not a JSON object, ``OSError`` when the file cannot be read.
    """
    path = os.environ.get("ATHANOR_CONFIG")
    if path:
        loaded = _read_json(path, "ATHANOR_CONFIG")
    elif len(sys.argv) > 1 and sys.argv[1].lstrip().startswith("{"):
        try:
            loaded = json.loads(sys.argv[1])
        except ValueError as err:
            raise ValueError("the first argument looks like JSON but is not: %s" % err) from None
    elif len(sys.argv) > 1:
        loaded = _read_json(sys.argv[1], "the first command-line argument")
    else:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ValueError("the configuration must be a JSON object, got %s" % type(loaded).__name__)
    return _merge(_copy(defaults or {}), loaded)


def _read_json(path, origin):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except ValueError as err:
        raise ValueError("configuration file %r (from %s) is not valid JSON: %s" % (path, origin, err)) from None


def _copy(value):
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = _copy(value)
    return base


# ------------------------------------------------------------------------------------------------------- reporting


def log(message, level="info", **metadata):
    """Append a log line to the run: ``message`` (any value, turned into text) at ``level``.

    ``level`` is one of ``"debug"``, ``"info"``, ``"warn"``, ``"error"`` (anything else raises ``ValueError``).
    Keyword arguments become the line's structured metadata, shown beside it on the run page::

        athanor.log("batch done", batch=12, loss=0.31)
        athanor.log("disk almost full", level="warn", free_gb=1.2)

    A message longer than the 1 MiB line cap is shortened, with a note saying by how much. Logging never fails the
    run: a ``warn`` or ``error`` line is just a line.
    """
    sink = _sink or _open()
    sink.log(level, message, metadata)


def debug(message, **metadata):
    """``log(message, level="debug", **metadata)``: detail for whoever debugs the experiment."""
    sink = _sink or _open()
    sink.log("debug", message, metadata)


def info(message, **metadata):
    """``log(message, level="info", **metadata)``: normal progress."""
    sink = _sink or _open()
    sink.log("info", message, metadata)


def warn(message, **metadata):
    """``log(message, level="warn", **metadata)``: something odd that did not stop the run."""
    sink = _sink or _open()
    sink.log("warn", message, metadata)


def error(message, **metadata):
    """``log(message, level="error", **metadata)``: something went wrong. Only a log line; to fail the run, see
    :func:`fail`."""
    sink = _sink or _open()
    sink.log("error", message, metadata)


def result(key, value):
    """Record a result: any JSON value under a ``key`` (``"accuracy"``, ``"confusion_matrix"``...).

    Values are what ``json`` can encode: numbers, strings, booleans, ``None``, lists and dicts of them, nested as
    deep as you like. Objects with a ``tolist()`` method (NumPy arrays and scalars) become lists or numbers; NaN and
    infinities become ``null`` (JSON has no such numbers); anything else becomes its ``str()``.

    A key may be recorded more than once: every record is kept, and the comparison page uses the latest. Keys of the
    form ``name/step`` build a series; see :func:`series`.

    Raises ``ValueError`` if the encoded message is over the 1 MiB line cap: split such a value over several keys.
    """
    sink = _sink or _open()
    sink.result(str(key), value)


def series(name, step, value):
    """Record one point of a series: the result ``name/step``, e.g. ``series("loss", 12, 0.31)`` records
    ``loss/12``. The compare page charts the points of a series against their step, one line per run.

    ``step`` must be a whole number 0 or above (``ValueError`` otherwise); ``value`` should be a number to be charted.
    """
    try:
        whole = int(step)
        if whole != step:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError("series step must be a whole number, got %r" % (step,)) from None
    if whole < 0:
        raise ValueError("series step must be 0 or above, got %r" % (step,))
    if not name:
        raise ValueError("series name must not be empty")
    result("%s/%d" % (name, whole), value)


def progress(current, total=None, message=None):
    """Report progress: ``current`` of ``total`` (both whole numbers, 0 or above), with an optional short message
    (cut at 4,096 characters).

    Progress is shown live and not stored: only the latest counts, so report as often as you like::

        athanor.progress(i + 1, len(items), f"item {items[i]}")
        athanor.progress(files_seen)                 # no total: a count without a bar
    """
    current = _count(current, "current")
    if total is not None:
        total = _count(total, "total")
    if message is not None and not isinstance(message, str):
        message = str(message)
    sink = _sink or _open()
    sink.progress(current, total, message)


def fail(error):
    """Record why the run failed, and send it at once. It does not exit: end the program afterwards (any exit status
    will do)::

        if not rows:
            athanor.fail("the data set is empty")
            sys.exit(1)

    The run ends as *failed* with this text as its error even if the process then exits with status 0. Only the first
    ``fail`` counts. ``error`` may be an exception: its text is used (or its type name when it has no text).
    """
    if isinstance(error, BaseException):
        text = str(error) or type(error).__name__
    else:
        text = str(error)
    sink = _sink or _open()
    sink.fail(text)


def flush():
    """Write everything buffered now. Messages are flushed on their own (every 50 ms, at exit, and at once for
    :func:`fail`); call this before something that might kill the process outright."""
    sink = _sink
    if sink is not None:
        sink.flush()


# ----------------------------------------------------------------------------------------------------- run context


def cancelled():
    """Whether Athanor asked this run to stop (the user pressed Cancel).

    Athanor cancels by sending SIGTERM to the program's process group and, after a grace period (5 s by default),
    SIGKILL. Python's own reaction to SIGTERM is to die at once; the first call to ``cancelled()`` replaces it with a
    handler that only sets a flag, so a program that asks keeps control::

        for step in range(steps):
            if athanor.cancelled():      # the first call arms the handler: call it early, e.g. before the loop
                break                    # stop now, but keep what you have: record partial results, then exit
            ...

    A program that never calls it keeps the default: SIGTERM ends it immediately. A handler you installed yourself
    before the first call still runs after the flag is set. The first call must come from the main thread (Python
    only lets the main thread install signal handlers; elsewhere it raises ``RuntimeError``).
    """
    if not _cancel_armed:
        _arm_cancel()
    return _cancel_flag


def _arm_cancel():
    global _cancel_armed, _previous_sigterm
    with _lock:
        if _cancel_armed:
            return
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("call athanor.cancelled() first from the main thread: only it can install the SIGTERM "
                               "handler")
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        _cancel_armed = True


def _on_sigterm(signum, frame):
    global _cancel_flag
    _cancel_flag = True
    previous = _previous_sigterm
    if callable(previous) and previous is not _on_sigterm:
        previous(signum, frame)


def run_id():
    """This run's id (a UUID string), or ``None`` outside Athanor."""
    return os.environ.get("ATHANOR_RUN_ID") or None


def inside_athanor():
    """Whether messages go to Athanor (``True``) or are printed to standard output because the program was started
    by hand (``False``)."""
    sink = _sink or _open()
    return isinstance(sink, _PipeSink)


# ----------------------------------------------------------------------------------------------------------- sinks


def _open():
    global _sink
    with _lock:
        if _sink is None:
            _sink = _choose_sink()
        return _sink


def _choose_sink():
    version = os.environ.get("ATHANOR_PROTOCOL", "").strip()
    if version and version != str(PROTOCOL_VERSION):
        raise RuntimeError("Athanor speaks protocol %s, but this athanor client speaks protocol %d: use a client "
                           "made for protocol %s" % (version, PROTOCOL_VERSION, version))
    fd_text = os.environ.get("ATHANOR_FD", "").strip()
    if not fd_text:
        return _TextSink()
    try:
        fd = int(fd_text)
        os.fstat(fd)
    except (ValueError, OSError) as err:
        sys.stderr.write("athanor: ATHANOR_FD=%r is not an open file descriptor (%s); printing messages to standard "
                         "output instead\n" % (fd_text, err))
        return _TextSink()
    return _PipeSink(fd, unbuffered=_fork_child)


def _count(value, what):
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("progress %s must be a whole number, got %r" % (what, value)) from None
    if number < 0:
        raise ValueError("progress %s must be 0 or above, got %r" % (what, value))
    return number


def _encode(value, encoder=_ENCODER):
    """``value`` as JSON, never failing: see :func:`result` for what becomes what."""
    try:
        return encoder.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass
    try:
        return encoder.encode(_plain(value, set()))
    except RecursionError:
        return '"<too deeply nested to encode>"'


def _plain(value, seen):
    if value is None or value is True or value is False or type(value) is str or type(value) is int:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in seen:
            return "<cycle>"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {_key(key): _plain(item, seen) for key, item in value.items()}
            return [_plain(item, seen) for item in value]
        finally:
            seen.discard(id(value))
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            return _plain(tolist(), seen)
        except Exception:  # noqa: BLE001 - a foreign tolist() that fails falls back to str()
            pass
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - even str() can fail; the message must still be sent
        return "<%s>" % type(value).__name__


def _key(key):
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)  # as json itself writes them: null, true, false
    return str(key)


def _utf8_len(text):
    return len(text.encode("utf-8", "replace"))


def _shorten(text, budget):
    """``text`` cut to at most ``budget`` UTF-8 bytes, with a note of how much was cut."""
    data = text.encode("utf-8", "replace")
    note = " ... [truncated from %d bytes]" % len(data)
    return data[: max(budget - len(note) - 8, 0)].decode("utf-8", "ignore") + note


class _PipeSink:
    """Buffered JSON lines on the protocol pipe. Every method may be called from any thread, and from a signal
    handler.

    A signal handler runs in the main thread between two bytecodes, possibly while that thread is in the middle of
    a write (the lock is re-entrant, so the handler gets in). Such a nested call must not write: its line would land
    in the middle of the one being written. ``writing`` marks a write in progress; a nested call only appends to the
    buffer, and the outer write loop sends what was appended once its current chunk is out.
    """

    def __init__(self, fd, unbuffered=False):
        self.fd = fd
        self.buf = []  # lines (str) not yet encoded
        self.size = 0  # their length in characters
        self.out = []  # encoded chunks (memoryviews) not yet written, oldest first; the first may be partly written
        self.writing = False  # a write is under way (in this thread: only the lock's owner sees it set)
        self.torn = False  # an exception left the pipe in the middle of a line, at an unknown point
        self.broken = False
        self.unbuffered = unbuffered  # a forked child: every message is written at once
        self.wake = threading.Event()
        if not unbuffered:
            thread = threading.Thread(target=self._flusher, name="athanor-flush", daemon=True)
            thread.start()

    # Building lines. The common case (a log without metadata) is string concatenation around the C string quoter.

    def log(self, level, message, metadata):
        prefix = _LOG_PREFIX.get(level)
        if prefix is None:
            raise ValueError("log level must be one of %s, got %r" % (", ".join(_LEVELS), level))
        if message.__class__ is not str:
            message = str(message)
        if metadata:
            line = prefix + _quote(message) + ',"metadata":' + _encode(metadata) + "}\n"
        else:
            line = prefix + _quote(message) + "}\n"
        if len(line) > _SAFE_CHARS:
            line = self._fit_log(prefix, message, metadata, line)
        self._put(line)

    def _fit_log(self, prefix, message, metadata, line):
        over = _utf8_len(line) - MAX_LINE_BYTES
        if over <= 0:
            return line
        meta = ',"metadata":' + _encode(metadata) if metadata else ""
        if _utf8_len(meta) > MAX_LINE_BYTES // 2:
            meta = ',"metadata":' + _encode({"truncated": "metadata of %d bytes dropped: over the line cap"
                                                          % _utf8_len(meta)})
        budget = MAX_LINE_BYTES - _utf8_len(prefix + meta) - 16
        while True:
            line = prefix + _quote(_shorten(message, budget)) + meta + "}\n"
            if _utf8_len(line) <= MAX_LINE_BYTES:
                return line
            budget //= 2  # escapes made the text grow; rare, and halving converges quickly

    def result(self, key, value):
        line = '{"type":"result","key":' + _quote(key) + ',"value":' + _encode(value) + "}\n"
        if len(line) > _SAFE_CHARS and _utf8_len(line) > MAX_LINE_BYTES:
            raise ValueError("result %r is %d bytes as a protocol line, over the %d-byte cap: split it over several "
                             "keys" % (key, _utf8_len(line), MAX_LINE_BYTES))
        self._put(line)

    def progress(self, current, total, message):
        fields = '{"type":"progress","current":%d' % current
        if total is not None:
            fields += ',"total":%d' % total
        if message is not None:
            if len(message) > 4096:
                message = message[:4096]
            fields += ',"message":' + _quote(message)
        self._put(fields + "}\n")

    def fail(self, text):
        line = '{"type":"fail","error":' + _quote(text) + "}\n"
        if len(line) > _SAFE_CHARS:
            line = '{"type":"fail","error":' + _quote(_shorten(text, MAX_LINE_BYTES // 8)) + "}\n"
        with _lock:
            self.buf.append(line)
            self._flush_locked()

    def _put(self, line):
        with _lock:
            buf = self.buf
            if not buf:
                self.wake.set()
            buf.append(line)
            self.size += len(line)
            if self.size >= _FLUSH_CHARS or self.unbuffered:
                self._flush_locked()

    # Writing.

    def flush(self):
        with _lock:
            self._flush_locked()

    def _flush_locked(self):
        """Write the buffer, and whatever is added to it meanwhile; the caller holds ``_lock``."""
        if self.writing:
            return  # a signal handler interrupted the write below: the loop there sends what it appended
        self.writing = True
        try:
            out = self.out
            if self.torn:
                # A signal handler raised (SystemExit, KeyboardInterrupt) while a write was under way, at a point
                # where how much of it went out is unknown. End the torn line, so that it costs one bad line and
                # the next ones arrive whole, and drop the rest of its chunk: sending it again could repeat lines
                # that did go out. (Repeating the newline at worst adds an empty line, which Athanor skips.)
                self.torn = False
                out[0] = memoryview(b"\n")
            while True:
                if self.buf:
                    buf = self.buf
                    self.buf = []
                    self.size = 0
                    self._encode_into(buf, out)
                if not out:
                    return
                if self.broken:
                    out.clear()
                    return
                # One chunk at a time, so that lines a nested call appends go out right after it.
                while out[0]:
                    self.torn = True
                    written = os.write(self.fd, out[0])
                    out[0] = out[0][written:]
                    self.torn = False
                del out[0]
        except OSError as err:  # EPIPE: Athanor is gone; EBADF: someone closed the descriptor
            self.broken = True
            self.torn = False
            self.out.clear()
            self.buf = []
            self.size = 0
            try:
                sys.stderr.write("athanor: cannot write to the protocol pipe (%s); further messages are dropped\n"
                                 % err)
            except Exception:  # noqa: BLE001 - stderr may be gone as well
                pass
        finally:
            self.writing = False

    @staticmethod
    def _encode_into(buf, out):
        if not _forked:
            out.append(memoryview("".join(buf).encode("utf-8", "replace")))
            return
        # Another process writes to the same pipe: only writes of at most PIPE_BUF bytes are atomic, so send whole
        # lines in chunks that small (a longer line goes alone; it can still interleave, nothing to do).
        chunk, length = [], 0
        for line in buf:
            data = line.encode("utf-8", "replace")
            if chunk and length + len(data) > _PIPE_BUF:
                out.append(memoryview(b"".join(chunk)))
                chunk, length = [], 0
            chunk.append(data)
            length += len(data)
        if chunk:
            out.append(memoryview(b"".join(chunk)))

    def _flusher(self):
        wake = self.wake
        while True:
            wake.wait()
            time.sleep(FLUSH_INTERVAL)
            with _lock:
                if _sink is not self:  # replaced (tests) or closed: stop this thread
                    return
                wake.clear()
                self._flush_locked()


class _TextSink:
    """Readable lines on standard output, for a program run by hand."""

    def log(self, level, message, metadata):
        if level not in _LOG_PREFIX:
            raise ValueError("log level must be one of %s, got %r" % (", ".join(_LEVELS), level))
        line = "[%s] %s" % (level, message)
        if metadata:
            line += " " + _readable(metadata)
        self._print(line)

    def result(self, key, value):
        self._print("result %s = %s" % (key, _readable(value)))

    def progress(self, current, total, message):
        line = "progress %d" % current if total is None else "progress %d/%d" % (current, total)
        self._print(line if message is None else line + " " + message)

    def fail(self, text):
        self._print("fail: %s" % text)
        self.flush()

    def flush(self):
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a closed stdout must not break the program
            pass

    def _print(self, line):
        with _lock:
            try:
                sys.stdout.write(line + "\n")
            except UnicodeEncodeError:
                sys.stdout.write(line.encode("utf-8", "replace").decode("utf-8", "replace") + "\n")
            if _fork_child:  # it may end with os._exit, which does not flush sys.stdout
                self.flush()


def _readable(value):
    return _encode(value, _READABLE)


# ------------------------------------------------------------------------------------------------ process hooks


def _at_exit():
    sink = _sink
    if sink is not None:
        sink.flush()


def _before_fork():
    _lock.acquire()  # no other thread is half-way through a write while the process is copied
    if isinstance(_sink, _PipeSink):
        _sink._flush_locked()  # the child must not inherit (and write again) what the parent buffered


def _after_fork_in_parent():
    global _forked
    _forked = True
    _lock.release()


def _after_fork_in_child():
    global _lock, _sink, _forked, _fork_child
    _lock = threading.RLock()  # the parent's threads do not exist here; start with a fresh, free lock
    _forked = True
    # A forked child (a multiprocessing worker) usually ends with os._exit: no atexit, no waiting for a flusher
    # thread. So it writes every message at once; the parent writes what it had buffered (see _before_fork).
    _fork_child = True
    if isinstance(_sink, _PipeSink):
        _sink = _PipeSink(_sink.fd, unbuffered=True)


def _reset_for_tests():
    """Forget the chosen sink and the cancel handler (tests only)."""
    global _sink, _forked, _fork_child, _cancel_flag, _cancel_armed, _previous_sigterm
    with _lock:
        sink, _sink = _sink, None
        if sink is not None:
            sink.flush()
            if isinstance(sink, _PipeSink):
                sink.wake.set()  # let its flusher thread see it was replaced and end
        _forked = False
        _fork_child = False
        if _cancel_armed:
            signal.signal(signal.SIGTERM, _previous_sigterm if _previous_sigterm is not None else signal.SIG_DFL)
        _cancel_flag = False
        _cancel_armed = False
        _previous_sigterm = None


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
