//! Cluster mode: N stateless nodes on one PostgreSQL database (`database = "postgres://..."`).
//!
//! What lives where: users, keys, sessions, the key-value store, the audit log, the login limiter's
//! counts and the plugin set ([`store`]) are in the database; a node keeps only caches it can rebuild
//! (fetched components, compiled code, the serving files under `<data_dir>/cluster`).
//!
//! How a change reaches every node: the change commits with a new **revision** and a `pg_notify`. A
//! node re-reads the revision on every notification, every (re)connection of its listener and every
//! `cluster.poll_secs`, and reloads through the single-flight path when it differs from what it serves
//! (`app/converge.rs`). A notification is only a wake-up; the revision is the truth, so a node whose listener was
//! down still converges within one poll. A node that fails to build a revision keeps serving the old one
//! and reports the error ([`nodes`]).

pub mod nodes;
pub mod store;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::accounts::db::Pool;
use crate::config::Config;
use store::Dirs;

/// This node's part in the cluster: its identity, what it serves, whether the database answers.
#[derive(Debug)]
pub struct ClusterNode {
    pub(crate) db: Pool,
    /// The database URL, for the listener's own connection.
    pub(crate) url: String,
    /// This node's id in `nodes` (`cluster.node_id`, else `HOSTNAME:PORT`).
    pub id: String,
    pub(crate) dirs: Dirs,
    pub(crate) poll: Duration,
    pub(crate) heartbeat: Duration,
    /// Whether to LISTEN for change notifications (`cluster.listen`).
    pub(crate) listen: bool,
    pub(crate) started_ms: i64,
    address: Mutex<String>,
    status: Mutex<Served>,
    database_ok: AtomicBool,
    /// Wakes the converger: a notification arrived or the listener (re)connected.
    pub(crate) wake: Notify,
    /// Wakes the heartbeat early: what this node serves changed.
    pub(crate) beat: Notify,
    /// Set when the node's state is gone: the tasks of `app/converge.rs` end.
    closed: tokio::sync::watch::Sender<bool>,
}

/// What this node serves and how its last build went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Served {
    /// The revision of the plugin set being served; `None` until the first one is.
    pub revision: Option<i64>,
    /// The last build's error, if it failed (the previous revision keeps serving).
    pub error: Option<String>,
    /// The revision whose build failed.
    pub failed_revision: Option<i64>,
}

impl ClusterNode {
    /// The node for `config` over `db` (at `url`).
    pub fn new(db: Pool, url: String, config: &Config) -> Self {
        let id = if config.cluster.node_id.is_empty() {
            format!("{}:{}", hostname(), config.listen.port())
        } else {
            config.cluster.node_id.clone()
        };
        Self {
            db,
            url,
            id,
            dirs: Dirs::under(&config.data_dir),
            poll: Duration::from_secs(config.cluster.poll_secs),
            heartbeat: Duration::from_millis(config.cluster.heartbeat_ms),
            listen: config.cluster.listen,
            started_ms: crate::clock::unix_ms(),
            address: Mutex::new(config.listen.to_string()),
            status: Mutex::new(Served::default()),
            database_ok: AtomicBool::new(true),
            wake: Notify::new(),
            beat: Notify::new(),
            closed: tokio::sync::watch::Sender::new(false),
        }
    }

    /// A receiver that changes when the node closes.
    pub(crate) fn closed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Stop the node's tasks (the listener's connection closes with them).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Record the address the listener is bound to (and, when `node_id` was not set and the port was
    /// 0, use it in the id).
    pub(crate) fn set_address(&mut self, addr: std::net::SocketAddr) {
        if self.id.ends_with(":0") {
            self.id = format!("{}:{}", hostname(), addr.port());
        }
        *self.address.lock().expect("address lock") = addr.to_string();
    }

    pub(crate) fn address(&self) -> String {
        self.address.lock().expect("address lock").clone()
    }

    /// What this node serves now.
    pub fn served(&self) -> Served {
        self.status.lock().expect("status lock").clone()
    }

    /// Whether the database answered the last time this node asked.
    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Relaxed)
    }

    pub(crate) fn set_database_ok(&self, ok: bool) {
        let was = self.database_ok.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable; reporting not ready");
            }
        }
    }

    /// Bring the serving directory to the current revision (fetching missing components); the revision.
    pub(crate) async fn sync(&self) -> anyhow::Result<i64> {
        let snapshot = match store::snapshot(&self.db).await {
            Ok(s) => s,
            Err(e) => {
                self.set_database_ok(false);
                return Err(anyhow::Error::new(e).context("cannot read the plugin set"));
            }
        };
        store::materialize(&self.db, &self.dirs, &self.dirs.serving, &snapshot.plugins).await?;
        Ok(snapshot.revision)
    }

    /// A build of `revision` worked and is served.
    pub(crate) fn built(&self, revision: i64) {
        let mut s = self.status.lock().expect("status lock");
        s.revision = Some(revision);
        s.error = None;
        s.failed_revision = None;
        drop(s);
        self.beat.notify_one();
    }

    /// A build (of `revision`, when it got that far) failed with `error`.
    pub(crate) fn failed(&self, revision: Option<i64>, error: String) {
        let mut s = self.status.lock().expect("status lock");
        s.error = Some(error);
        s.failed_revision = revision;
        drop(s);
        self.beat.notify_one();
    }
}

/// This machine's host name (`HOSTNAME`, else the kernel's), for node ids.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
