//! API keys: made from 32 random bytes (`phk_` + 43 base64url characters), shown once at creation and
//! stored only as their SHA-256 plus a short visible prefix. Each key has an owner, a role (never above
//! the owner's), optional path-prefix scopes, an optional expiry, a revoked flag and a last-used time.

use anyhow::{Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::accounts::db::{Pool, sha256_hex};
use crate::accounts::users::parse_role;
use crate::bindings::types::Role;

/// Every key's text starts with this, so keys are easy to recognise (and to scan for in leaked text).
pub const KEY_PREFIX: &str = "phk_";
/// Characters of the key text kept visible (`phk_` + 8): enough to tell keys apart in a listing.
const VISIBLE_CHARS: usize = 12;

/// The text of the key made from `secret`: [`KEY_PREFIX`] and the 32 bytes in unpadded base64url
/// (43 characters).
pub fn key_text(secret: &[u8; 32]) -> String {
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret))
}

/// The secret of `text` if it is a key [`key_text`] can make, else `None`: exactly those texts (the
/// unused low bits of the last character must be zero), so anything else is refused before a lookup.
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let encoded = text.strip_prefix(KEY_PREFIX)?;
    if encoded.len() != 43 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(encoded).ok()?.try_into().ok()
}

/// A key as listings show it (never the key or its hash).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub prefix: String,
    pub owner: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub created: i64,
    pub last_used_at: Option<i64>,
}

impl KeyInfo {
    /// How the audit log describes this key: id, role and scopes (never the key).
    pub fn audit_detail(&self) -> String {
        format!(
            "id {} role {} scopes [{}]",
            self.id,
            self.role,
            self.scopes.join(",")
        )
    }
}

/// What authentication learns from a presented key.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub id: String,
    pub owner: String,
    /// The key's role, capped at the owner's current role.
    pub role: Role,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

/// A new key: what to store and the text to show once.
#[derive(Debug, Serialize)]
pub struct NewKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The key itself. Shown once; only its hash is kept.
    pub key: String,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
);

/// id, owner, key role, owner role, scopes, expires_at, revoked.
type GrantRow = (String, String, String, String, String, Option<i64>, i64);

const SELECT: &str = "SELECT id, prefix, owner, role, scopes, expires_at, revoked, created, last_used_at FROM api_keys";

fn info(
    (id, prefix, owner, role, scopes, expires_at, revoked, created, last_used_at): Row,
) -> KeyInfo {
    KeyInfo {
        id,
        prefix,
        owner,
        role,
        scopes: split_scopes(&scopes),
        expires_at,
        revoked: revoked != 0,
        created,
        last_used_at,
    }
}

pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Check a scope: an absolute path prefix without query or fragment.
pub fn check_scope(scope: &str) -> Result<()> {
    if !scope.starts_with('/') || scope.contains(['?', '#', '\n', '\r']) || scope.len() > 256 {
        bail!("invalid scope {scope:?}: a scope is a path prefix such as /notes");
    }
    Ok(())
}

/// Whether `path` is inside `scope`: equal to it, or below it at a segment boundary
/// (`/notes` covers `/notes` and `/notes/1`, not `/notesX`).
pub fn in_scope(scope: &str, path: &str) -> bool {
    match path.strip_prefix(scope) {
        Some(rest) => rest.is_empty() || scope.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// Parse an expiry: a duration from now (`30d`, `12h`, `45m`) or a UTC date (`2027-01-31`, the start of
/// that day) or date-time (`2027-01-31T12:00:00Z`) of the years 1 to 9999. Returns unix milliseconds.
/// Only real dates and times are accepted (no February 30th, no 24:00), and a duration too long to
/// add to `now` is refused rather than wrapped around.
pub fn parse_expiry(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    let unit = |c: char| match c {
        'd' => Some(86_400_000i64),
        'h' => Some(3_600_000),
        'm' => Some(60_000),
        's' => Some(1_000),
        _ => None,
    };
    if let Some(last) = text.chars().last()
        && let Some(ms) = unit(last)
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        if n <= 0 {
            bail!("expiry {text:?} is not in the future");
        }
        return n
            .checked_mul(ms)
            .and_then(|span| now.checked_add(span))
            .ok_or_else(|| anyhow::anyhow!("expiry {text:?} is too far in the future"));
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (text, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let bad = || {
        anyhow::anyhow!("invalid expiry {text:?}: use 30d, 12h, 2027-01-31 or 2027-01-31T12:00:00Z")
    };
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d)
    {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let hms: Vec<i64> = time
            .split(':')
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let [h, mi, s] = match hms[..] {
            [h, mi] => [h, mi, 0],
            [h, mi, s] => [h, mi, s],
            _ => return Err(bad()),
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..60).contains(&s) {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + s;
    }
    let at = secs * 1000;
    if at <= now {
        bail!("expiry {text:?} is not in the future");
    }
    Ok(at)
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Create a key for `owner` with `role` (at most the owner's), `scopes` and `expires_at`.
pub async fn create(
    db: &Pool,
    owner: &str,
    role: Option<Role>,
    scopes: &[String],
    expires_at: Option<i64>,
) -> Result<NewKey> {
    for s in scopes {
        check_scope(s)?;
    }
    let Some(user) = crate::accounts::users::get(db, owner).await? else {
        bail!("no user named {owner:?}");
    };
    let owner_role = parse_role(&user.role)?;
    let role = role.unwrap_or(owner_role);
    if role.rank() > owner_role.rank() || role == Role::Anonymous {
        bail!(
            "a key of {owner:?} can have role user{}, not {}",
            if owner_role == Role::Admin {
                " or admin"
            } else {
                ""
            },
            role.as_str()
        );
    }
    let key = key_text(&crate::accounts::db::random_bytes::<32>());
    let info = KeyInfo {
        id: crate::accounts::db::hex(&crate::accounts::db::random_bytes::<8>()),
        prefix: key[..VISIBLE_CHARS].to_owned(),
        owner: owner.to_owned(),
        role: role.as_str().to_owned(),
        scopes: scopes.to_vec(),
        expires_at,
        revoked: false,
        created: crate::clock::unix_ms(),
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, prefix, hash, owner, role, scopes, expires_at, revoked, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(&info.id)
    .bind(&info.prefix)
    .bind(sha256_hex(&key))
    .bind(owner)
    .bind(&info.role)
    .bind(scopes.join("\n"))
    .bind(expires_at)
    .bind(info.created)
    .execute(db.writer())
    .await?;
    Ok(NewKey { info, key })
}

/// Keys, newest first; only `owner`'s when given.
pub async fn list(db: &Pool, owner: Option<&str>) -> Result<Vec<KeyInfo>> {
    let rows: Vec<Row> = match owner {
        Some(owner) => {
            sqlx::query_as(&format!(
                "{SELECT} WHERE owner = $1 ORDER BY created DESC, id"
            ))
            .bind(owner)
            .fetch_all(db.reader())
            .await?
        }
        None => {
            sqlx::query_as(&format!("{SELECT} ORDER BY created DESC, id"))
                .fetch_all(db.reader())
                .await?
        }
    };
    Ok(rows.into_iter().map(info).collect())
}

/// Revoke the key whose id or visible prefix is `which`; refuses an ambiguous prefix.
pub async fn revoke(db: &Pool, which: &str) -> Result<KeyInfo> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} WHERE id = $1 OR prefix = $1"))
        .bind(which)
        .fetch_all(db.reader())
        .await?;
    let key = match rows.len() {
        0 => bail!("no key with id or prefix {which:?}"),
        1 => info(rows.into_iter().next().expect("one row")),
        n => bail!("{n} keys match {which:?}; revoke by id"),
    };
    sqlx::query("UPDATE api_keys SET revoked = 1 WHERE id = $1")
        .bind(&key.id)
        .execute(db.writer())
        .await?;
    Ok(KeyInfo {
        revoked: true,
        ..key
    })
}

/// What the key `text` grants, if it exists and its owner still does.
pub async fn lookup(db: &Pool, text: &str) -> Result<Option<KeyGrant>> {
    if parse_key(text).is_none() {
        return Ok(None);
    }
    let row: Option<GrantRow> = sqlx::query_as(
        "SELECT k.id, k.owner, k.role, u.role, k.scopes, k.expires_at, k.revoked
         FROM api_keys k JOIN users u ON u.name = k.owner WHERE k.hash = $1",
    )
    .bind(sha256_hex(text))
    .fetch_optional(db.reader())
    .await?;
    Ok(row.map(
        |(id, owner, key_role, owner_role, scopes, expires_at, revoked)| {
            let key_role = parse_role(&key_role).unwrap_or(Role::User);
            let owner_role = parse_role(&owner_role).unwrap_or(Role::User);
            KeyGrant {
                id,
                owner,
                role: if key_role.rank() <= owner_role.rank() {
                    key_role
                } else {
                    owner_role
                },
                scopes: split_scopes(&scopes),
                expires_at,
                revoked: revoked != 0,
            }
        },
    ))
}

/// Record that key `id` was used at `now` (callers do this at most once a minute per key).
pub async fn touch(db: &Pool, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_at_segment_boundaries() {
        assert!(in_scope("/notes", "/notes"));
        assert!(in_scope("/notes", "/notes/1"));
        assert!(!in_scope("/notes", "/notesx"));
        assert!(in_scope("/notes/", "/notes/1"));
        assert!(!in_scope("/notes", "/hello"));
    }

    #[test]
    fn expiry_forms() {
        let now = 1_000_000;
        assert_eq!(parse_expiry("30d", now).unwrap(), now + 30 * 86_400_000);
        assert_eq!(parse_expiry("2h", now).unwrap(), now + 7_200_000);
        assert_eq!(parse_expiry("2027-01-31", now).unwrap(), 1_801_353_600_000);
        assert_eq!(
            parse_expiry("2027-01-31T12:00:00Z", now).unwrap(),
            1_801_353_600_000 + 12 * 3_600_000
        );
        assert!(parse_expiry("1970-01-01", now).is_err());
        assert!(parse_expiry("soon", now).is_err());
        assert!(parse_expiry("0d", now).is_err());
    }

    /// Found by `fuzz::key_expiry`: durations too long for an i64 wrapped around (this one to
    /// i64::MIN, silently, in release builds), and dates that do not exist were moved to others.
    #[test]
    fn expiry_refuses_overflow_and_dates_that_do_not_exist() {
        let now = 1_000_000;
        assert!(parse_expiry("72057594037927936h", now).is_err());
        assert!(parse_expiry(&format!("{}s", i64::MAX), now).is_err());
        assert!(parse_expiry("9223372036854775807-01-01", now).is_err());
        for bad in [
            "2027-02-29",
            "2027-02-31",
            "2027-04-31",
            "2027-01-31T24:00",
            "2027-01-31T12:60",
            "2027-01-31T12:00:60",
            "2027-01-31T-1:00",
            "10000-01-01",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
        assert_eq!(parse_expiry("2028-02-29", now).unwrap(), 1_835_395_200_000);
        assert!(parse_expiry("9999-12-31T23:59:59Z", now).is_ok());
    }
}
