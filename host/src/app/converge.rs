//! The tasks that keep a node converged: the **listener** (its own connection, `LISTEN` on the revision
//! channel; every notification and every reconnection wakes the converger), the **converger** (on a
//! wake-up or every `cluster.poll_secs`: re-read the revision and reload through the single-flight path
//! until the node serves it) and the **heartbeat** (every `cluster.heartbeat_ms`, and at once after each
//! build: write this node's row, which is also how the node learns whether the database answers). All three end when the node closes.
//!
//! No work happens on the listener: it only wakes the converger, so a slow build never holds the
//! notification queue.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::app::state::AppState;
use crate::cluster::{ClusterNode, nodes, store};

/// Start the three tasks for `state`'s cluster node (nothing in single-node mode).
pub fn spawn(state: &Arc<AppState>) {
    let Some(node) = state.cluster().cloned() else {
        return;
    };
    if node.listen {
        tokio::spawn(listen(node.clone()));
    }
    tokio::spawn(converge(node.clone(), Arc::downgrade(state)));
    tokio::spawn(heartbeat(node, Arc::downgrade(state)));
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

async fn listen(node: Arc<ClusterNode>) {
    let mut closed = node.closed();
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = async {
            let mut listener = PgListener::connect(&node.url).await?;
            listener.listen(store::CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            result = connected => match result {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "cannot listen for plugin set changes");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = closed.changed() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
            _ = closed.changed() => return,
        };
        backoff = BACKOFF_MIN;
        tracing::info!(channel = store::CHANNEL, "listening for plugin set changes");
        // LISTEN first, then read: whatever changed before this point is found by the re-read.
        node.wake.notify_one();
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => node.wake.notify_one(),
                    // The connection was lost and has been re-established (and LISTEN re-issued):
                    // notifications in between are gone, so re-read.
                    Ok(None) => {
                        tracing::info!("listener reconnected; re-reading the revision");
                        node.wake.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listener connection failed");
                        break;
                    }
                },
                _ = closed.changed() => return,
            }
        }
    }
}

async fn converge(node: Arc<ClusterNode>, state: Weak<AppState>) {
    let mut closed = node.closed();
    loop {
        let timer = tokio::select! {
            () = node.wake.notified() => false,
            () = tokio::time::sleep(node.poll) => true,
            _ = closed.changed() => return,
        };
        let Some(state) = state.upgrade() else { return };
        // Reload until this node serves the revision it last read (a reload that joined a build already
        // under way may have built an older one), unless the build of that revision fails: then retry it
        // only on the timer.
        loop {
            let latest = match store::revision(&node.db).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the plugin set revision");
                    node.set_database_ok(false);
                    break;
                }
            };
            let served = node.served();
            if served.revision == Some(latest) {
                break;
            }
            if served.failed_revision == Some(latest) && !timer {
                break;
            }
            tracing::info!(
                revision = latest,
                serving = served.revision,
                "plugin set changed; reloading"
            );
            let outcome = state.reload().await;
            if !outcome.ok {
                break;
            }
        }
    }
}

async fn heartbeat(node: Arc<ClusterNode>, state: Weak<AppState>) {
    let mut closed = node.closed();
    loop {
        {
            let Some(state) = state.upgrade() else { return };
            let readiness = state.readiness();
            match nodes::report(&node, state.current().id, readiness.ready).await {
                Ok(()) => node.set_database_ok(true),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot write this node's row");
                    node.set_database_ok(false);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(node.heartbeat) => {}
            () = node.beat.notified() => {}
            _ = closed.changed() => return,
        }
    }
}
