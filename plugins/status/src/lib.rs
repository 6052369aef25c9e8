//! The `status` example plugin: `GET /status`, a small health document — the page a load balancer's
//! health check or an operator opens. JSON for services, the `status.html` view for browsers. The
//! service name comes from `[plugins.status.config] service` (default "plugin-host").

use plugin_sdk::prelude::*;

/// Wall-clock readings before this (2020-01-01) mean the host's clock is wrong.
const SANE_EPOCH_MS: u64 = 1_577_836_800_000;

fn plugin() -> Plugin {
    Plugin::new(
        "status",
        env!("CARGO_PKG_VERSION"),
        "Health status for load balancers and operators",
    )
    .template("status.html", include_str!("../templates/status.html"))
    .get("/status", status)
    .summary("Service health")
    .view("status.html")
}

fn status(_req: &Request) -> Result {
    let now = plugin_sdk::clock::now_millis();
    let (t0, t1) = (
        plugin_sdk::clock::monotonic_nanos(),
        plugin_sdk::clock::monotonic_nanos(),
    );
    let checks = [
        check(
            "wall clock",
            now >= SANE_EPOCH_MS,
            format!("{now} ms since the epoch"),
        ),
        check(
            "monotonic clock",
            t1 >= t0,
            "never goes backwards".to_owned(),
        ),
    ];
    let healthy = checks.iter().all(|c| c["ok"] == true);
    let service = plugin_sdk::config::get("service").unwrap_or_else(|| "plugin-host".to_owned());
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "service": service,
        "checked_at_ms": now,
        "checks": checks,
    });
    Ok(Response::json(&body)?.status(if healthy { 200 } else { 503 }))
}

fn check(name: &str, ok: bool, detail: String) -> Value {
    json!({ "name": name, "ok": ok, "detail": detail })
}

plugin_sdk::plugin!(plugin);
