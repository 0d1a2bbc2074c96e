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
//! and keep the run from ending). `PR_SET_PDEATHSIG` kills the process if the server itself dies.

use super::lines::{Line, LineReader, MAX_LINE_BYTES};
use super::protocol::{self, Message, PROTOCOL_VERSION};
use super::CommandSpec;
use crate::context::RunContext;
use crate::experiment::RunResult;
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

/// The file descriptor the process writes protocol messages on (`ATHANOR_FD`).
const PROTOCOL_FD: RawFd = 3;

/// How long output is still read after the main process exited and its group was killed. Only a process that left
/// the group (`setsid`) can keep a stream open that long; the run must end anyway.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

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

    let mut child = spawn_on_spawner_thread(command, protocol_writer.into())
        .await
        .with_context(|| format!("could not start {program:?} (working directory {})", spec.cwd.display()))?;
    let group = ProcessGroup::of(&child)?;

    let protocol =
        pipe::Receiver::from_owned_fd(OwnedFd::from(protocol_reader)).context("could not read the protocol pipe")?;
    let stdout = child.stdout.take().context("the process has no stdout pipe")?;
    let stderr = child.stderr.take().context("the process has no stderr pipe")?;

    let mut first_fail = None;
    let mut stderr_tail = StderrTail::default();
    let status = {
        // The readers write into the two locals above, so what they gathered survives even when reading is cut
        // short after the exit.
        let mut streams = pin!(async {
            tokio::join!(
                forward_protocol(protocol, ctx, &mut first_fail),
                forward_output(stdout, OutputStream::Stdout, ctx, None),
                forward_output(stderr, OutputStream::Stderr, ctx, Some(&mut stderr_tail)),
            )
        });
        let mut exit = pin!(wait_for_exit(&mut child, &group, ctx));
        tokio::select! {
            status = &mut exit => {
                if tokio::time::timeout(DRAIN_AFTER_EXIT, &mut streams).await.is_err() {
                    ctx.log(
                        LogLevel::Warn,
                        format!(
                            "stopped reading the command's output {} s after it exited: a process outside its \
                             process group still holds the output open",
                            DRAIN_AFTER_EXIT.as_secs()
                        ),
                        Some(json!({"stream": "protocol"})),
                    )
                    .await;
                }
                status
            }
            _ = &mut streams => exit.await,
        }
    };
    // Everything in the group was killed once the main process exited, and its output is read: nothing is left
    // to clean up, and not signalling the group again keeps clear of a recycled process-group id.
    group.release();

    let status = status.context("could not wait for the process to end")?;
    if let Some(error) = first_fail {
        return Err(anyhow!(error));
    }
    if status.success() {
        return Ok(());
    }
    let mut message = describe_exit(status);
    if !stderr_tail.is_empty() {
        message.push_str("; last stderr lines:\n");
        message.push_str(&stderr_tail.render());
    }
    Err(anyhow!(message))
}

/// Wait for the main process to exit, asking its group to stop (SIGTERM) if the run is cancelled meanwhile; then
/// kill whatever is left of the group.
async fn wait_for_exit(child: &mut Child, group: &ProcessGroup, ctx: &RunContext) -> io::Result<ExitStatus> {
    let status = tokio::select! {
        status = child.wait() => status,
        () = ctx.cancelled() => {
            // Polite first: a process can catch SIGTERM and save its work. If it does not stop within the grace
            // period, the supervisor drops this future and the group guard sends SIGKILL.
            group.signal(libc::SIGTERM);
            child.wait().await
        }
    };
    // A grandchild still running would hold stdout and stderr open, so the streams would never end.
    group.signal(libc::SIGKILL);
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

/// Spawn `command` on the spawner thread, then close the server's copy of the protocol pipe's write end.
///
/// Why a thread of its own: `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
/// process. Blocking-pool threads (`spawn_blocking`) exit after a few idle seconds, which would kill healthy
/// commands mid-run; even a tokio worker thread can turn into a blocking-pool thread after `block_in_place`. A
/// thread that never exits makes the signal mean exactly "the server died".
async fn spawn_on_spawner_thread(mut command: Command, protocol_writer: OwnedFd) -> io::Result<Child> {
    // tokio registers the child with the runtime that spawns it (to reap it and to wake `wait`), so the spawner
    // thread enters this task's runtime for the call.
    let runtime = tokio::runtime::Handle::current();
    let (sender, receiver) = oneshot::channel();
    submit(Box::new(move || {
        let _entered = runtime.enter();
        let spawned = command.spawn();
        // The child has its own copy now. The server's must close, or the pipe never reports end-of-stream.
        drop(protocol_writer);
        if let Err(Ok(orphan)) = sender.send(spawned) {
            // The run was dropped while its command was being started: nobody will ever stop this process.
            if let Some(pid) = orphan.id() {
                ProcessGroup { id: pid as libc::pid_t }.signal(libc::SIGKILL);
            }
        }
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
/// [`ProcessGroup::release`]d after a normal end.
struct ProcessGroup {
    id: libc::pid_t,
}

impl ProcessGroup {
    fn of(child: &Child) -> anyhow::Result<ProcessGroup> {
        let pid = child.id().context("the process ended before its id could be read")?;
        Ok(ProcessGroup { id: pid as libc::pid_t })
    }

    /// Send `signal` to every process in the group. A group with nobody left in it is not an error.
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: killpg has no memory-safety preconditions; it only sends a signal.
        unsafe {
            libc::killpg(self.id, signal);
        }
    }

    /// Forget the group without signalling it.
    fn release(self) {
        std::mem::forget(self);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

// --- Reading the streams ----------------------------------------------------------------------------------------

/// Read protocol messages until the pipe closes, forwarding them in order; the first `fail` is kept in
/// `first_fail`.
async fn forward_protocol(receiver: pipe::Receiver, ctx: &RunContext, first_fail: &mut Option<String>) {
    let mut lines = LineReader::new(receiver);
    let mut decoded = Vec::new();
    let mut logs = Vec::new();
    loop {
        let more = lines.read_lines(|line| decoded.push(protocol::decode(&line))).await;
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
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                report_read_error(ctx, "protocol pipe", &error).await;
                break;
            }
        }
    }
}

async fn deliver(ctx: &RunContext, message: Message, first_fail: &mut Option<String>) {
    match message {
        Message::Log { level, message, metadata } => ctx.log(level, message, metadata).await,
        Message::Result { key, value } => {
            // A JSON value always serializes, so this cannot fail.
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

/// Log every line of `reader` until it closes, keeping the last ones in `tail` when given.
async fn forward_output(
    reader: impl AsyncRead + Unpin,
    stream: OutputStream,
    ctx: &RunContext,
    mut tail: Option<&mut StderrTail>,
) {
    let mut lines = LineReader::new(reader);
    let mut logs = Vec::new();
    loop {
        let more = lines
            .read_lines(|line| {
                let (message, metadata) = output_log(&line, stream);
                if let Some(tail) = tail.as_deref_mut() {
                    tail.push(&message);
                }
                logs.push((stream.level(), message, Some(metadata)));
            })
            .await;
        flush(ctx, &mut logs).await;
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                report_read_error(ctx, stream.name(), &error).await;
                break;
            }
        }
    }
}

/// The log message and metadata for one line of output; an oversized line says how much of it was dropped.
fn output_log(line: &Line<'_>, stream: OutputStream) -> (String, Value) {
    let mut message = String::from_utf8_lossy(line.bytes).into_owned();
    if line.dropped == 0 {
        return (message, json!({"stream": stream.name()}));
    }
    message.push_str(&format!(
        " … [{} more bytes dropped: output lines are capped at {MAX_LINE_BYTES} bytes]",
        line.dropped
    ));
    (message, json!({"stream": stream.name(), "dropped_bytes": line.dropped}))
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
}
