//! Authentication and authorization for every request: who is calling (an API key, a session cookie,
//! or nobody), whether that is enough for the route, and the CSRF rule for sessions.
//!
//! - API keys come as `Authorization: Bearer KEY`, `X-Api-Key: KEY` or `?api-key=KEY` (the query form
//!   is weaker: URLs land in proxy and browser logs). Unknown, revoked or expired keys are 401 — also on
//!   anonymous routes, so a client learns its key is bad instead of silently being served anonymously.
//!   A key's scopes (path prefixes) limit where it works: outside them, 403.
//! - Sessions come as the `ph_session` cookie. A state-changing request (not GET/HEAD/OPTIONS) made with
//!   a session must carry the session's CSRF token in `x-csrf-token`: without it, routes that need a role
//!   answer 403, and anonymous routes treat the caller as anonymous. An expired session is anonymous too.
//! - [`AuthContext::check`] is the one entry point of the request path: authenticate, CSRF, authorize.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};

use crate::accounts::db::{Pool, constant_time_eq};
use crate::accounts::keys;
use crate::accounts::limiter::LoginLimiter;
use crate::accounts::sessions::{self, Lifetimes};
use crate::bindings::types::{self as wit, AuthMethod, Role};
use crate::clock::Clock;
use crate::config::AuthConfig;

/// `last_used_at` of a key is written at most this often (not once per request).
const KEY_TOUCH_INTERVAL_MS: i64 = 60_000;
/// Query parameters that carry an API key (`api_key` for clients that spell it so).
pub const KEY_QUERY_PARAMS: &[&str] = &["api-key", "api_key"];

/// What authentication needs for the life of the process: the database, session settings, the login
/// rate limiter, and when each key's use was last written.
#[derive(Debug)]
pub struct AuthContext {
    pub db: Pool,
    pub config: AuthConfig,
    pub limiter: LoginLimiter,
    /// What session and key expiry and the login limiter measure time with.
    pub clock: Clock,
    touched: Mutex<HashMap<String, i64>>,
    /// The one-time bootstrap secret while no admin exists (see `admin_accounts.rs`).
    pub(crate) bootstrap: Mutex<Option<String>>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `anonymous`, or the user's name (also for their keys).
    pub subject: String,
    pub role: Role,
    pub method: AuthMethod,
    /// The key's id, when authenticated by key.
    pub key_id: Option<String>,
    /// The key's scopes (empty: everywhere).
    pub scopes: Vec<String>,
    /// The session's CSRF token, when authenticated by session.
    pub csrf: Option<String>,
    /// The caller sent a session cookie that is no longer valid (for a clearer 401).
    pub stale_session: bool,
    /// A session request without a valid CSRF token on a state-changing method.
    pub csrf_failed: bool,
}

impl Principal {
    /// Nobody.
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            role: Role::Anonymous,
            method: AuthMethod::None,
            key_id: None,
            scopes: Vec::new(),
            csrf: None,
            stale_session: false,
            csrf_failed: false,
        }
    }

    /// Every role this principal holds (roles are ordered, so admin holds user too).
    pub fn roles(&self) -> Vec<Role> {
        self.role.held().collect()
    }

    /// The record passed to plugins.
    pub fn to_wit(&self) -> wit::Principal {
        wit::Principal {
            subject: self.subject.clone(),
            roles: self.roles(),
            auth: self.method,
        }
    }

    /// Whether `token` is this session's CSRF token (false without a session).
    pub fn csrf_matches(&self, token: &str) -> bool {
        self.csrf
            .as_deref()
            .is_some_and(|c| constant_time_eq(token.as_bytes(), c.as_bytes()))
    }

    /// How the audit log names this caller: `user:NAME` or `key:ID (NAME)`.
    pub fn actor(&self) -> String {
        match &self.key_id {
            Some(id) => format!("key:{id} ({})", self.subject),
            None => format!("user:{}", self.subject),
        }
    }
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401: no valid credentials (with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: valid credentials, not enough for this request.
    #[error("{0}")]
    Forbidden(String),
    /// 503: the database did not answer.
    #[error("authentication is unavailable; retry shortly")]
    Unavailable,
}

impl AuthError {
    /// The status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Headers that go with the refusal: `WWW-Authenticate` on a 401.
    pub fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"plugin-host\""),
            );
        }
    }
}

fn unavailable(e: anyhow::Error) -> AuthError {
    tracing::error!(error = %format!("{e:#}"), "authentication database error");
    AuthError::Unavailable
}

/// Whether `method` may change state (and so needs a CSRF token with a session).
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An API key in `Authorization` without the `Bearer` scheme (bare, or as `Basic`/`Token`...) is a
/// mistake worth a message: treated as no credentials, it would fail later with a vaguer 401, or pass
/// as anonymous on an open route.
pub(crate) fn misplaced_key(parts: &Parts) -> Result<(), AuthError> {
    for value in parts.headers.get_all(header::AUTHORIZATION) {
        let Ok(v) = value.to_str() else { continue };
        let (scheme, credential) = v.trim().split_once(' ').unwrap_or(("", v.trim()));
        if !scheme.eq_ignore_ascii_case("bearer") && credential.trim().starts_with(keys::KEY_PREFIX)
        {
            return Err(AuthError::Unauthenticated(format!(
                "an API key in Authorization must follow the Bearer scheme: send \"Authorization: Bearer {}...\" or \"X-Api-Key: {}...\"",
                keys::KEY_PREFIX,
                keys::KEY_PREFIX
            )));
        }
    }
    Ok(())
}

/// The API keys a request presents, in any of the accepted forms.
pub(crate) fn presented_keys(parts: &Parts) -> Vec<String> {
    let mut found = Vec::new();
    for value in parts.headers.get_all(header::AUTHORIZATION) {
        if let Ok(v) = value.to_str()
            && let Some((scheme, key)) = v.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            found.push(key.trim().to_owned());
        }
    }
    for value in parts.headers.get_all("x-api-key") {
        if let Ok(v) = value.to_str() {
            found.push(v.trim().to_owned());
        }
    }
    if let Some(q) = parts.uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if KEY_QUERY_PARAMS.contains(&k.as_ref()) {
                found.push(v.into_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

impl AuthContext {
    /// Authentication over `db` with `config`.
    pub fn new(db: Pool, config: AuthConfig) -> Self {
        let clock = Clock::system();
        Self {
            limiter: LoginLimiter::new(
                config.login_free_failures,
                Duration::from_secs(config.login_lockout_max_secs),
                clock.clone(),
            )
            .shared_through(&db),
            clock,
            db,
            config,
            touched: Mutex::new(HashMap::new()),
            bootstrap: Mutex::new(None),
        }
    }

    /// Session lifetimes from the configuration.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            idle_ms: self.config.session_idle_secs as i64 * 1000,
            absolute_ms: self.config.session_absolute_secs as i64 * 1000,
        }
    }

    /// Authenticate, check CSRF, and authorize for a route needing `required` at `path`.
    pub async fn check(
        &self,
        parts: &Parts,
        required: Role,
        path: &str,
    ) -> Result<Principal, AuthError> {
        let principal = self.authenticate(parts).await?;
        authorize(&principal, required, path)?;
        Ok(principal)
    }

    /// Who is calling (see the module docs). Fails only for a bad API key or a database error.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        misplaced_key(parts)?;
        let keys = presented_keys(parts);
        match keys.as_slice() {
            [] => {}
            [key] => return self.by_key(key).await,
            _ => {
                return Err(AuthError::Unauthenticated(
                    "several different API keys were sent; send one".into(),
                ));
            }
        }
        let cookies = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(id) = sessions::from_cookies(cookies) else {
            return Ok(Principal::anonymous());
        };
        let session = sessions::lookup(&self.db, id, self.lifetimes(), self.clock.now_ms())
            .await
            .map_err(unavailable)?;
        let Some(session) = session else {
            return Ok(Principal {
                stale_session: true,
                ..Principal::anonymous()
            });
        };
        let csrf_failed = is_state_changing(&parts.method)
            && !parts
                .headers
                .get("x-csrf-token")
                .is_some_and(|v| constant_time_eq(v.as_bytes(), session.csrf.as_bytes()));
        Ok(Principal {
            subject: session.user,
            role: session.role,
            method: AuthMethod::Session,
            key_id: None,
            scopes: Vec::new(),
            csrf: Some(session.csrf),
            stale_session: false,
            csrf_failed,
        })
    }

    async fn by_key(&self, text: &str) -> Result<Principal, AuthError> {
        let grant = keys::lookup(&self.db, text).await.map_err(unavailable)?;
        let Some(grant) = grant else {
            return Err(AuthError::Unauthenticated("unknown API key".into()));
        };
        if grant.revoked {
            return Err(AuthError::Unauthenticated(format!(
                "API key {} has been revoked",
                grant.id
            )));
        }
        let now = self.clock.now_ms();
        if grant.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::Unauthenticated(format!(
                "API key {} has expired",
                grant.id
            )));
        }
        self.touch_key(&grant.id, now);
        Ok(Principal {
            subject: grant.owner,
            role: grant.role,
            method: AuthMethod::ApiKey,
            key_id: Some(grant.id),
            scopes: grant.scopes,
            csrf: None,
            stale_session: false,
            csrf_failed: false,
        })
    }

    /// Write a key's `last_used_at` in the background, at most once per interval per key.
    fn touch_key(&self, id: &str, now: i64) {
        {
            let mut touched = self.touched.lock().expect("touch lock");
            if touched
                .get(id)
                .is_some_and(|last| now - last < KEY_TOUCH_INTERVAL_MS)
            {
                return;
            }
            if touched.len() > 100_000 {
                touched.retain(|_, last| now - *last < KEY_TOUCH_INTERVAL_MS);
            }
            touched.insert(id.to_owned(), now);
        }
        let (db, id) = (self.db.clone(), id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = keys::touch(&db, &id, now).await {
                tracing::warn!(key = %id, error = %format!("{e:#}"), "cannot record key use");
            }
        });
    }
}

/// Whether `principal` may make a request needing `required` at `path`.
pub fn authorize(principal: &Principal, required: Role, path: &str) -> Result<(), AuthError> {
    if !principal.scopes.is_empty() && !principal.scopes.iter().any(|s| keys::in_scope(s, path)) {
        return Err(AuthError::Forbidden(format!(
            "API key {} is limited to {}; {path} is outside",
            principal.key_id.as_deref().unwrap_or("?"),
            principal.scopes.join(", ")
        )));
    }
    if required == Role::Anonymous {
        return Ok(());
    }
    if principal.role == Role::Anonymous {
        let hint = if principal.stale_session {
            "your session has expired; sign in again"
        } else {
            "sign in or send an API key"
        };
        return Err(AuthError::Unauthenticated(format!(
            "{path} needs role {}; {hint}",
            required.as_str()
        )));
    }
    if principal.csrf_failed {
        return Err(AuthError::Forbidden(
            "missing or wrong CSRF token: send the session's token in the x-csrf-token header"
                .into(),
        ));
    }
    if principal.role.rank() < required.rank() {
        return Err(AuthError::Forbidden(format!(
            "{path} needs role {}; {} has role {}",
            required.as_str(),
            principal.subject,
            principal.role.as_str()
        )));
    }
    Ok(())
}

/// The principal a plugin sees on an anonymous route: a session without a valid CSRF token on a
/// state-changing request is not trusted, so the plugin sees an anonymous caller.
pub fn effective(principal: Principal) -> Principal {
    if principal.csrf_failed {
        Principal::anonymous()
    } else {
        principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(role: Role, scopes: &[&str]) -> Principal {
        Principal {
            subject: "ada".into(),
            role,
            method: AuthMethod::ApiKey,
            key_id: Some("k1".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Principal::anonymous()
        }
    }

    #[test]
    fn roles_are_ordered_and_scopes_limit_paths() {
        assert!(authorize(&Principal::anonymous(), Role::Anonymous, "/x").is_ok());
        assert!(matches!(
            authorize(&Principal::anonymous(), Role::User, "/x"),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(authorize(&with(Role::User, &[]), Role::User, "/x").is_ok());
        assert!(matches!(
            authorize(&with(Role::User, &[]), Role::Admin, "/x"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(authorize(&with(Role::Admin, &[]), Role::User, "/x").is_ok());
        assert!(authorize(&with(Role::User, &["/notes"]), Role::User, "/notes/1").is_ok());
        assert!(matches!(
            authorize(&with(Role::User, &["/notes"]), Role::Anonymous, "/hello"),
            Err(AuthError::Forbidden(_))
        ));
        assert_eq!(with(Role::Admin, &[]).roles().len(), 3);
    }

    #[test]
    fn a_key_without_the_bearer_scheme_gets_a_message_saying_how_to_send_it() {
        let parts = |value: &str| {
            let request = http::Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(())
                .unwrap();
            request.into_parts().0
        };
        for wrong in ["phk_abc", "Basic phk_abc", "Token phk_abc"] {
            let Err(AuthError::Unauthenticated(message)) = misplaced_key(&parts(wrong)) else {
                panic!("{wrong:?} was not refused");
            };
            assert!(message.contains("Authorization: Bearer phk_"), "{message}");
        }
        for fine in ["Bearer phk_abc", "bearer phk_abc", "Basic dXNlcjpwYXNz"] {
            assert!(misplaced_key(&parts(fine)).is_ok(), "{fine:?}");
        }
    }
}
