//! One run of a command experiment: a child process, its three output streams, and its whole process tree.
//!
//! The process gets its configuration in a file named by `ATHANOR_CONFIG` and writes protocol messages (see
//! [`super::protocol`]) on file descriptor 3. Its stdout becomes `info` logs and its stderr `warn` logs. Three
//! loops read the streams concurrently, each forwarding every line of a read in one batch, so a chatty process
//! costs a channel send per 64 lines rather than per line.
//!
//! The process leads its own process group, so every process it starts can be signalled at once: SIGTERM to the
//! group on cancel, SIGKILL to the group when the run's task is dropped (the supervisor's forced cancel, a
//! timeout, shutdown) and as soon as the main process exits (so a forgotten grandchild cannot hold stdout open
//! and keep the run from ending). After that last SIGKILL the group is gone and never signalled again, since its
//! id may be reused. `PR_SET_PDEATHSIG` kills the process if the server itself dies.
//!
//! After the exit, output is still read until the pipes close, but waiting for them is bounded
//! ([`DRAIN_AFTER_EXIT`]): only a process that left the group can hold them open. Forwarding what was read is not
//! bounded: a slow database delays the end of the run, it never costs it its last lines.

use super::lines::{Line, LineEnds, LineReader, MAX_LINE_BYTES};
use super::protocol::{self, Message, PROTOCOL_VERSION};
use super::CommandSpec;
use crate::context::{storable, RunContext};
use crate::experiment::RunResult;
use crate::limits::MAX_MESSAGE_BYTES;
use anyhow::{anyhow, Context as _};
use athanor_core::LogLevel;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::coop;
use tokio_util::sync::CancellationToken;

/// The file descriptor the process writes protocol messages on (`ATHANOR_FD`).
const PROTOCOL_FD: RawFd = 3;

/// How long the readers still wait for output after the main process exited and its group was killed. Only a
/// process that left the group (`setsid`) can keep a stream open that long; the run must end anyway.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// Past that deadline a reader still takes what a stream has ready at once, up to this many bytes: the most an
/// unprivileged process can make a pipe hold (`fs.pipe-max-size`, 1 MiB by default). So output written before the
/// exit is read whatever the database made the reader wait for, while a process that keeps writing cannot keep the
/// run going.
const READ_PAST_DEADLINE_BYTES: u64 = 1 << 20;

/// At most this many of the last stderr lines go into the error of a run that exited badly…
const STDERR_TAIL_LINES: usize = 10;
/// …and at most this many bytes of them.
const STDERR_TAIL_BYTES: usize = 4 * 1024;

/// Run `spec`'s command once for the run behind `ctx`, with `config` (already validated) as its configuration.
///
/// Returns when the process has exited and its output has been read to the end: `Ok` for exit status 0 without a
/// `fail` message, otherwise an error saying why (the `fail` text, the exit status or signal with the last stderr
/// lines, or why the command could not be started). If the returned future is dropped first, the whole process
/// group is killed.
pub(crate) async fn run_command(spec: &CommandSpec, ctx: &RunContext, config: &Value) -> RunResult {
    let (program, arguments) = spec.command.split_first().context("the command is empty")?;

    // The directory (and the configuration in it) is removed when this function returns or its future is dropped.
    let scratch = tempfile::Builder::new()
        .prefix("athanor-run-")
        .tempdir()
        .context("could not create the run's temporary directory")?;
    let config_path = std::path::absolute(scratch.path().join("config.json"))
        .context("could not resolve the configuration file's path")?;
    let config_json = serde_json::to_vec_pretty(config).context("could not serialize the configuration")?;
    tokio::fs::write(&config_path, config_json)
        .await
        .with_context(|| format!("could not write the configuration to {}", config_path.display()))?;

    let (protocol_reader, protocol_writer) = io::pipe().context("could not create the protocol pipe")?;
    let mut command = Command::new(program);
    command
        .args(arguments)
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        // After `spec.env`, so a manifest cannot garble what the protocol depends on.
        .env("ATHANOR_PROTOCOL", PROTOCOL_VERSION.to_string())
        .env("ATHANOR_RUN_ID", ctx.run_id().to_string())
        .env("ATHANOR_EXPERIMENT", spec.definition.name.as_str())
        .env("ATHANOR_CONFIG", &config_path)
        .env("ATHANOR_FD", PROTOCOL_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    prepare_child(&mut command, protocol_writer.as_raw_fd());

    let Started { group, mut child } = spawn_on_spawner_thread(command, protocol_writer.into())
        .await
        .with_context(|| format!("could not start {program:?} (working directory {})", spec.cwd.display()))?;

    let protocol =
        pipe::Receiver::from_owned_fd(OwnedFd::from(protocol_reader)).context("could not read the protocol pipe")?;
    let stdout = child.stdout.take().context("the process has no stdout pipe")?;
    let stderr = child.stderr.take().context("the process has no stderr pipe")?;

    let mut first_fail = None;
    let mut stderr_tail = StderrTail::default();
    // Cancelled once the main process has been gone for DRAIN_AFTER_EXIT: from then on the readers stop waiting for
    // more output (see `next_lines`), but still forward everything they read.
    let drain_deadline = CancellationToken::new();
    let (status, cut_off) = {
        let mut streams = pin!(async {
            tokio::join!(
                forward_protocol(protocol, ctx, &drain_deadline, &mut first_fail),
                forward_output(stdout, OutputStream::Stdout, ctx, &drain_deadline, None),
                forward_output(stderr, OutputStream::Stderr, ctx, &drain_deadline, Some(&mut stderr_tail)),
            )
        });
        let mut exit = pin!(wait_for_exit(&mut child, group, ctx));
        tokio::select! {
            status = &mut exit => {
                let cut_off = tokio::select! {
                    cut_off = &mut streams => cut_off,
                    () = tokio::time::sleep(DRAIN_AFTER_EXIT) => {
                        drain_deadline.cancel();
                        (&mut streams).await
                    }
                };
                (status, cut_off)
            }
            cut_off = &mut streams => (exit.await, cut_off),
        }
    };
    let (protocol_cut, stdout_cut, stderr_cut) = cut_off;
    let cut: Vec<_> = [(protocol_cut, "protocol pipe"), (stdout_cut, "stdout"), (stderr_cut, "stderr")]
        .into_iter()
        .filter_map(|(cut, name)| cut.then_some(name))
        .collect();
    if !cut.is_empty() {
        let message = format!(
            "stopped reading the command's {} {} s after it exited: a process that left its process group still \
             holds it open, and what it writes from now on is lost",
            cut.join(" and "),
            DRAIN_AFTER_EXIT.as_secs()
        );
        ctx.log(LogLevel::Warn, message, Some(json!({"stream": "protocol"}))).await;
    }

    let status = status.context("could not wait for the process to end")?;
    // The error is stored as the run's, where a NUL cannot go (PostgreSQL refuses it, and the run would stay
    // `running`); the process chose these bytes.
    if let Some(error) = first_fail {
        return Err(anyhow!(storable(error)));
    }
    if status.success() {
        return Ok(());
    }
    let mut message = describe_exit(status);
    if !stderr_tail.is_empty() {
        message.push_str("; last stderr lines:\n");
        message.push_str(&stderr_tail.render());
    }
    Err(anyhow!(storable(message)))
}

/// Wait for the main process to exit, asking its group to stop (SIGTERM) if the run is cancelled meanwhile; then
/// kill whatever is left of the group, and let go of it. If this future is dropped first, `group` kills the group.
async fn wait_for_exit(child: &mut Child, group: ProcessGroup, ctx: &RunContext) -> io::Result<ExitStatus> {
    let status = tokio::select! {
        status = child.wait() => status,
        () = ctx.cancelled() => {
            // Polite first: a process can catch SIGTERM and save its work. If it does not stop within the grace
            // period, the supervisor drops this future and the group guard sends SIGKILL.
            group.signal(libc::SIGTERM);
            child.wait().await
        }
    };
    // A grandchild still running would hold stdout and stderr open, so the streams would never end. This runs right
    // after the reap inside `wait`, with no await between, and that is safe from pid reuse: the kernel does not give
    // out a pid that is still the process-group id of a live process, so while anything is left in the group to
    // kill, the id is still this group's. Once nothing is, the signal could reach a stranger only if the kernel had
    // cycled through every pid and handed out this one again within these few instructions.
    group.kill_and_release();
    status
}

/// "exited with status 3", "killed by signal SIGSEGV (11) (core dumped)".
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    let Some(signal) = status.signal() else {
        return format!("ended abnormally ({status})");
    };
    let core = if status.core_dumped() { " (core dumped)" } else { "" };
    match signal_name(signal) {
        Some(name) => format!("killed by signal {name} ({signal}){core}"),
        None => format!("killed by signal {signal}{core}"),
    }
}

fn signal_name(signal: libc::c_int) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return None,
    })
}

// --- Spawning ---------------------------------------------------------------------------------------------------

/// Arrange, in the child between fork and exec, for it to die with the server and to find the protocol pipe on fd 3.
fn prepare_child(command: &mut Command, protocol_writer: RawFd) {
    // Captured before the fork: in the child, `getppid()` differs from it once the server has died.
    let server_pid = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe functions may be
    // called. It calls only prctl, getppid, fcntl, dup2 and _exit, and neither allocates nor takes locks.
    unsafe {
        command.pre_exec(move || {
            // Die with the server (strictly: with the thread that forked us; see `spawn_on_spawner_thread`).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The server may have died between fork and prctl, too early for the death signal to fire.
            if libc::getppid() != server_pid {
                libc::_exit(1);
            }
            if protocol_writer == PROTOCOL_FD {
                // Already in place, but close-on-exec like every descriptor Rust opens: keep it across exec.
                let flags = libc::fcntl(PROTOCOL_FD, libc::F_GETFD);
                if flags == -1 || libc::fcntl(PROTOCOL_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(protocol_writer, PROTOCOL_FD) == -1 {
                // dup2 leaves the new descriptor without close-on-exec, so it survives exec.
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

type SpawnJob = Box<dyn FnOnce() + Send>;

/// The thread every command is forked from, started on first use; it lives as long as the server.
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnJob>>> = Mutex::new(None);

/// A process just started, handed from the spawner thread to its run. Until the run takes it apart, dropping it
/// kills the process's group: the run's future can be dropped (a forced cancel, shutdown) while this is on its way,
/// and nothing else would ever stop the process then.
struct Started {
    /// Before `child`, so it is dropped (killing the group) while `child` still holds the process unreaped: its pid,
    /// the group's id, cannot belong to anyone else yet.
    group: ProcessGroup,
    child: Child,
}

impl Started {
    fn new(child: Child) -> io::Result<Started> {
        let pid = child.id().ok_or_else(|| io::Error::other("the process ended before its id could be read"))?;
        Ok(Started { group: ProcessGroup { id: pid as libc::pid_t }, child })
    }
}

/// Spawn `command` on the spawner thread, then close the server's copy of the protocol pipe's write end.
///
/// Why a thread of its own: `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
/// process. Blocking-pool threads (`spawn_blocking`) exit after a few idle seconds, which would kill healthy
/// commands mid-run; even a tokio worker thread can turn into a blocking-pool thread after `block_in_place`. A
/// thread that never exits makes the signal mean exactly "the server died".
async fn spawn_on_spawner_thread(mut command: Command, protocol_writer: OwnedFd) -> io::Result<Started> {
    // tokio registers the child with the runtime that spawns it (to reap it and to wake `wait`), so the spawner
    // thread enters this task's runtime for the call.
    let runtime = tokio::runtime::Handle::current();
    let (sender, receiver) = oneshot::channel();
    submit(Box::new(move || {
        let _entered = runtime.enter();
        let spawned = command.spawn().and_then(Started::new);
        // The child has its own copy now. The server's must close, or the pipe never reports end-of-stream.
        drop(protocol_writer);
        // If the run is gone (now, or before it takes the process out of the channel), `Started` is dropped with
        // the channel and kills the group.
        let _ = sender.send(spawned);
    }))?;
    receiver.await.map_err(|_| io::Error::other("the process-spawning thread dropped the request"))?
}

fn submit(job: SpawnJob) -> io::Result<()> {
    let mut spawner = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    if spawner.is_none() {
        let (sender, jobs) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new().name("athanor-spawner".into()).spawn(move || {
            for job in jobs {
                // The thread must outlive every child it forked (their death signal is tied to it), so a panic
                // in one job must not end it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })?;
        *spawner = Some(sender);
    }
    let sender = spawner.as_ref().expect("the spawner was started above");
    sender.send(job).map_err(|_| io::Error::other("the process-spawning thread has stopped"))
}

/// The process group a command leads (its id is the command's pid). SIGKILLs the whole group when dropped, unless
/// [`ProcessGroup::kill_and_release`]d once the main process has exited.
struct ProcessGroup {
    id: libc::pid_t,
}

impl ProcessGroup {
    /// Send `signal` to every process in the group. A group with nobody left in it is not an error.
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: killpg has no memory-safety preconditions; it only sends a signal.
        unsafe {
            libc::killpg(self.id, signal);
        }
    }

    /// Kill every process in the group, then forget it: the group is gone for good. SIGKILL cannot be caught, and a
    /// member in the middle of `fork` takes its new child down with it (the kernel delivers a group signal to both
    /// or restarts the fork), so nothing is left in it and nothing can join it. A process that left the group
    /// (`setsid`) may live on, but it is not in the group, so signalling the id again could only ever reach a
    /// stranger that was given the id once it was free.
    fn kill_and_release(self) {
        self.signal(libc::SIGKILL);
        std::mem::forget(self);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

// --- Reading the streams ----------------------------------------------------------------------------------------

/// What one [`next_lines`] found.
#[derive(Debug)]
enum Next {
    /// Lines may have been read; read again.
    More,
    /// The stream was closed.
    End,
    /// The drain deadline has passed and the stream has nothing ready (or gave all it may past the deadline).
    CutOff,
    /// Reading failed; the stream is given up.
    Failed(io::Error),
}

/// A reader's view of the drain deadline.
struct DrainDeadline<'a> {
    /// Cancelled when the deadline passes.
    passed: &'a CancellationToken,
    /// How much the stream had given when this reader first found the deadline passed.
    read_before_it: Option<u64>,
}

impl DrainDeadline<'_> {
    fn new(passed: &CancellationToken) -> DrainDeadline<'_> {
        DrainDeadline { passed, read_before_it: None }
    }
}

/// Read once from `lines`, calling `on_line` for each line read, unless the drain deadline stops the reading.
///
/// The deadline only ever ends a wait for the stream: what a reader has read is forwarded by its caller however
/// long that takes, and what is ready in the pipe when the reader comes back for more is still taken (within
/// [`READ_PAST_DEADLINE_BYTES`]). A line the stream was in the middle of when the reading stops is passed on as an
/// unterminated line, so nothing read is lost.
async fn next_lines<R: AsyncRead + Unpin>(
    lines: &mut LineReader<R>,
    deadline: &mut DrainDeadline<'_>,
    mut on_line: impl FnMut(Line<'_>),
) -> Next {
    let read = if deadline.passed.is_cancelled() {
        let read_before = *deadline.read_before_it.get_or_insert(lines.bytes_read());
        if lines.bytes_read() - read_before >= READ_PAST_DEADLINE_BYTES {
            None
        } else {
            // Only what is ready now. Unconstrained, because tokio's cooperative budget can make a ready read look
            // pending after a busy stretch of forwarding, which would throw away output written before the exit;
            // the byte limit above bounds this stretch instead.
            tokio::select! {
                biased;
                read = coop::unconstrained(lines.read_lines(&mut on_line)) => Some(read),
                () = std::future::ready(()) => None,
            }
        }
    } else {
        // `read_lines` loses nothing when dropped unfinished, so the deadline can interrupt the wait.
        tokio::select! {
            biased;
            read = lines.read_lines(&mut on_line) => Some(read),
            () = deadline.passed.cancelled() => None,
        }
    };
    match read {
        None => {
            lines.stop(on_line);
            Next::CutOff
        }
        Some(Ok(true)) => Next::More,
        Some(Ok(false)) => Next::End,
        Some(Err(error)) => Next::Failed(error),
    }
}

/// Read protocol messages until the pipe closes (or the drain deadline cuts it off: then returns true), forwarding
/// them in order; the first `fail` is kept in `first_fail`.
async fn forward_protocol(
    receiver: impl AsyncRead + Unpin,
    ctx: &RunContext,
    drain_deadline: &CancellationToken,
    first_fail: &mut Option<String>,
) -> bool {
    let mut lines = LineReader::new(receiver, LineEnds::Newline);
    let mut deadline = DrainDeadline::new(drain_deadline);
    let mut decoded = Vec::new();
    let mut logs = Vec::new();
    loop {
        let next = next_lines(&mut lines, &mut deadline, |line| {
            // A blank line decodes to nothing: there is nothing in it to apply or to warn about.
            decoded.extend(protocol::decode(&line).transpose());
        })
        .await;
        for message in decoded.drain(..) {
            match message {
                Ok(Message::Log { level, message, metadata }) => logs.push((level, message, metadata)),
                Err(warning) => logs.push((LogLevel::Warn, warning, Some(json!({"stream": "protocol"})))),
                Ok(other) => {
                    // Logs collected so far go first, so the run's records keep the order the process wrote them.
                    flush(ctx, &mut logs).await;
                    deliver(ctx, other, first_fail).await;
                }
            }
        }
        flush(ctx, &mut logs).await;
        if let Some(cut_off) = stream_over(ctx, next, "protocol pipe").await {
            return cut_off;
        }
    }
}

/// After a read's lines are forwarded: `None` to read on, or whether the stream was cut off by the drain deadline
/// (`Some(true)`) or ended (`Some(false)`; a read error is logged first).
async fn stream_over(ctx: &RunContext, next: Next, name: &str) -> Option<bool> {
    match next {
        Next::More => None,
        Next::End => Some(false),
        Next::CutOff => Some(true),
        Next::Failed(error) => {
            report_read_error(ctx, name, &error).await;
            Some(false)
        }
    }
}

async fn deliver(ctx: &RunContext, message: Message, first_fail: &mut Option<String>) {
    match message {
        Message::Log { level, message, metadata } => ctx.log(level, message, metadata).await,
        Message::Result { key, value } => {
            // `decode` already checked the limits, and a refusal would be in the run's log anyway.
            let _ = ctx.result(key, value).await;
        }
        Message::Progress { current, total, message } => ctx.progress(current, total, message.as_deref()),
        Message::Fail { error } => {
            first_fail.get_or_insert(error);
        }
    }
}

async fn flush(ctx: &RunContext, logs: &mut Vec<(LogLevel, String, Option<Value>)>) {
    if !logs.is_empty() {
        ctx.log_batch(logs.drain(..)).await;
    }
}

async fn report_read_error(ctx: &RunContext, stream: &str, error: &io::Error) {
    let message = format!("stopped reading the command's {stream}: {error}");
    ctx.log(LogLevel::Warn, message, Some(json!({"stream": "protocol"}))).await;
}

#[derive(Debug, Clone, Copy)]
enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    fn name(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }

    /// Printed text is ordinary output; text on stderr is worth a second look.
    fn level(self) -> LogLevel {
        match self {
            OutputStream::Stdout => LogLevel::Info,
            OutputStream::Stderr => LogLevel::Warn,
        }
    }
}

/// Log every line of `reader` until it closes (or the drain deadline cuts it off: then returns true), keeping the
/// last ones in `tail` when given.
///
/// A lone `\r` ends a line as `\n` does, so each redraw of a progress bar is a line of its own instead of part of
/// one endless line; empty lines (blank lines, and what comes before a redraw's leading `\r`) say nothing and are
/// skipped.
async fn forward_output(
    reader: impl AsyncRead + Unpin,
    stream: OutputStream,
    ctx: &RunContext,
    drain_deadline: &CancellationToken,
    mut tail: Option<&mut StderrTail>,
) -> bool {
    let mut lines = LineReader::new(reader, LineEnds::AnyBreak);
    let mut deadline = DrainDeadline::new(drain_deadline);
    let mut logs = Vec::new();
    loop {
        let next = next_lines(&mut lines, &mut deadline, |line| {
            if line.is_empty() {
                return;
            }
            let (message, metadata) = output_log(&line, stream);
            if let Some(tail) = tail.as_deref_mut() {
                tail.push(&message);
            }
            logs.push((stream.level(), message, Some(metadata)));
        })
        .await;
        flush(ctx, &mut logs).await;
        if let Some(cut_off) = stream_over(ctx, next, stream.name()).await {
            return cut_off;
        }
    }
}

/// The log message and metadata for one line of output; an oversized line says how much of it was dropped.
///
/// A log message is capped at [`MAX_MESSAGE_BYTES`] (as large as the line cap), so an oversized line keeps what
/// fits beside its note, and a line whose invalid UTF-8 grew past the cap as U+FFFD characters is cut the same way.
fn output_log(line: &Line<'_>, stream: OutputStream) -> (String, Value) {
    /// Room kept for the note, whose numbers have at most 20 digits each.
    const NOTE_ROOM: usize = 128;
    let mut message = String::from_utf8_lossy(line.bytes).into_owned();
    if line.dropped == 0 && message.len() <= MAX_MESSAGE_BYTES {
        return (message, json!({"stream": stream.name()}));
    }
    let mut kept = message.len().min(MAX_MESSAGE_BYTES - NOTE_ROOM);
    while !message.is_char_boundary(kept) {
        kept -= 1;
    }
    let dropped = line.dropped + (message.len() - kept);
    message.truncate(kept);
    message.push_str(&format!(" … [{dropped} more bytes dropped: output lines are capped at {MAX_LINE_BYTES} bytes]"));
    (message, json!({"stream": stream.name(), "dropped_bytes": dropped}))
}

/// The last few lines a process wrote on stderr: usually the traceback or message that explains a bad exit.
#[derive(Default)]
struct StderrTail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl StderrTail {
    fn push(&mut self, line: &str) {
        let line = &line[..floor_char_boundary(line, STDERR_TAIL_BYTES)];
        // Reuse the oldest line's buffer once full: stderr can be as busy as stdout.
        let mut slot = if self.lines.len() == STDERR_TAIL_LINES { self.pop_oldest() } else { String::new() };
        slot.clear();
        slot.push_str(line);
        self.bytes += slot.len();
        self.lines.push_back(slot);
        while self.bytes > STDERR_TAIL_BYTES && self.lines.len() > 1 {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) -> String {
        let oldest = self.lines.pop_front().unwrap_or_default();
        self.bytes -= oldest.len();
        oldest
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn render(&self) -> String {
        self.lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// The largest index `<= limit` that falls on a character boundary of `text`.
fn floor_char_boundary(text: &str, limit: usize) -> usize {
    if limit >= text.len() {
        return text.len();
    }
    (0..=limit).rev().find(|&index| text.is_char_boundary(index)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::writer::{Envelope, WriterHandle, WriterMessage};
    use athanor_core::ExperimentDefinition;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use uuid::Uuid;

    /// A safety net so a regression fails the test instead of hanging it; no test waits for it to pass.
    const HANG_LIMIT: Duration = Duration::from_secs(60);

    /// A run context whose records go into a channel of `capacity` messages that the test reads itself: a
    /// database exactly as slow as the test makes it.
    fn context(capacity: usize) -> (RunContext, mpsc::Receiver<Envelope>) {
        let (writer, records) = WriterHandle::unstarted(capacity, crate::DEFAULT_RECORD_BUDGET_BYTES);
        let ctx = RunContext::new(
            athanor_core::RunId::from(Uuid::new_v4()),
            json!({}),
            writer,
            Arc::new(Hub::new(16)),
            CancellationToken::new(),
        );
        (ctx, records)
    }

    /// The log lines and results (as `key=value`) of one message to the writer.
    fn texts(envelope: Envelope) -> Vec<String> {
        match envelope.message {
            WriterMessage::Log { log, .. } => vec![log.message],
            WriterMessage::Logs { logs, .. } => logs.into_iter().map(|log| log.message).collect(),
            WriterMessage::Result { result, .. } => vec![format!("{}={}", result.key, result.value)],
            WriterMessage::Open { .. } | WriterMessage::Close { .. } => vec![],
        }
    }

    /// Everything left in the channel once every sender is gone.
    async fn all_texts(mut records: mpsc::Receiver<Envelope>) -> Vec<String> {
        let mut all = Vec::new();
        while let Some(message) = records.recv().await {
            all.extend(texts(message));
        }
        all
    }

    #[tokio::test]
    async fn everything_read_before_the_drain_deadline_is_forwarded_however_slow_the_database() {
        // Room for one message: every further batch waits for the test to take one, as behind a slow database.
        let (ctx, mut records) = context(1);
        let expected: Vec<_> = (0..1_000).map(|i| format!("line {i}")).collect();
        // The process's end stays open, as when a process that left the group still holds stdout.
        let (mut process_end, stdout) = tokio::io::duplex(64 * 1024);
        process_end.write_all((expected.join("\n") + "\n").as_bytes()).await.unwrap();
        let drain_deadline = CancellationToken::new();
        let deadline = &drain_deadline;

        let forward = async move { forward_output(stdout, OutputStream::Stdout, &ctx, deadline, None).await };
        let slow_database = async {
            // The reader has read the lines and waits to forward the rest of them when the deadline passes.
            let mut forwarded = texts(records.recv().await.expect("a first batch"));
            deadline.cancel();
            while let Some(message) = records.recv().await {
                forwarded.extend(texts(message));
            }
            forwarded
        };
        let (cut_off, forwarded) = tokio::time::timeout(HANG_LIMIT, async { tokio::join!(forward, slow_database) })
            .await
            .expect("the reader stops once the deadline has passed");
        assert!(cut_off, "the stream was still open");
        assert_eq!(forwarded, expected);
    }

    #[tokio::test]
    async fn output_already_in_the_pipe_when_the_deadline_passes_is_still_read() {
        let (ctx, records) = context(1_024);
        let (mut process_end, protocol_pipe) = tokio::io::duplex(64 * 1024);
        let messages = "{\"type\":\"result\",\"key\":\"a\",\"value\":1}\n\
                        {\"type\":\"log\",\"message\":\"written before the exit\"}\n\
                        {\"type\":\"fail\",\"error\":\"x\"}\n{\"type\":\"res";
        process_end.write_all(messages.as_bytes()).await.unwrap();
        let drain_deadline = CancellationToken::new();
        drain_deadline.cancel();

        let mut first_fail = None;
        let cut_off =
            tokio::time::timeout(HANG_LIMIT, forward_protocol(protocol_pipe, &ctx, &drain_deadline, &mut first_fail))
                .await
                .expect("the reader stops once the pipe has nothing ready");
        assert!(cut_off);
        assert_eq!(first_fail.as_deref(), Some("x"));
        drop(ctx);
        let forwarded = all_texts(records).await;
        assert_eq!(forwarded[..2], ["a=1", "written before the exit"]);
        // The line in progress when reading stopped is passed on, so the warning shows what was lost.
        assert_eq!(forwarded.len(), 3, "{forwarded:?}");
        assert!(forwarded[2].ends_with("it began: {\"type\":\"res"), "{}", forwarded[2]);
    }

    #[tokio::test]
    async fn a_stream_that_never_stops_writing_is_cut_off_past_the_deadline() {
        let (ctx, records) = context(1_024);
        let drain_deadline = CancellationToken::new();
        drain_deadline.cancel();
        // Always ready: only the byte limit past the deadline can end this.
        let endless = tokio::io::repeat(b'y');
        let cut_off = tokio::time::timeout(
            HANG_LIMIT,
            forward_output(endless, OutputStream::Stdout, &ctx, &drain_deadline, None),
        )
        .await
        .expect("the reader stops within its byte limit");
        assert!(cut_off);
        drop(ctx);
        let forwarded = all_texts(records).await;
        assert_eq!(forwarded.len(), 1, "one line in progress, passed on when reading stopped");
        assert!(forwarded[0].starts_with(&"y".repeat(MAX_LINE_BYTES)));
    }

    /// Start `sleep` in a group of its own on the spawner thread, dropping the run's side of the hand-over either
    /// before the spawner starts the process or after it has sent it, and wait for the process to end.
    async fn drop_the_run_while_starting(after_the_send: bool) {
        // The sleep's stdout is this pipe: the read end reports end-of-stream once the process is dead (the
        // spawner thread's copy of the write end is dropped with the command), an event to await.
        let (output, output_writer) = io::pipe().unwrap();
        let mut output = pipe::Receiver::from_owned_fd(OwnedFd::from(output)).unwrap();
        let mut command = Command::new("sleep");
        command.arg("1000").stdin(Stdio::null()).stdout(Stdio::from(output_writer)).stderr(Stdio::null());
        command.process_group(0);
        let (_protocol_reader, protocol_writer) = io::pipe().unwrap();

        // Hold the spawner thread, so the hand-over can be dropped at a chosen point.
        let (open_gate, mut gate) = mpsc::unbounded_channel::<()>();
        submit(Box::new(move || {
            let _ = gate.blocking_recv();
        }))
        .unwrap();
        let mut spawn = Box::pin(spawn_on_spawner_thread(command, protocol_writer.into()));
        assert!(futures::poll!(spawn.as_mut()).is_pending(), "the spawner thread is held");
        if !after_the_send {
            drop(spawn);
            open_gate.send(()).unwrap();
        } else {
            open_gate.send(()).unwrap();
            // The spawner runs jobs in order: once this one has run, the process was started and sent.
            let (done, sent) = oneshot::channel();
            submit(Box::new(move || {
                let _ = done.send(());
            }))
            .unwrap();
            sent.await.unwrap();
            drop(spawn);
        }
        let mut rest = Vec::new();
        let read = tokio::time::timeout(HANG_LIMIT, output.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "the process was left running (after the send: {after_the_send})");
    }

    #[tokio::test]
    async fn a_process_started_for_a_run_that_is_gone_is_killed() {
        drop_the_run_while_starting(false).await;
        drop_the_run_while_starting(true).await;
    }

    fn spec(script: &str) -> CommandSpec {
        CommandSpec {
            definition: ExperimentDefinition::new("nul", "1"),
            command: vec!["sh".into(), "-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: BTreeMap::new(),
            manifest: PathBuf::from("athanor.toml"),
        }
    }

    #[tokio::test]
    async fn nul_characters_in_the_error_become_replacement_characters() {
        let (ctx, _records) = context(1_024);
        let fail = r#"printf '{"type":"fail","error":"bad\u0000byte"}\n' >&3"#;
        let error = run_command(&spec(fail), &ctx, &json!({})).await.unwrap_err();
        assert_eq!(error.to_string(), "bad\u{FFFD}byte");

        let stderr = r#"printf 'bad\000byte\n' >&2; exit 1"#;
        let error = run_command(&spec(stderr), &ctx, &json!({})).await.unwrap_err();
        assert_eq!(error.to_string(), "exited with status 1; last stderr lines:\nbad\u{FFFD}byte");
    }

    #[test]
    fn the_stderr_tail_keeps_the_last_ten_lines_within_four_kib() {
        let mut tail = StderrTail::default();
        for i in 0..25 {
            tail.push(&format!("line {i}"));
        }
        assert_eq!(tail.render(), (15..25).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n"));

        let mut tail = StderrTail::default();
        for i in 0..3 {
            tail.push(&format!("{i}{}", "x".repeat(1_999)));
        }
        assert_eq!(tail.lines.len(), 2, "three 2 KB lines exceed 4 KiB, so only the last two stay");
        assert!(tail.render().starts_with('1'));

        tail.push(&"é".repeat(5_000));
        assert_eq!(tail.lines.len(), 1);
        assert_eq!(tail.render(), "é".repeat(STDERR_TAIL_BYTES / 2), "cut on a character boundary");
    }

    #[test]
    fn exit_descriptions_name_the_status_or_signal() {
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(describe_exit(ExitStatus::from_raw(libc::SIGKILL)), "killed by signal SIGKILL (9)");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "killed by signal SIGSEGV (11) (core dumped)"
        );
        assert_eq!(describe_exit(ExitStatus::from_raw(40)), "killed by signal 40");
    }

    #[test]
    fn an_output_line_always_fits_a_log_message_note_included() {
        let fits = vec![b'a'; MAX_LINE_BYTES];
        let (message, metadata) =
            output_log(&Line { bytes: &fits, dropped: 0, terminated: true }, OutputStream::Stdout);
        assert_eq!((message.len(), metadata), (MAX_MESSAGE_BYTES, json!({"stream": "stdout"})));
        // Each invalid byte becomes a three-byte U+FFFD: three times the cap, cut back to it.
        let invalid = vec![0xFF; MAX_LINE_BYTES];
        let line = Line { bytes: &invalid, dropped: 10, terminated: true };
        let (message, metadata) = output_log(&line, OutputStream::Stderr);
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        let kept = message.trim_end_matches(|c| c != '\u{FFFD}').len();
        let dropped = 10 + 3 * MAX_LINE_BYTES - kept;
        assert!(
            message.ends_with(&format!(" … [{dropped} more bytes dropped: output lines are capped at 1048576 bytes]"))
        );
        assert_eq!(metadata, json!({"stream": "stderr", "dropped_bytes": dropped}));
    }
}
