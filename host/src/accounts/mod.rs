//! Accounts and storage, in one database: users, API keys, browser sessions, the plugins' key-value
//! store and the audit log; who a request comes from and what it may do ([`auth`]); the login limiter.
//! This tier knows nothing of HTTP routing, generations or the admin UI.

pub mod audit;
pub mod auth;
pub mod db;
pub mod keys;
pub mod kv;
pub mod limiter;
pub mod sessions;
pub mod users;
