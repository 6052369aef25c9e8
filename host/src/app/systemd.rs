//! The service manager's readiness protocol (`sd_notify`, for a systemd unit with `Type=notify`):
//! `READY=1` once the first generation serves, `RELOADING=1` then `READY=1` around a SIGHUP reload,
//! `STOPPING=1` when a shutdown begins, and a `STATUS=` line with the generation. Without
//! `NOTIFY_SOCKET` in the environment (not started by systemd) every call does nothing.

use sd_notify::NotifyState;

/// The host is serving generation `generation`.
pub fn ready(generation: u64) {
    let status = format!("serving generation {generation}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// A reload has begun (systemd 253's `notify-reload` also wants the monotonic time; 252 ignores it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The shutdown has begun: not ready, draining.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        // Once per state change at most; the service keeps running, only the manager's view is stale.
        tracing::warn!(%error, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
