//! The host under test as a child process: start `plugin-host serve` on 127.0.0.1:0 (optionally under
//! taskset), wait for its "listening on" line, keep its pipes drained (two threads), read its RSS from
//! /proc, and stop it with SIGTERM (SIGKILL if it does not exit in time).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// How long the host may take to print its "listening on" line.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long the host may take to exit after SIGTERM before it gets SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(15);
/// Stderr lines kept for error messages and the summary.
const TAIL_LINES: usize = 20;
const LISTENING_PREFIX: &str = "plugin-host listening on http://";

/// A running `plugin-host serve`.
pub(crate) struct Host {
    child: Child,
    pid: u32,
    base_url: String,
    stderr: Arc<Mutex<StderrLog>>,
}

/// What the host wrote to stderr: how many lines (with RUST_LOG=warn, each is a warning or an error)
/// and the last few of them.
#[derive(Debug, Default)]
pub(crate) struct StderrLog {
    pub(crate) lines: u64,
    pub(crate) tail: VecDeque<String>,
}

/// How the host ended.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) status: ExitStatus,
    pub(crate) killed: bool,
    pub(crate) stderr: StderrLog,
}

/// Reads the resident set size of the host process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RssProbe {
    pid: u32,
}

impl RssProbe {
    /// The host's resident set size in bytes, from VmRSS in /proc/PID/status (the source of truth).
    pub(crate) async fn read(self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = tokio::fs::read_to_string(&path)
            .await
            .with_context(|| format!("reading {path} (did the host exit?)"))?;
        parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
    }
}

/// An error naming `make build` if the host binary is missing.
pub(crate) fn ensure_built(bin: &Path) -> Result<()> {
    if !bin.is_file() {
        bail!(
            "{} is missing: build the host with `make build` (or pass --host-bin)",
            bin.display()
        );
    }
    Ok(())
}

/// Where the host binary is and how to run it.
pub(crate) struct HostCommand<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) plugins_dir: &'a Path,
    pub(crate) data_dir: &'a Path,
    pub(crate) config_file: &'a Path,
    pub(crate) pin_cpu: Option<&'a str>,
}

impl Host {
    /// Start the host and wait until it accepts connections.
    pub(crate) async fn start(command: HostCommand<'_>) -> Result<Host> {
        let mut child = build_command(&command)
            .spawn()
            .with_context(|| format!("starting {}", command.bin.display()))?;
        let pid = child.id().context("the host exited at once")?;
        let stderr = Arc::new(Mutex::new(StderrLog::default()));
        drain_stderr(&mut child, stderr.clone())?;
        let listening = watch_stdout(&mut child)?;
        let addr = match tokio::time::timeout(START_LIMIT, listening).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(_)) => bail!("the host exited before listening; {}", stderr_tail(&stderr)),
            Err(_) => bail!(
                "the host did not listen within {START_LIMIT:?}; {}",
                stderr_tail(&stderr)
            ),
        };
        Ok(Host {
            child,
            pid,
            base_url: format!("http://{addr}"),
            stderr,
        })
    }

    /// `http://ADDR` of the host.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A handle that reads the host's RSS (usable from other tasks).
    pub(crate) fn rss_probe(&self) -> RssProbe {
        RssProbe { pid: self.pid }
    }

    /// SIGTERM, then wait (bounded); SIGKILL if it is still running after the limit.
    pub(crate) async fn stop(mut self) -> Result<Stopped> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .context("running kill -TERM")?;
        let mut killed = false;
        let status = if !sent.success() {
            self.child.wait().await?
        } else if let Ok(waited) = tokio::time::timeout(STOP_LIMIT, self.child.wait()).await {
            waited?
        } else {
            killed = true;
            self.child
                .kill()
                .await
                .context("SIGKILL after the stop limit")?;
            self.child.wait().await?
        };
        let stderr = std::mem::take(&mut *lock(&self.stderr));
        Ok(Stopped {
            status,
            killed,
            stderr,
        })
    }
}

/// `[taskset -c CPU] BIN serve --listen 127.0.0.1:0 --plugins DIR --data DIR --config FILE`, pipes, RUST_LOG=warn.
fn build_command(command: &HostCommand<'_>) -> Command {
    let mut cmd = match command.pin_cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpu]).arg(command.bin);
            cmd
        }
        None => Command::new(command.bin),
    };
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugins"])
        .arg(command.plugins_dir)
        .arg("--data")
        .arg(command.data_dir)
        .arg("--config")
        .arg(command.config_file)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A thread reads the host's stdout to its end (so the pipe never fills); the receiver gets the
/// address of the "listening on" line, or an error if stdout ends without it.
fn watch_stdout(child: &mut Child) -> Result<oneshot::Receiver<String>> {
    let pipe = File::from(
        child
            .stdout
            .take()
            .context("no stdout pipe")?
            .into_owned_fd()?,
    );
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.trim().strip_prefix(LISTENING_PREFIX)
                && let Some(tx) = tx.take()
            {
                tx.send(addr.to_owned()).ok();
            }
        }
    });
    Ok(rx)
}

/// A thread keeps reading the host's stderr into `log` so the pipe never fills.
fn drain_stderr(child: &mut Child, log: Arc<Mutex<StderrLog>>) -> Result<()> {
    let pipe = File::from(
        child
            .stderr
            .take()
            .context("no stderr pipe")?
            .into_owned_fd()?,
    );
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut log = lock(&log);
            log.lines += 1;
            if log.tail.len() == TAIL_LINES {
                log.tail.pop_front();
            }
            log.tail.push_back(line);
        }
    });
    Ok(())
}

/// The last stderr lines, for an error message.
fn stderr_tail(log: &Mutex<StderrLog>) -> String {
    let log = lock(log);
    if log.tail.is_empty() {
        return "the host wrote nothing to stderr".to_owned();
    }
    let tail: Vec<&str> = log.tail.iter().map(String::as_str).collect();
    format!("host stderr (last lines):\n{}", tail.join("\n"))
}

fn lock(log: &Mutex<StderrLog>) -> std::sync::MutexGuard<'_, StderrLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes from the `VmRSS:  1234 kB` line of /proc/PID/status.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tplugin-host\nVmPeak:\t 999 kB\nVmRSS:\t   51200 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(50 * 1024 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }
}
