//! Programs run as child processes by the tests and the test tools: start one with its output piped,
//! wait (bounded) for the line saying it is ready, keep reading its output so it never blocks on a full
//! pipe, keep what it writes to stderr for messages, and kill it when its handle is dropped. Every wait
//! is bounded, and a failed one says what was awaited and what the child wrote to stderr.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a bounded wait for an exit looks at the child again.
const POLL: Duration = Duration::from_millis(20);
/// How long, after an exit, the rest of its stderr may take to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A start, wait or run that failed: the message names the program, what was awaited and what it
/// wrote to stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// How to tell that a child is ready.
#[derive(Debug, Clone, Copy)]
pub struct Ready<'a> {
    /// The program's name in messages, e.g. `"plugin-host"`.
    pub name: &'a str,
    /// Text the ready line holds; what follows it on that line (trimmed) is handed to the parser.
    pub prefix: &'a str,
    /// Look for the line on stderr as well as stdout (some servers announce themselves there).
    pub on_stderr: bool,
    /// How long the line may take.
    pub within: Duration,
    /// How many of the last stderr lines to keep; `None` keeps them all.
    pub keep_lines: Option<usize>,
}

/// What a child wrote to stderr: how many lines, and the lines kept (all, or the last few).
#[derive(Debug, Clone, Default)]
pub struct Stderr {
    pub lines: u64,
    pub kept: VecDeque<String>,
    keep: Option<usize>,
}

impl Stderr {
    fn push(&mut self, line: String) {
        self.lines += 1;
        if self.keep.is_some_and(|keep| self.kept.len() >= keep) {
            self.kept.pop_front();
        }
        if self.keep != Some(0) {
            self.kept.push_back(line);
        }
    }

    /// The kept lines, each ending in a newline.
    pub fn text(&self) -> String {
        self.kept.iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
    }

    /// "its stderr: ..." for an error message.
    fn describe(&self) -> String {
        if self.kept.is_empty() {
            "it wrote nothing to stderr".to_owned()
        } else if self.lines > self.kept.len() as u64 {
            format!("its stderr (last lines):\n{}", self.text())
        } else {
            format!("its stderr:\n{}", self.text())
        }
    }
}

/// How a child ended: its status, whether it had to be killed, and its stderr.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub killed: bool,
    pub stderr: Stderr,
}

/// What a program run to completion by [`run`] printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// What follows `prefix` in `line` (trimmed), if `line` holds it.
pub fn after_prefix<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let at = line.find(prefix)?;
    Some(line[at + prefix.len()..].trim())
}

/// A running child whose output is being drained; killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    name: String,
    stderr: Arc<Mutex<Stderr>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl ChildProcess {
    /// Start `command` (stdin empty, stdout and stderr piped) and wait until it prints a line holding
    /// `ready.prefix` for which `parse` (given what follows the prefix) returns a value; returns the
    /// child and that value. Fails, killing the child, if it exits first or `ready.within` passes.
    pub fn start<T: Send + 'static>(
        mut command: Command,
        ready: &Ready<'_>,
        parse: impl Fn(&str) -> Option<T> + Send + Sync + 'static,
    ) -> Result<(Self, T), Error> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error(format!("cannot start {}: {e}", ready.name)))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let (found, ready_value) = mpsc::channel();
        let watch = Arc::new(Watch {
            prefix: ready.prefix.to_owned(),
            parse,
        });
        let mut on_stdout = watch.clone().lines(found.clone());
        spawn_reader(stdout, move |line| on_stdout(&line));
        let stderr = Arc::new(Mutex::new(Stderr {
            keep: ready.keep_lines,
            ..Stderr::default()
        }));
        let sink = stderr.clone();
        let mut on_stderr = ready.on_stderr.then(|| watch.lines(found));
        let stderr_reader = spawn_reader(stderr_pipe, move |line| {
            if let Some(on_stderr) = &mut on_stderr {
                on_stderr(&line);
            }
            lock(&sink).push(line);
        });
        let mut process = Self {
            child,
            name: ready.name.to_owned(),
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let awaited = match ready_value.recv_timeout(ready.within) {
            Ok(value) => return Ok((process, value)),
            Err(mpsc::RecvTimeoutError::Timeout) => format!(
                "did not print a line holding {:?} within {:?}",
                ready.prefix, ready.within
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                format!("exited before printing a line holding {:?}", ready.prefix)
            }
        };
        process.kill();
        process.join_stderr();
        Err(process.error(&awaited))
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the child wrote to stderr so far (as far as the reader has got).
    pub fn stderr(&self) -> Stderr {
        lock(&self.stderr).clone()
    }

    /// Send SIGTERM (through `kill`, the way an operator would).
    pub fn terminate(&self) -> Result<(), Error> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| Error(format!("cannot run kill -TERM: {e}")))?;
        if sent.success() {
            Ok(())
        } else {
            Err(Error(format!("kill -TERM {} failed: {sent}", self.name)))
        }
    }

    /// SIGKILL and reap (no chance to clean up: a crash). Does nothing if it has exited already.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Wait up to `limit` for the child to exit; its status and all it wrote to stderr. Past the
    /// limit the child is killed and the error says so.
    pub fn wait(mut self, limit: Duration) -> Result<Stopped, Error> {
        match self.exit_within(limit)? {
            Some(status) => Ok(self.stopped(status, false)),
            None => {
                self.kill();
                self.join_stderr();
                Err(self.error(&format!("did not exit within {limit:?}")))
            }
        }
    }

    /// SIGTERM, then wait up to `grace` for the exit; SIGKILL if it is still running then.
    pub fn stop(mut self, grace: Duration) -> Result<Stopped, Error> {
        if self.terminate().is_err() {
            // Already gone: nothing to signal, only to reap.
            let status = self.child.wait().map_err(|e| self.error(&e.to_string()))?;
            return Ok(self.stopped(status, false));
        }
        if let Some(status) = self.exit_within(grace)? {
            return Ok(self.stopped(status, false));
        }
        self.child.kill().ok();
        let status = self.child.wait().map_err(|e| self.error(&e.to_string()))?;
        Ok(self.stopped(status, true))
    }

    fn exit_within(&mut self, limit: Duration) -> Result<Option<ExitStatus>, Error> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if started.elapsed() > limit => return Ok(None),
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => return Err(self.error(&format!("could not be waited for: {e}"))),
            }
        }
    }

    /// After the exit: every stderr line read, then the outcome.
    fn stopped(&mut self, status: ExitStatus, killed: bool) -> Stopped {
        self.join_stderr();
        Stopped {
            status,
            killed,
            stderr: self.stderr(),
        }
    }

    fn join_stderr(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            join_bounded(reader);
        }
    }

    fn error(&self, what: &str) -> Error {
        Error(format!(
            "{} {what}; {}",
            self.name,
            self.stderr().describe()
        ))
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run `command` to completion with `stdin` as its input (none: empty), bounded by `limit` (then it is
/// killed and the error names `name`); both outputs are read while it runs.
pub fn run(
    mut command: Command,
    name: &str,
    stdin: Option<&str>,
    limit: Duration,
) -> Result<Output, Error> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error(format!("cannot start {name}: {e}")))?;
    let stdout = read_all(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading its input closes the pipe: not an error here.
        pipe.write_all(input.as_bytes()).ok();
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() <= limit => std::thread::sleep(POLL),
            outcome => {
                child.kill().ok();
                child.wait().ok();
                let stderr = join_bounded(stderr).unwrap_or_default();
                let what = match outcome {
                    Err(e) => format!("could not be waited for: {e}"),
                    _ => format!("did not exit within {limit:?}"),
                };
                return Err(Error(format!("{name} {what}; its stderr:\n{stderr}")));
            }
        }
    };
    Ok(Output {
        status,
        stdout: join_bounded(stdout).unwrap_or_default(),
        stderr: join_bounded(stderr).unwrap_or_default(),
    })
}

/// The ready-line test, shared by the stdout and (optionally) the stderr reader.
struct Watch<F> {
    prefix: String,
    parse: F,
}

impl<T: Send + 'static, F: Fn(&str) -> Option<T> + Send + Sync + 'static> Watch<F> {
    /// A line handler that sends the first ready value to `found` (then only reads on).
    fn lines(self: Arc<Self>, found: mpsc::Sender<T>) -> impl FnMut(&str) + Send + 'static {
        let mut found = Some(found);
        move |line| {
            if found.is_some()
                && let Some(value) = after_prefix(line, &self.prefix).and_then(&self.parse)
                && let Some(found) = found.take()
            {
                found.send(value).ok();
            }
        }
    }
}

/// A thread that hands every line of `stream` to `each` until it ends (so the pipe never fills).
fn spawn_reader(
    stream: impl Read + Send + 'static,
    mut each: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            each(line);
        }
    })
}

/// The reader's result once it reaches the end of its stream; bounded by [`DRAIN_LIMIT`], as a
/// grandchild may hold the pipe open after the child is gone.
fn join_bounded<T>(reader: JoinHandle<T>) -> Option<T> {
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < DRAIN_LIMIT {
        std::thread::sleep(POLL);
    }
    if reader.is_finished() {
        reader.join().ok()
    } else {
        None
    }
}

/// A thread that reads all of `stream` (invalid UTF-8 replaced).
fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).ok();
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn lock(stderr: &Mutex<Stderr>) -> MutexGuard<'_, Stderr> {
    stderr
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A port on 127.0.0.1 that was free when asked (the caller binds it next; a race with another process
/// is possible, so callers that can retry do).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn owned(rest: &str) -> Option<String> {
        Some(rest.to_owned())
    }

    fn ready(prefix: &str, on_stderr: bool, keep_lines: Option<usize>) -> Ready<'_> {
        Ready {
            name: "sh",
            prefix,
            on_stderr,
            within: Duration::from_secs(10),
            keep_lines,
        }
    }

    #[test]
    fn finds_the_ready_line_and_keeps_stderr() {
        let (child, port) = ChildProcess::start(
            sh("echo warming >&2; echo 'srv listening on 127.0.0.1:99'; echo done >&2; exec sleep 30"),
            &ready("listening on 127.0.0.1:", false, None),
            |rest| rest.parse::<u16>().ok(),
        )
        .unwrap();
        assert_eq!(port, 99);
        let stopped = child.stop(Duration::from_secs(5)).unwrap();
        assert!(!stopped.killed && !stopped.status.success());
        assert_eq!(stopped.stderr.text(), "warming\ndone\n");
        assert_eq!(stopped.stderr.lines, 2);
    }

    #[test]
    fn a_line_the_parser_refuses_is_not_the_ready_line() {
        let (child, base) = ChildProcess::start(
            sh("echo 'Serving HTTP on soon' >&2; echo 'Serving HTTP on http://h:1/' >&2; exec sleep 30"),
            &ready("Serving HTTP on ", true, Some(1)),
            |rest| rest.starts_with("http://").then(|| rest.to_owned()),
        )
        .unwrap();
        assert_eq!(base, "http://h:1/");
        let stopped = child.wait(Duration::from_millis(50));
        assert!(
            stopped
                .unwrap_err()
                .to_string()
                .contains("did not exit within")
        );
    }

    #[test]
    fn failures_name_what_was_awaited_and_the_stderr() {
        let exited = ChildProcess::start(sh("echo oops >&2"), &ready("ready", false, None), owned)
            .unwrap_err()
            .to_string();
        assert!(exited.starts_with("sh exited before printing a line holding \"ready\""));
        assert!(exited.ends_with("its stderr:\noops\n"), "{exited}");
        let mut slow = ready("ready", false, Some(2));
        slow.within = Duration::from_millis(200);
        let late = ChildProcess::start(
            sh("echo 1 >&2; echo 2 >&2; echo 3 >&2; exec sleep 30"),
            &slow,
            owned,
        )
        .unwrap_err()
        .to_string();
        assert!(
            late.contains("did not print a line holding \"ready\" within 200ms"),
            "{late}"
        );
        assert!(late.ends_with("(last lines):\n2\n3\n"), "{late}");
        assert!(ChildProcess::start(Command::new("/nonexistent"), &slow, owned).is_err());
    }

    #[test]
    fn dropping_the_handle_kills_the_child() {
        let (child, _) = ChildProcess::start(
            sh("echo ready; exec sleep 30"),
            &ready("ready", false, None),
            owned,
        )
        .unwrap();
        let pid = child.id();
        drop(child);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn runs_to_completion_with_input() {
        let out = run(
            sh("cat; echo err >&2; exit 3"),
            "sh",
            Some("in\n"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((out.status.code(), out.stdout.as_str()), (Some(3), "in\n"));
        assert_eq!(out.stderr, "err\n");
        let slow = run(
            sh("echo late >&2; exec sleep 30"),
            "sh",
            None,
            Duration::from_millis(100),
        );
        let message = slow.unwrap_err().to_string();
        assert!(
            message.starts_with("sh did not exit within 100ms"),
            "{message}"
        );
        assert!(message.ends_with("late\n"), "{message}");
    }
}
