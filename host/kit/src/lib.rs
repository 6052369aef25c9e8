//! Small pieces that the host and its test tools share, so each exists once (std only, no dependencies):
//!
//! - [`process`]: start a program as a child process, wait (bounded) for the line saying it is ready,
//!   keep its output drained and its stderr for messages, and kill it when its handle is dropped;
//!   used by the integration tests, the soak and the side-by-side benchmark.
//! - [`svg`]: hand-drawn SVG charts: scales, "nice" axis steps and ticks, label formatting, escaping
//!   and a writer for the few elements the charts use; used by the admin dashboard's memory chart,
//!   the soak chart and the benchmark chart.
//! - [`haproxy`]: haproxy in front of cluster nodes with health checks on `/readyz`;
//! - [`postgres`]: a private PostgreSQL server in a temporary directory on a free loopback port, for the
//!   tests on the PostgreSQL backend, the cluster tests and `make cluster`.
//! - [`time`]: unix milliseconds as a UTC civil date and time; used by the host's `datetime` template
//!   filter and the soak report.

pub mod haproxy;
pub mod postgres;
pub mod process;
pub mod svg;
pub mod time;
