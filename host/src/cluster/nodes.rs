//! The `nodes` table: each node writes its own row every heartbeat (address, start, last seen, the
//! revision and generation it serves, whether it is ready, its last build error), so any node can show
//! whether the cluster has converged (`GET /admin/api/nodes`, the admin UI's Nodes page).

use crate::accounts::db::Pool;
use crate::cluster::ClusterNode;

/// Write `node`'s row.
pub async fn report(node: &ClusterNode, generation: u64, ready: bool) -> Result<(), sqlx::Error> {
    let served = node.served();
    sqlx::query(
        "INSERT INTO nodes (id, address, started, last_seen, revision, generation, ready, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, started = excluded.started,
         last_seen = excluded.last_seen, revision = excluded.revision,
         generation = excluded.generation, ready = excluded.ready, error = excluded.error",
    )
    .bind(&node.id)
    .bind(node.address())
    .bind(node.started_ms)
    .bind(crate::clock::unix_ms())
    .bind(served.revision.unwrap_or(-1))
    .bind(generation as i64)
    .bind(i64::from(ready))
    .bind(served.error.unwrap_or_default())
    .execute(node.db.writer())
    .await?;
    Ok(())
}

/// One node as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeRow {
    pub id: String,
    pub address: String,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    /// Milliseconds since its last report.
    pub age_ms: i64,
    /// Not heard from for longer than [`STALE_MS`]: stopped, or cut off from the database.
    pub stale: bool,
    /// The revision it serves (-1: none yet).
    pub revision: i64,
    pub generation: i64,
    pub ready: bool,
    pub error: String,
}

/// A node silent for this long is shown as stale and left out of convergence.
pub const STALE_MS: i64 = 15_000;

/// The cluster as the nodes report it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// The revision of the plugin set.
    pub revision: i64,
    /// Every node that is not stale serves `revision`, is ready and reports no error.
    pub converged: bool,
    pub nodes: Vec<NodeRow>,
}

/// (id, address, started, last_seen, revision, generation, ready, error)
type NodeDbRow = (String, String, i64, i64, i64, i64, i64, String);

/// Every node's row and whether they agree.
pub async fn overview(db: &Pool) -> Result<Overview, sqlx::Error> {
    let revision = crate::cluster::store::revision(db).await?;
    let rows: Vec<NodeDbRow> = sqlx::query_as(
        "SELECT id, address, started, last_seen, revision, generation, ready, error FROM nodes ORDER BY id",
    )
    .fetch_all(db.reader())
    .await?;
    let now = crate::clock::unix_ms();
    let nodes: Vec<NodeRow> = rows
        .into_iter()
        .map(
            |(id, address, started, last_seen, node_revision, generation, ready, error)| NodeRow {
                id,
                address,
                started_ms: started,
                last_seen_ms: last_seen,
                age_ms: now - last_seen,
                stale: now - last_seen > STALE_MS,
                revision: node_revision,
                generation,
                ready: ready != 0,
                error,
            },
        )
        .collect();
    let converged = nodes
        .iter()
        .filter(|n| !n.stale)
        .all(|n| n.revision == revision && n.ready && n.error.is_empty());
    Ok(Overview {
        revision,
        converged,
        nodes,
    })
}
