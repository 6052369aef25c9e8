//! haproxy in front of cluster nodes, for the cluster tests, `make cluster` and the cluster benchmark:
//! round robin over the nodes, active health checks on `GET /readyz`, `X-Forwarded-For` added, and
//! (optionally) a request that met a refused or closed connection retried on another node. Debian's
//! `haproxy` package provides the program; `make test` installs it when missing.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run haproxy.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The port on 127.0.0.1 to listen on; 0 picks a free one.
    pub port: u16,
    /// Health check interval; a node is out after 2 failed checks and back after 2 good ones.
    pub check_interval: Duration,
    /// Retry a request that found a connection refused, an empty answer or a timeout, on another node.
    pub retries: bool,
}

/// A running haproxy; killed when dropped.
#[derive(Debug)]
pub struct Haproxy {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

/// The haproxy program (Debian puts it in /usr/sbin, which a non-root PATH may lack).
pub fn bin() -> Option<PathBuf> {
    [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl Haproxy {
    /// Write a configuration for `backends` into `dir` and start haproxy on it; returns once it accepts
    /// connections.
    pub fn start(dir: &Path, backends: &[SocketAddr], options: &Options) -> io::Result<Self> {
        let program = bin().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "haproxy is not installed (apt-get install haproxy; `make test` does this)",
            )
        })?;
        let port = match options.port {
            0 => crate::process::free_port()?,
            p => p,
        };
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, a)| format!("    server n{i} {a} check\n"))
            .collect();
        let retries = if options.retries {
            "    retries 3\n    option redispatch 1\n    retry-on conn-failure empty-response response-timeout\n"
        } else {
            ""
        };
        let config = format!(
            "global\n    maxconn 4000\n    nbthread 1\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             {retries}    option forwardfor\n\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n\
             \x20   default-server inter {}ms fall 2 rise 2\n{servers}",
            options.check_interval.as_millis()
        );
        std::fs::create_dir_all(dir)?;
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config)?;
        let mut child = Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "haproxy exited ({status}); its configuration is {}",
                    file.display()
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(io::Error::other(format!("haproxy did not open {addr}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { addr, child })
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// haproxy's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
