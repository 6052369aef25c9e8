//! The admin surface: the JSON API under `/admin/api`, browser sign-in, the first admin, and the web UI
//! under `/admin` (dashboard, plugins with their directory changes, people and keys, audit). The top
//! tier: it may use every other one.

pub(crate) mod accounts_api;
pub(crate) mod api;
pub(crate) mod bootstrap;
pub(crate) mod chart;
pub(crate) mod deploy;
pub(crate) mod login;
pub(crate) mod page;
pub(crate) mod people;
pub(crate) mod plugins;
pub(crate) mod plugins_api;
pub(crate) mod ui;
