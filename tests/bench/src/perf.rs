//! The memory syscalls a server makes during a measured run (`mprotect`, `madvise`, `mmap`, `munmap`),
//! counted by `perf stat` attached to its process (all its threads) on the syscalls' tracepoints. perf
//! only counts here, it does not sample: each counted syscall costs the server a tracepoint hit, far
//! below a microsecond. perf writes its counts (`-x,`: one comma-separated line per event) to stderr
//! when it gets SIGINT, which is how a count is ended when wrk finishes.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// The tracepoints counted, in the order of [`MemSyscalls::per_request`].
pub const EVENTS: [&str; 4] = [
    "syscalls:sys_enter_mprotect",
    "syscalls:sys_enter_madvise",
    "syscalls:sys_enter_mmap",
    "syscalls:sys_enter_munmap",
];
/// Short names of [`EVENTS`], for table headers.
pub const NAMES: [&str; 4] = ["mprotect", "madvise", "mmap", "munmap"];
/// How long perf may take to attach to the server's threads before the load starts.
const ATTACH: Duration = Duration::from_millis(300);

/// Memory syscalls counted over one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemSyscalls {
    pub mprotect: u64,
    pub madvise: u64,
    pub mmap: u64,
    pub munmap: u64,
}

impl MemSyscalls {
    /// Each count divided by `requests`, in [`EVENTS`] order.
    pub fn per_request(&self, requests: u64) -> [f64; 4] {
        let n = requests.max(1) as f64;
        [self.mprotect, self.madvise, self.mmap, self.munmap].map(|c| c as f64 / n)
    }
}

/// Whether perf can count the tracepoints here: counts them for `true`. The error says why not (no
/// perf, no tracefs, no permission), for the one note the report prints.
pub fn check() -> Result<()> {
    let out = Command::new("perf")
        .args(["stat", "-x,", "-e", &EVENTS.join(","), "--", "true"])
        .stdin(Stdio::null())
        .output()
        .context("cannot run perf (apt-get install linux-perf)")?;
    let text = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "perf stat failed: {}", text.trim());
    parse(&text).map(drop)
}

/// A `perf stat` attached to one process, counting until [`Counting::stop`]; killed if dropped.
#[derive(Debug)]
pub struct Counting {
    child: Option<Child>,
}

impl Counting {
    /// Attach to process `pid` and give perf time to open its counters on every thread.
    pub fn start(pid: u32) -> Result<Self> {
        let mut child = Command::new("perf")
            .args(["stat", "-x,", "-e", &EVENTS.join(",")])
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run perf (apt-get install linux-perf)")?;
        std::thread::sleep(ATTACH);
        if let Some(status) = child.try_wait()? {
            let mut text = String::new();
            if let Some(mut err) = child.stderr.take() {
                err.read_to_string(&mut text).ok();
            }
            bail!(
                "perf stat -p {pid} exited at once ({status}): {}",
                text.trim()
            );
        }
        Ok(Self { child: Some(child) })
    }

    /// End the count (SIGINT, as Ctrl-C would) and read it.
    pub fn stop(mut self) -> Result<MemSyscalls> {
        let mut child = self.child.take().context("perf was already stopped")?;
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        if !sent.is_ok_and(|s| s.success()) {
            child.kill().ok();
            child.wait().ok();
            bail!("cannot send SIGINT to perf stat");
        }
        let out = child
            .wait_with_output()
            .context("cannot wait for perf stat")?;
        // perf exits with 130 after SIGINT; its counts are what matters.
        parse(&String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The four counts in `perf stat -x,` output: `VALUE,UNIT,EVENT,RUNTIME,PERCENT,...` lines (other
/// lines ignored). `<not counted>` or `<not supported>` for an event is an error, as is a missing one.
fn parse(text: &str) -> Result<MemSyscalls> {
    let mut counts = [None; 4];
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(value), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let Some(i) = EVENTS.iter().position(|e| e == event) else {
            continue;
        };
        let count = value
            .trim()
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("perf gave {value:?} for {event}"))?;
        counts[i] = Some(count);
    }
    let count = |i: usize| {
        counts[i].with_context(|| format!("no count for {} in perf's output: {text:?}", EVENTS[i]))
    };
    Ok(MemSyscalls {
        mprotect: count(0)?,
        madvise: count(1)?,
        mmap: count(2)?,
        munmap: count(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
3400,,syscalls:sys_enter_mprotect,2001882651,100.00,,
1200,,syscalls:sys_enter_madvise,2001882651,100.00,,
21,,syscalls:sys_enter_mmap,2001882651,100.00,,
1,,syscalls:sys_enter_munmap,2001882651,100.00,,
";

    #[test]
    fn reads_the_counts_of_perf_stat_csv() {
        let counts = parse(OUTPUT).unwrap();
        assert_eq!(
            counts,
            MemSyscalls {
                mprotect: 3400,
                madvise: 1200,
                mmap: 21,
                munmap: 1
            }
        );
        assert_eq!(counts.per_request(100), [34.0, 12.0, 0.21, 0.01]);
        // Other lines (a blank line, perf's notes) are skipped.
        assert!(parse(&format!("\n# started on x\n{OUTPUT}")).is_ok());
    }

    #[test]
    fn an_uncounted_or_missing_event_is_an_error() {
        let uncounted = OUTPUT.replace("21,,", "<not counted>,,");
        let e = parse(&uncounted).unwrap_err().to_string();
        assert!(
            e.contains("<not counted>") && e.contains("sys_enter_mmap"),
            "{e}"
        );
        let missing: String = OUTPUT.lines().take(3).map(|l| format!("{l}\n")).collect();
        let e = parse(&missing).unwrap_err().to_string();
        assert!(e.contains("sys_enter_munmap"), "{e}");
        assert!(parse("perf: command not found").is_err());
    }
}
