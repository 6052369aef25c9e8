//! The audit log: one row per state change made through the admin UI, the admin API or the CLI, and per
//! sign-in and sign-out — who (`actor`), what (`action`, `target`, `detail`) and from where (`client`).
//! Never a password, key or cookie.

use anyhow::Result;
use serde::Serialize;

use crate::accounts::db::Pool;

/// One audit row.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

/// Most rows one page returns.
pub const MAX_PAGE: i64 = 500;

/// Append a row.
pub async fn record(
    db: &Pool,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    client: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (time, actor, action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::clock::unix_ms())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(client)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// [`record`] for a change that has already happened: a row that cannot be written is logged (with
/// its action), not returned, since undoing the change is not an option.
pub async fn record_or_log(
    db: &Pool,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    client: &str,
) {
    if let Err(e) = record(db, actor, action, target, detail, client).await {
        tracing::error!(error = %format!("{e:#}"), %action, "cannot write audit row");
    }
}

/// Up to `limit` rows older than row `before` (newest first); the next page starts before the last
/// returned id.
pub async fn page(db: &Pool, before: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
    let limit = limit.clamp(1, MAX_PAGE);
    let rows: Vec<(i64, i64, String, String, String, String, String)> = sqlx::query_as(
        "SELECT id, time, actor, action, target, detail, client FROM audit
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, time, actor, action, target, detail, client)| Entry {
            id,
            time,
            actor,
            action,
            target,
            detail,
            client,
        })
        .collect())
}
