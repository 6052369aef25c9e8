//! A private PostgreSQL server for tests and demos: `initdb` into a directory, `pg_ctl start` on a free
//! loopback port with its socket in that directory, `trust` authentication for the `postgres` superuser,
//! nothing listening beyond 127.0.0.1. Debian's `postgresql` package provides the programs
//! (`/usr/lib/postgresql/<version>/bin`); `make test` installs it when missing.
//!
//! `initdb` refuses to run as root, so as root every server program runs as the `postgres` user
//! (`runuser`), and the directory is handed to that user.
//!
//! [`Postgres::shared`] is one server for a whole test process, stopped (and its directory removed) by
//! a watchdog once that process has exited, however it ended.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A running private server. Dropping it stops the server (immediate mode) and removes its directory,
/// except for the [`shared`](Postgres::shared) one, which its watchdog stops.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    owned: bool,
}

/// The directory with `initdb`, `pg_ctl` and `psql`: the newest `/usr/lib/postgresql/*/bin`, else
/// `pg_config --bindir`, else `None`.
pub fn bin_dir() -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    bin.join("initdb").exists().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn check(what: &str, out: Output) -> io::Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl Postgres {
    /// Create a cluster in `dir` (which must not exist yet or be empty) and start it on a free port.
    pub fn start(dir: &Path) -> io::Result<Self> {
        let bin = bin_dir().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL is not installed (apt-get install postgresql; `make test` does this)",
            )
        })?;
        let as_postgres = is_root();
        std::fs::create_dir_all(dir)?;
        if as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir)
                    .output()?,
            )?;
        }
        let mut pg = Self {
            bin,
            dir: dir.to_owned(),
            port: 0,
            as_postgres,
            owned: true,
        };
        let data = pg.data();
        check(
            "initdb",
            pg.command("initdb")
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data)
                .output()?,
        )?;
        // A port picked free can be taken before the server binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            pg.port = crate::process::free_port()?;
            match pg.pg_ctl_start() {
                Ok(()) => return Ok(pg),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    /// One server for the whole process, started on first use in a temporary directory.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("plugin-host-pg-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut pg = Postgres::start(&dir).expect("the private PostgreSQL server starts");
            pg.owned = false;
            pg.watch_owner(std::process::id());
            pg
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    fn pg_ctl_start(&self) -> io::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300",
            self.port,
            self.dir.display()
        );
        // pg_ctl waits (-w) until the server accepts connections; its output goes to a log file so
        // that the server, which keeps running, holds no pipe of ours open.
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()?;
        check("pg_ctl start", out).map(drop).map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            io::Error::other(format!("{e}\nserver log:\n{log}"))
        })
    }

    /// Stop the server (`fast`: connections are cut, the data is kept) — a database outage.
    pub fn stop(&self) -> io::Result<()> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()?;
        check("pg_ctl stop", out).map(drop)
    }

    /// Start the server again on the same port after [`stop`](Self::stop).
    pub fn restart(&self) -> io::Result<()> {
        self.pg_ctl_start()
    }

    /// Stop this server once process `pid` has exited, and remove its directory.
    fn watch_owner(&self, pid: u32) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!("runuser -u postgres -- {}", pg_ctl.display())
        } else {
            pg_ctl.display().to_string()
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{}' -m immediate -w stop; rm -rf '{}'",
            self.data().display(),
            self.dir.display()
        );
        // setsid: a Ctrl-C to the test run's process group must not kill the watchdog first.
        let spawned = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            eprintln!("cannot start the PostgreSQL watchdog: {e}");
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as the `postgres` superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Run `sql` with `psql` in database `db`; its output (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()?;
        let out = check("psql", out)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Everything database `db` holds, as SQL text (`pg_dump`).
    pub fn dump(&self, db: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                db,
            ])
            .stdin(Stdio::null())
            .output()?;
        let out = check("pg_dump", out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Create an empty database with a name unique in this process; its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE works on the private server");
        self.url(&name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_creates_databases_stops_and_restarts() {
        let dir = std::env::temp_dir().join(format!("ph-kit-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pg = Postgres::start(&dir).unwrap();
        let url = pg.fresh_database();
        let db = url.rsplit('/').next().unwrap().to_owned();
        pg.psql(&db, "CREATE TABLE t (v BIGINT); INSERT INTO t VALUES (7)")
            .unwrap();
        pg.stop().unwrap();
        assert!(pg.psql(&db, "SELECT v FROM t").is_err(), "stopped");
        pg.restart().unwrap();
        assert_eq!(pg.psql(&db, "SELECT v FROM t").unwrap(), "7", "data kept");
        drop(pg);
        assert!(!dir.exists(), "dropping removes the directory");
    }
}
