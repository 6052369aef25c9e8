//! Integration tests: the real server on 127.0.0.1:0, real HTTP, real plugin components.
//! `make test` builds the plugins and fixtures these tests load.

mod check;
mod faults;
mod reload;
mod reuse;
mod serve;
mod startup;
mod views;
