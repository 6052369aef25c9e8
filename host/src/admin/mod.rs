//! The admin surface: the JSON API under `/admin/api`, browser sign-in, the first admin, and the web UI
//! under `/admin` (dashboard, plugins with their directory changes, people and keys, audit). The top
//! tier: it may use every other one.

pub mod accounts_api;
pub mod api;
pub mod bootstrap;
pub mod chart;
pub mod deploy;
pub mod login;
pub mod page;
pub mod people;
pub mod plugins;
pub mod ui;
