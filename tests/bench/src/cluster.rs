//! Cluster mode's moving parts for `cluster-bench` and `cluster-demo`: the `plugin-host` CLI, nodes on
//! one database, haproxy in front, and a one-shot HTTP client good enough to drive them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

pub use plugin_host_kit::haproxy::Haproxy;

use crate::server::{Server, Spec};

/// A free port on 127.0.0.1 (free when asked; the caller binds it right after).
pub fn free_port() -> u16 {
    plugin_host_kit::process::free_port().expect("loopback has a free port")
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
    std::fs::create_dir_all(dir)?;
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

/// haproxy on `port` (0: a free one) in front of `backends`, health checks every second.
pub fn haproxy(dir: &Path, backends: &[SocketAddr], port: u16) -> Result<Haproxy> {
    let options = plugin_host_kit::haproxy::Options {
        port,
        check_interval: Duration::from_secs(1),
        retries: false,
    };
    let proxy = Haproxy::start(dir, backends, &options)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(proxy.addr, "GET", "/readyz", None).ok().map(|r| r.0) != Some(200) {
        ensure!(
            Instant::now() < deadline,
            "haproxy never found a ready node"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(proxy)
}
