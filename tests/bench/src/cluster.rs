//! Cluster mode's moving parts for `cluster-bench` and `cluster-demo`: the `plugin-host` CLI, nodes on
//! one database, haproxy in front, and a one-shot HTTP client good enough to drive them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::server::{Server, Spec};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange on a fresh connection: status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = key
        .map(|k| format!("authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-length: 0\r\nconnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_owned()))
}

pub fn revision_of(addr: SocketAddr) -> Option<i64> {
    let (status, body) = http(addr, "GET", "/readyz", None).ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["revision"].as_i64()
}

pub fn host_bin() -> PathBuf {
    crate::repo().join("target/release/plugin-host")
}

pub fn cli(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new(host_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "plugin-host {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Nodes {
    pub servers: Vec<Server>,
    pub addrs: Vec<SocketAddr>,
}

pub fn start_nodes(n: usize, url: &str, dir: &Path, config: &str) -> Result<Nodes> {
    let file = dir.join("node.toml");
    std::fs::write(&file, config)?;
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let port = free_port();
        let data = dir.join(format!("node{i}"));
        let spec = Spec {
            command: [
                host_bin().to_str().unwrap(),
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
                file.to_str().unwrap(),
                "--database",
                url,
                "--data",
                data.to_str().unwrap(),
            ]
            .map(String::from)
            .to_vec(),
            env: vec![("RUST_LOG".into(), "warn".into())],
            ready_prefix: "plugin-host listening on ".into(),
        };
        servers.push(Server::start(&spec, None)?);
        addrs.push(format!("127.0.0.1:{port}").parse()?);
    }
    for &addr in &addrs {
        let deadline = Instant::now() + Duration::from_secs(30);
        while revision_of(addr).is_none() {
            ensure!(Instant::now() < deadline, "node {addr} never became ready");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(Nodes { servers, addrs })
}

pub struct Haproxy {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn haproxy(dir: &Path, backends: &[SocketAddr], port: u16) -> Result<Haproxy> {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, a)| format!("    server n{i} {a} check\n"))
        .collect();
    let config = format!(
        "global\n    maxconn 4000\n    nbthread 1\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
         backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n\
         \x20   default-server inter 1s fall 2 rise 2\n{servers}"
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config)?;
    let bin = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("haproxy is not installed (apt-get install haproxy)")?;
    let child = Command::new(bin)
        .args(["-db", "-f"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(addr, "GET", "/hello/bench", None).ok().map(|r| r.0) != Some(200) {
        ensure!(Instant::now() < deadline, "haproxy never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Haproxy { child, addr })
}
