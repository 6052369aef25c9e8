//! A server under test: a program started through `taskset` on one CPU (or unpinned), its address taken
//! from the line it prints when it accepts connections, its output drained for as long as it runs, its
//! CPU time and peak RSS read from `/proc`, and killed when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use plugin_host_kit::process::{ChildProcess, Ready};

/// How long a server may take to print its address (wasmtime serve compiles the component first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Stderr lines kept for an error message (wasmtime serve may write one a request).
const KEEP_LINES: usize = 50;

/// How to start one server.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The text just before the address in the line the server prints (stdout or stderr) once it
    /// listens, e.g. `"plugin-host listening on "`. The address runs to the end of the line or a `/`
    /// after the port.
    pub ready_prefix: String,
}

/// `plugin-host serve` (binary `host`) on any port with `config`, the example plugins of the repository
/// at `root` and the data directory `scratch/data` (shared by every host start, so a compile cache one
/// start fills serves the next), with the environment variables `env`.
pub fn host_spec(
    host: &Path,
    config: &Path,
    root: &Path,
    scratch: &Path,
    env: Vec<(String, String)>,
) -> Spec {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    Spec {
        command: vec![
            path(host),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            path(config),
            "--plugins".into(),
            path(&root.join("target/plugins")),
            "--templates".into(),
            path(&root.join("templates")),
            "--data".into(),
            path(&scratch.join("data")),
        ],
        env,
        ready_prefix: "plugin-host listening on ".into(),
    }
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct Server {
    process: ChildProcess,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    /// Start `spec` pinned to `cpu` (any CPU for `None`) and wait for its address. The server's
    /// output is read on two threads until it exits, so it never blocks on a full pipe (wasmtime serve
    /// writes to stderr).
    pub fn start(spec: &Spec, cpu: Option<u32>) -> Result<Self> {
        let (program, args) = spec.command.split_first().context("empty command")?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", &cpu.to_string()]).arg(program);
                taskset
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_BACKTRACE");
        let name = match cpu {
            Some(_) => format!("{program} (through taskset)"),
            None => program.clone(),
        };
        let ready = Ready {
            name: &name,
            prefix: &spec.ready_prefix,
            on_stderr: true,
            within: READY_TIMEOUT,
            keep_lines: Some(KEEP_LINES),
        };
        let (process, base) = ChildProcess::start(command, &ready, address)?;
        Ok(Self { process, base })
    }

    /// The peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        peak_rss_of(self.process.id())
    }

    /// CPU time (user + system, all threads) the server has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time_of(self.process.id())
    }

    /// The server's process id (`taskset` execs the server, so it is the server's own).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// `VmHWM` of process `pid`, in bytes. `taskset` execs the server, so the child's pid is the server's.
pub fn peak_rss_of(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    vm_hwm(&status).with_context(|| format!("no VmHWM in {path}"))
}

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on every Linux ABI we run on).
const USER_HZ: u64 = 100;

/// User + system CPU time of process `pid` (all its threads), from `/proc/PID/stat`.
pub fn cpu_time_of(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("no utime/stime in {path}"))?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // field 3 is the first after the name
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmHWM:   1234 kB` line of a `/proc/PID/status` text, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// `http://HOST:PORT` from what follows the ready prefix on its line (a trailing `/` is dropped).
fn address(rest: &str) -> Option<String> {
    let address = rest.split_whitespace().next()?.trim_end_matches('/');
    address.starts_with("http://").then(|| address.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_host_kit::process::after_prefix;

    /// The address in a line the server prints, as [`Server::start`] finds it.
    fn address_in(line: &str, prefix: &str) -> Option<String> {
        address(after_prefix(line, prefix)?)
    }

    #[test]
    fn finds_the_address_each_server_prints() {
        assert_eq!(
            address_in(
                "plugin-host listening on http://127.0.0.1:4321",
                "plugin-host listening on "
            )
            .as_deref(),
            Some("http://127.0.0.1:4321")
        );
        assert_eq!(
            address_in(
                "Serving HTTP on http://127.0.0.1:39999/",
                "Serving HTTP on "
            )
            .as_deref(),
            Some("http://127.0.0.1:39999")
        );
        assert_eq!(address_in("Serving HTTP on soon", "Serving HTTP on "), None);
        assert_eq!(address_in("other line", "Serving HTTP on "), None);
    }

    #[test]
    fn reads_peak_rss_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(vm_hwm(status), Some(2048 * 1024));
        assert_eq!(vm_hwm("Name:\tx\n"), None);
        assert!(peak_rss_of(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "42 (my (odd) prog) S 1 42 42 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(280));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
        cpu_time_of(std::process::id()).unwrap();
    }
}
