//! Browser sessions: a random 32-byte id that lives only in the `ph_session` cookie (the database keeps
//! its SHA-256), a CSRF token per session, idle and absolute expiry, and the cookie's attributes.

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::accounts::db::{Pool, sha256_hex};
use crate::accounts::users::parse_role;
use crate::bindings::types::Role;

/// The session cookie's name.
pub const COOKIE: &str = "ph_session";

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub created: i64,
}

/// How long sessions last, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(crate::accounts::db::random_bytes::<32>())
}

/// Start a session for `user` at `now` (ms); returns the id (for the cookie only) and the CSRF token.
pub async fn create(db: &Pool, user: &str, now: i64) -> Result<(String, String)> {
    let (id, csrf) = (random_token(), random_token());
    sqlx::query(
        "INSERT INTO sessions (id_hash, csrf, user_name, created, last_seen) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(sha256_hex(&id))
    .bind(&csrf)
    .bind(user)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok((id, csrf))
}

/// The session with cookie value `id`, if it exists and has not expired at `now` (ms; an expired one
/// is deleted). Refreshes its last-seen time, at most once per a tenth of the idle time.
pub async fn lookup(
    db: &Pool,
    id: &str,
    lifetimes: Lifetimes,
    now: i64,
) -> Result<Option<Session>> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let id_hash = sha256_hex(id);
    let row: Option<(String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT s.user_name, s.csrf, s.created, s.last_seen, u.role
         FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.id_hash = $1",
    )
    .bind(&id_hash)
    .fetch_optional(db.reader())
    .await?;
    let Some((user, csrf, created, last_seen, role)) = row else {
        return Ok(None);
    };
    if now - last_seen >= lifetimes.idle_ms || now - created >= lifetimes.absolute_ms {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&id_hash)
            .execute(db.writer())
            .await?;
        return Ok(None);
    }
    if now - last_seen >= (lifetimes.idle_ms / 10).min(60_000) {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(&id_hash)
            .execute(db.writer())
            .await?;
    }
    Ok(Some(Session {
        user,
        role: parse_role(&role)?,
        csrf,
        created,
    }))
}

/// End the session with cookie value `id` (nothing happens if there is none).
pub async fn delete(db: &Pool, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(sha256_hex(id))
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Delete sessions past either expiry at `now` (ms; run now and then so the table does not grow).
pub async fn purge_expired(db: &Pool, lifetimes: Lifetimes, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE last_seen <= $1 OR created <= $2")
        .bind(now - lifetimes.idle_ms)
        .bind(now - lifetimes.absolute_ms)
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected())
}

/// The `Set-Cookie` value that stores session `id` in the browser.
pub fn set_cookie(id: &str, secure: bool, absolute_ms: i64) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        absolute_ms / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session id in a request's `Cookie` headers, if any.
pub fn from_cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let headers = ["a=1; ph_session=abc ; b=2"];
        assert_eq!(from_cookies(headers.into_iter()), Some("abc"));
        assert_eq!(from_cookies(["x=1"].into_iter()), None);
        let c = set_cookie("abc", true, 3_600_000);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("; Secure"));
        assert!(!set_cookie("abc", false, 1000).contains("Secure"));
    }
}
