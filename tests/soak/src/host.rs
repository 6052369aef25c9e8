//! The host under test as a child process: start `plugin-host serve` on 127.0.0.1:0 (optionally under
//! taskset), wait for its "listening on" line, keep its pipes drained (plugin_host_kit::process), read
//! its RSS from /proc, and stop it with SIGTERM (SIGKILL if it does not exit in time).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plugin_host_kit::process::{ChildProcess, Ready};

pub(crate) use plugin_host_kit::process::Stopped;

/// How long the host may take to print its "listening on" line.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long the host may take to exit after SIGTERM before it gets SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(15);
/// Stderr lines kept for error messages and the summary.
const TAIL_LINES: usize = 20;
const LISTENING_PREFIX: &str = "plugin-host listening on http://";

/// A running `plugin-host serve`; killed if dropped before [`Host::stop`].
pub(crate) struct Host {
    process: ChildProcess,
    base_url: String,
}

/// Reads the resident set size of the host process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RssProbe {
    pid: u32,
}

/// The host's resident set: in all, and its anonymous (heap, stacks, mappings of its own) and
/// file-backed (the binary's pages, mapped files) parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rss {
    pub(crate) total: u64,
    pub(crate) anon: Option<u64>,
    pub(crate) file: Option<u64>,
}

impl RssProbe {
    /// The host's resident set size in bytes, from VmRSS, RssAnon and RssFile in /proc/PID/status
    /// (the source of truth).
    pub(crate) async fn read(self) -> Result<Rss> {
        let path = format!("/proc/{}/status", self.pid);
        let status = tokio::fs::read_to_string(&path)
            .await
            .with_context(|| format!("reading {path} (did the host exit?)"))?;
        let total =
            kib_line(&status, "VmRSS:").with_context(|| format!("no VmRSS line in {path}"))?;
        Ok(Rss {
            total,
            anon: kib_line(&status, "RssAnon:"),
            file: kib_line(&status, "RssFile:"),
        })
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
        let command = build_command(&command);
        let (process, base_url) = tokio::task::spawn_blocking(move || {
            let ready = Ready {
                name: "the host",
                prefix: LISTENING_PREFIX,
                on_stderr: false,
                within: START_LIMIT,
                keep_lines: Some(TAIL_LINES),
            };
            ChildProcess::start(command, &ready, |addr| Some(format!("http://{addr}")))
        })
        .await??;
        Ok(Host { process, base_url })
    }

    /// `http://ADDR` of the host.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The host's process id (for SIGHUP).
    pub(crate) fn pid(&self) -> u32 {
        self.process.id()
    }

    /// A handle that reads the host's RSS (usable from other tasks).
    pub(crate) fn rss_probe(&self) -> RssProbe {
        RssProbe {
            pid: self.process.id(),
        }
    }

    /// SIGTERM, then wait (bounded); SIGKILL if it is still running after the limit. Its stderr:
    /// how many lines (with RUST_LOG=warn, each is a warning or an error) and the last few.
    pub(crate) async fn stop(self) -> Result<Stopped> {
        let process = self.process;
        Ok(tokio::task::spawn_blocking(move || process.stop(STOP_LIMIT)).await??)
    }
}

/// `[taskset -c CPU] BIN serve --listen 127.0.0.1:0 --plugins DIR --data DIR --config FILE`, RUST_LOG=warn.
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
        .env("RUST_LOG", "warn");
    cmd
}

/// Bytes from a `NAME:  1234 kB` line of /proc/PID/status (`VmRSS:`, `RssAnon:`).
fn kib_line(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tplugin-host\nVmPeak:\t 999 kB\nVmRSS:\t   51200 kB\n\
                      RssAnon:\t   20480 kB\nRssFile:\t   30720 kB\nThreads:\t4\n";
        assert_eq!(kib_line(status, "VmRSS:"), Some(50 * 1024 * 1024));
        assert_eq!(kib_line(status, "RssAnon:"), Some(20 * 1024 * 1024));
        assert_eq!(kib_line(status, "RssFile:"), Some(30 * 1024 * 1024));
        assert_eq!(kib_line("Name: x\n", "VmRSS:"), None);
    }
}
