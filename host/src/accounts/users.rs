//! Users: names, argon2id password hashes and roles, in the `users` table.
//!
//! Hashing and verifying run on tokio's blocking pool (argon2id with its default parameters takes tens
//! of milliseconds of CPU). Logging in as a user that does not exist verifies against a dummy hash, so
//! the answer takes about as long as for a wrong password and does not reveal which names exist.

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Serialize;

use crate::accounts::db::Pool;
use crate::bindings::types::Role;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A user as listings show it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    /// `user` or `admin`.
    pub role: String,
    pub created: i64,
}

/// `user` or `admin` as a role (anything else is refused).
pub fn parse_role(text: &str) -> Result<Role> {
    match text {
        "user" => Ok(Role::User),
        "admin" => Ok(Role::Admin),
        other => bail!("unknown role {other:?}; roles are user and admin"),
    }
}

/// Check a new user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        bail!("invalid user name {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@'");
    }
    Ok(())
}

/// Check a new password's length.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(())
}

/// The argon2id PHC string of `password` (on the blocking pool).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&crate::accounts::db::random_bytes::<16>())
            .map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await
    .context("password hashing task failed")?
}

/// Whether `password` matches the PHC string `hash` (on the blocking pool).
async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A valid hash of a random password, verified against when the user does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt =
            SaltString::encode_b64(&crate::accounts::db::random_bytes::<16>()).expect("16 bytes");
        let password = crate::accounts::db::hex(&crate::accounts::db::random_bytes::<16>());
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 with default parameters")
            .to_string()
    })
}

/// The user named `name` with `password`, or None (unknown user or wrong password, indistinguishably).
pub async fn verify(db: &Pool, name: &str, password: &str) -> Result<Option<User>> {
    let row: Option<(String, String, String, i64)> =
        sqlx::query_as("SELECT name, password, role, created FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(db.reader())
            .await?;
    let hash = match &row {
        Some((_, hash, _, _)) => hash.clone(),
        None => tokio::task::spawn_blocking(|| dummy_hash().to_owned()).await?,
    };
    let matches = verify_password(password.to_owned(), hash).await;
    Ok(row
        .filter(|_| matches)
        .map(|(name, _, role, created)| User {
            name,
            role,
            created,
        }))
}

/// Create a user. Fails if the name is taken.
pub async fn create(db: &Pool, name: &str, password: &str, role: Role) -> Result<User> {
    check_name(name)?;
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let created = crate::clock::unix_ms();
    let inserted = sqlx::query(
        "INSERT INTO users (name, password, role, created) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&hash)
    .bind(role.as_str())
    .bind(created)
    .execute(db.writer())
    .await?
    .rows_affected();
    if inserted == 0 {
        bail!("user {name:?} already exists");
    }
    Ok(User {
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        created,
    })
}

/// Set a user's password; their sessions end (a password change logs out everywhere).
pub async fn set_password(db: &Pool, name: &str, password: &str) -> Result<()> {
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let mut tx = crate::accounts::db::begin_write(db).await?;
    let changed = sqlx::query("UPDATE users SET password = $1 WHERE name = $2")
        .bind(&hash)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        bail!("no user named {name:?}");
    }
    sqlx::query("DELETE FROM sessions WHERE user_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every user, by name.
pub async fn list(db: &Pool) -> Result<Vec<User>> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT name, role, created FROM users ORDER BY name")
            .fetch_all(db.reader())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, role, created)| User {
            name,
            role,
            created,
        })
        .collect())
}

/// The user named `name`, if any.
pub async fn get(db: &Pool, name: &str) -> Result<Option<User>> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT name, role, created FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(name, role, created)| User {
        name,
        role,
        created,
    }))
}

/// How many admins exist.
pub async fn admin_count(db: &Pool) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(db.reader())
        .await?;
    Ok(n)
}

/// Change a user's role; never demote the last admin. Their sessions and keys follow at once (both
/// read the role from the user's row).
pub async fn set_role(db: &Pool, name: &str, role: Role) -> Result<()> {
    let mut tx = crate::accounts::db::begin_write(db).await?;
    let current: Option<(String,)> = sqlx::query_as("SELECT role FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((current,)) = current else {
        bail!("no user named {name:?}");
    };
    if current == "admin" && role != Role::Admin {
        let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(&mut *tx)
            .await?;
        if admins <= 1 {
            bail!("{name:?} is the last admin; make another user an admin first");
        }
    }
    sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
        .bind(role.as_str())
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Remove a user with their keys and sessions; never the last admin.
pub async fn remove(db: &Pool, name: &str) -> Result<()> {
    let mut tx = crate::accounts::db::begin_write(db).await?;
    let role: Option<(String,)> = sqlx::query_as("SELECT role FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((role,)) = role else {
        bail!("no user named {name:?}");
    };
    if role == "admin" {
        let (admins,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .fetch_one(&mut *tx)
            .await?;
        if admins <= 1 {
            bail!("{name:?} is the last admin; create another admin first");
        }
    }
    // Keys and sessions go with the user (ON DELETE CASCADE, spelled out for databases without it on).
    for sql in [
        "DELETE FROM api_keys WHERE owner = $1",
        "DELETE FROM sessions WHERE user_name = $1",
        "DELETE FROM users WHERE name = $1",
    ] {
        sqlx::query(sql).bind(name).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
