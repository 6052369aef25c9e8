//! The rows of a side-by-side run (issue 16): which server answers `GET /hello/world`, how it is
//! configured and how it is asked. `--only` picks rows by their command-line names (`native`, `json`,
//! `html`, `json-reuse`, `wasmtime`, `wasmtime-reuse`); the ratios and the chart refer to them by
//! variant, so a row that did not run leaves its cells empty rather than shifting the others.

/// Requests one instance serves in the reuse rows: Plugin Host's `instance_reuse` for the hello plugin
/// and `wasmtime serve --max-instance-reuse-count`.
pub const REUSE: u32 = 128;

/// One server set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Row {
    /// `native-hello`: axum with no plugin call, the limit of our HTTP stack.
    Native,
    /// Plugin Host, the hello plugin as JSON, a fresh instance per request (the default).
    Json,
    /// Plugin Host, the same route through hello's HTML view, a fresh instance per request.
    Html,
    /// Plugin Host, JSON, with `[plugins.hello] instance_reuse = 128`.
    JsonReuse,
    /// `wasmtime serve` at its defaults (a fresh instance per request for a WASIp2 component).
    Wasmtime,
    /// `wasmtime serve --max-instance-reuse-count 128`.
    WasmtimeReuse,
}

impl Row {
    /// Every row, in the order of the tables.
    pub const ALL: [Row; 6] = [
        Row::Native,
        Row::Json,
        Row::Html,
        Row::JsonReuse,
        Row::Wasmtime,
        Row::WasmtimeReuse,
    ];

    /// The row's name in tables and the chart's legend.
    pub fn name(self) -> &'static str {
        match self {
            Row::Native => "native axum",
            Row::Json => "Plugin Host, JSON",
            Row::Html => "Plugin Host, HTML view",
            Row::JsonReuse => "Plugin Host, JSON, reuse 128",
            Row::Wasmtime => "wasmtime serve",
            Row::WasmtimeReuse => "wasmtime serve, reuse 128",
        }
    }

    /// The row's bar colour: a reuse row is a lighter shade of its fresh-instance row.
    pub fn color(self) -> &'static str {
        match self {
            Row::Native => "#7f7f7f",
            Row::Json => "#1f77b4",
            Row::Html => "#ff7f0e",
            Row::JsonReuse => "#9ecae9",
            Row::Wasmtime => "#2ca02c",
            Row::WasmtimeReuse => "#98df8a",
        }
    }

    /// The `Accept` header the row is measured with.
    pub fn accept(self) -> &'static str {
        if self == Row::Html {
            "Accept: text/html"
        } else {
            "Accept: application/json"
        }
    }

    /// Whether the row runs `wasmtime serve` (and so needs the wasmtime CLI and the wasi:http hello).
    pub fn is_wasmtime(self) -> bool {
        matches!(self, Row::Wasmtime | Row::WasmtimeReuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn rows_are_picked_by_their_command_line_names() {
        let names: Vec<String> = Row::ALL
            .iter()
            .map(|r| r.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "native",
                "json",
                "html",
                "json-reuse",
                "wasmtime",
                "wasmtime-reuse"
            ]
        );
        assert_eq!(Row::from_str("json-reuse", false), Ok(Row::JsonReuse));
        assert_eq!(Row::Html.accept(), "Accept: text/html");
        assert!(Row::WasmtimeReuse.is_wasmtime() && !Row::JsonReuse.is_wasmtime());
    }
}
