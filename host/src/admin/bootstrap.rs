//! Opening the process's accounts and storage at start, and the first admin.
//!
//! The first admin comes from the CLI (`plugin-host user add NAME --admin`) or, while no admin exists,
//! from a one-time bootstrap secret: `PLUGIN_HOST_BOOTSTRAP_SECRET` from the environment (for containers),
//! or else a random secret printed in the log at start. `POST /admin/api/bootstrap` with
//! `{secret, username, password}` creates that admin once; afterwards it is refused. There is never a
//! default password.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::auth::AuthContext;
use crate::accounts::db::constant_time_eq;
use crate::accounts::kv::KvStore;
use crate::app::state::AppState;
use crate::bindings::types::Role;
use crate::config::Config;
use crate::http::context::Client;
use crate::http::error::Error;
use crate::http::respond::no_store;

/// The environment variable with an operator-chosen bootstrap secret.
pub(crate) const SECRET_ENV: &str = "PLUGIN_HOST_BOOTSTRAP_SECRET";
/// Shortest bootstrap secret accepted from the environment.
const MIN_SECRET_CHARS: usize = 16;

/// Open the database (applying migrations) and build what the process keeps: authentication and the
/// key-value store. Arms the bootstrap secret when no admin exists.
pub(crate) async fn open(config: &Config) -> Result<(Arc<AuthContext>, Arc<KvStore>)> {
    let location = config.database_location();
    let db = crate::accounts::db::open_location(&location).await?;
    tracing::info!(database = %location.redacted(), "database open");
    let auth = Arc::new(AuthContext::new(db.clone(), config.auth.clone()));
    let kv = Arc::new(KvStore::new(db, config));
    arm(&auth, std::env::var(SECRET_ENV).ok()).await?;
    // Expired sessions are deleted when met; this sweeps the ones never met again (and, in cluster
    // mode, old login failure counts), on one node at a time. It holds the context weakly, so it ends
    // (and lets the pool close) once the server's state is gone.
    let purge = Arc::downgrade(&auth);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            let Some(auth) = purge.upgrade() else { break };
            let sweep = async {
                crate::accounts::sessions::purge_expired(
                    &auth.db,
                    auth.lifetimes(),
                    auth.clock.now_ms(),
                )
                .await?;
                auth.limiter.sweep().await?;
                anyhow::Ok(())
            };
            match crate::accounts::db::run_once(&auth.db, "sweep:sessions", sweep).await {
                Ok(Some(Ok(()))) => {}
                Ok(None) => tracing::debug!("another node is sweeping sessions"),
                Ok(Some(Err(e))) | Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot purge expired sessions");
                }
            }
        }
    });
    Ok((auth, kv))
}

/// Set the bootstrap secret if no admin exists: `from_env`, or a random one that is logged.
async fn arm(auth: &AuthContext, from_env: Option<String>) -> Result<()> {
    if crate::accounts::users::admin_count(&auth.db).await? > 0 {
        return Ok(());
    }
    let secret = match from_env.filter(|s| !s.is_empty()) {
        Some(secret) => {
            anyhow::ensure!(
                secret.chars().count() >= MIN_SECRET_CHARS,
                "{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters"
            );
            tracing::warn!(
                "no admin exists yet: create one with `plugin-host user add NAME --admin`, or POST /admin/api/bootstrap with the secret from {SECRET_ENV}"
            );
            secret
        }
        None => {
            let secret = crate::accounts::db::hex(&crate::accounts::db::random_bytes::<16>());
            tracing::warn!(
                bootstrap_secret = %secret,
                "no admin exists yet: create one with `plugin-host user add NAME --admin`, or POST /admin/api/bootstrap with this one-time secret (valid until this process stops)"
            );
            secret
        }
    };
    *auth.bootstrap.lock().expect("bootstrap lock") = Some(secret);
    Ok(())
}

#[derive(Deserialize)]
struct BootstrapBody {
    secret: String,
    username: String,
    password: String,
}

/// Why the first admin was not created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("too many wrong secrets from this address")]
    Locked(std::time::Duration),
    #[error("bootstrap is closed: an admin exists (ask them for an account)")]
    Closed,
    #[error("wrong bootstrap secret")]
    WrongSecret,
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// Whether the first admin can still be created with the bootstrap secret: it is set and no admin
/// exists (one may have been added from the CLI since start; then the secret is dropped).
pub(crate) async fn armed(auth: &AuthContext) -> bool {
    if auth.bootstrap.lock().expect("bootstrap lock").is_none() {
        return false;
    }
    match crate::accounts::users::admin_count(&auth.db).await {
        Ok(0) => true,
        Ok(_) => {
            *auth.bootstrap.lock().expect("bootstrap lock") = None;
            false
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot count admins");
            false
        }
    }
}

/// Create the first admin with the one-time `secret`, once; wrong secrets count against `client`'s
/// address like failed logins. Writes the audit row.
pub(crate) async fn first_admin(
    state: &AppState,
    secret: &str,
    username: &str,
    password: &str,
    client: &str,
) -> Result<crate::accounts::users::User, Refusal> {
    let auth = &state.auth;
    let limit_keys = vec![format!("addr:{client}")];
    if let Some(wait) = auth.limiter.locked(&limit_keys).await {
        return Err(Refusal::Locked(wait));
    }
    let armed = auth.bootstrap.lock().expect("bootstrap lock").clone();
    let Some(expected) = armed else {
        return Err(Refusal::Closed);
    };
    if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
        auth.limiter.failed(&limit_keys).await;
        return Err(Refusal::WrongSecret);
    }
    let user = async {
        // Checked again: an admin may have been added from the CLI since start.
        anyhow::ensure!(
            crate::accounts::users::admin_count(&auth.db).await? == 0,
            "bootstrap is closed: an admin exists"
        );
        crate::accounts::users::create(&auth.db, username, password, Role::Admin).await
    }
    .await
    .context("cannot create the first admin")
    .map_err(Refusal::Failed)?;
    *auth.bootstrap.lock().expect("bootstrap lock") = None;
    crate::accounts::audit::record_or_log(
        &state.auth.db,
        "bootstrap",
        "user.add",
        &user.name,
        "role admin",
        client,
    )
    .await;
    tracing::info!(user = %user.name, "first admin created through bootstrap");
    Ok(user)
}

/// `POST /admin/api/bootstrap {secret, username, password}`: create the first admin, once.
pub(crate) async fn bootstrap(
    State(state): State<Arc<AppState>>,
    Client(client): Client,
    body: Bytes,
) -> Result<Response, Error> {
    let req: BootstrapBody = serde_json::from_slice(&body).map_err(|_| {
        Error::bad_request("expected JSON {\"secret\", \"username\", \"password\"}")
    })?;
    let user = first_admin(&state, &req.secret, &req.username, &req.password, &client)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Locked(wait) => Error::locked_out(wait),
            e @ (Refusal::Closed | Refusal::WrongSecret) => {
                Error::new(StatusCode::FORBIDDEN, e.to_string())
            }
            Refusal::Failed(e) => Error::refused(e),
        })?;
    let created = (StatusCode::CREATED, axum::Json(json!({ "user": user })));
    Ok(no_store(created.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_env_secrets_are_refused() {
        let dir = std::env::temp_dir().join(format!("ph-boot-{}", std::process::id()));
        let db = crate::accounts::db::open(&dir.join("b.db")).await.unwrap();
        let auth = AuthContext::new(db, Config::defaults().auth);
        assert!(arm(&auth, Some("short".into())).await.is_err());
        arm(&auth, Some("a-long-enough-secret".into()))
            .await
            .unwrap();
        assert_eq!(
            auth.bootstrap.lock().unwrap().as_deref(),
            Some("a-long-enough-secret")
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
