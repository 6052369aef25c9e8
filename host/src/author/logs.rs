//! The plugin's own log lines for the author's commands: a `tracing` layer that takes the events the
//! host emits for a plugin's `log` calls (target `plugin`) and either keeps them for the command to
//! print with its answer (`call`, `test`) or prints them on stdout as they happen (`dev`). Everything
//! else the host logs goes to stderr at `warn` (or `RUST_LOG`).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub plugin: String,
    pub message: String,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<5} {}: {}", self.level, self.plugin, self.message)
    }
}

/// Where plugin lines go.
#[derive(Clone)]
pub enum Sink {
    /// Kept until [`Lines::take`].
    Keep(Lines),
    /// Printed on stdout at once.
    Print,
}

/// Plugin lines kept for the command to print.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<LogLine>>>);

impl Lines {
    /// The lines logged since the last call.
    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Install the process's subscriber: plugin lines to `sink`, the host's own warnings to stderr (but
/// the bootstrap secret's: these hosts make their own accounts).
pub fn init(sink: Sink) {
    let host = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,plugin_host::admin::bootstrap=error"));
    let host = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(host)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() != "plugin"
        }));
    let plugin = PluginLayer(sink).with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.target() == "plugin"
    }));
    // A second init (tests call commands in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(host)
        .with(plugin)
        .try_init();
}

struct PluginLayer(Sink);

impl<S: Subscriber> Layer<S> for PluginLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = LogLine {
            level: *event.metadata().level(),
            plugin: fields.plugin,
            message: fields.message,
        };
        match &self.0 {
            Sink::Keep(lines) => lines.0.lock().unwrap_or_else(|e| e.into_inner()).push(line),
            Sink::Print => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
}

#[derive(Default)]
struct Fields {
    plugin: String,
    message: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "plugin" => {
                let _ = write!(self.plugin, "{value:?}");
            }
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "plugin" => self.plugin.push_str(value),
            _ => {}
        }
    }
}
