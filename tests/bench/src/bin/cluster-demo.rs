//! `make cluster`: a cluster on this machine to try by hand. A private PostgreSQL server (in
//! target/cluster-demo), three `plugin-host serve` nodes on it and haproxy on 127.0.0.1:8080 checking
//! their `/readyz`; the example plugins pushed into the plugin set; an admin made; the URLs printed.
//! Ctrl-C stops everything it started and removes the database.

use std::time::Duration;

use anyhow::{Context, Result};
use plugin_host_bench::cluster::{cli, haproxy, start_nodes};
use plugin_host_kit::postgres::Postgres;

const PORT: u16 = 8080;
const PASSWORD: &str = "cluster-demo-password";

fn main() -> Result<()> {
    let root = plugin_host_bench::repo().join("target/cluster-demo");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let pg = Postgres::start(&root.join("pg")).context("cannot start PostgreSQL")?;
    pg.psql("postgres", "CREATE DATABASE plugin_host")?;
    let url = pg.url("plugin_host");
    let setup = root.join("setup").to_str().unwrap().to_owned();
    let db = ["--database", url.as_str(), "--data", setup.as_str()];
    fn with<'a>(args: &[&'a str], db: &[&'a str]) -> Vec<&'a str> {
        [args, db].concat()
    }
    let with_db = |args: &[&'static str]| with(args, &db);
    cli(
        &with_db(&["user", "add", "admin", "--admin", "--password-stdin"]),
        Some(&format!("{PASSWORD}\n")),
    )?;
    let key = cli(&with_db(&["key", "create", "--user", "admin"]), None)?;
    let key = key
        .split_whitespace()
        .find(|w| w.starts_with("phk_"))
        .context("no key printed")?
        .to_owned();
    let plugins = plugin_host_bench::repo().join("target/plugins");
    let mut files: Vec<String> = std::fs::read_dir(&plugins)
        .with_context(|| format!("{} is missing: make plugins", plugins.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut push = vec!["plugin", "push"];
    push.extend(files.iter().map(String::as_str));
    push.extend(db);
    print!("{}", cli(&push, None)?);
    let nodes = start_nodes(
        3,
        &url,
        &root,
        "shutdown_delay_ms = 2000\ntrusted_proxies = [\"127.0.0.1\"]\n[cluster]\npoll_secs = 10\n",
    )?;
    let proxy = haproxy(&root, &nodes.addrs, PORT).with_context(|| {
        format!("cannot start haproxy on 127.0.0.1:{PORT} (is the port taken?)")
    })?;
    println!();
    println!("PostgreSQL  {url}");
    for (i, a) in nodes.addrs.iter().enumerate() {
        println!("node {i}      http://{a}   (readiness: http://{a}/readyz)");
    }
    println!(
        "haproxy     http://{}/api   (round robin, health checks on /readyz)",
        proxy.addr
    );
    println!(
        "admin UI    http://{}/admin   user admin, password {PASSWORD}",
        proxy.addr
    );
    println!("nodes       http://{}/admin/nodes", proxy.addr);
    println!("API key     {key}");
    println!(
        "try         curl -X POST -H 'authorization: Bearer {key}' http://{}/admin/api/plugins/hello/disable",
        proxy.addr
    );
    println!();
    println!("Ctrl-C stops everything.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    println!("stopping");
    drop(proxy);
    drop(nodes);
    std::thread::sleep(Duration::from_millis(100));
    drop(pg);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
