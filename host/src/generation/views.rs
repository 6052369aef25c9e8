//! HTML views: one minijinja environment per generation holding every template the generation can
//! render — the host's built-in pages, the templates plugins ship in their manifests (named
//! `<plugin>/<name>`) and the operator's files in the templates directory, which win over both. Every
//! template is parsed here, while the generation is built; rendering never parses, so a page costs the
//! same on the millionth request as on the first and nothing accumulates.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// Templates compiled into the binary, used when the templates directory has no file of that name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../../templates/layout.html"),
    ),
    ("data.html", include_str!("../../../templates/data.html")),
    (
        "catalogue.html",
        include_str!("../../../templates/catalogue.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
    (
        "errors/404.html",
        include_str!("../../../templates/errors/404.html"),
    ),
    (
        "errors/405.html",
        include_str!("../../../templates/errors/405.html"),
    ),
    (
        "errors/4xx.html",
        include_str!("../../../templates/errors/4xx.html"),
    ),
    (
        "errors/5xx.html",
        include_str!("../../../templates/errors/5xx.html"),
    ),
    (
        "admin/login.html",
        include_str!("../../../templates/admin/login.html"),
    ),
    (
        "admin/layout.html",
        include_str!("../../../templates/admin/layout.html"),
    ),
    (
        "admin/setup.html",
        include_str!("../../../templates/admin/setup.html"),
    ),
    (
        "admin/dashboard.html",
        include_str!("../../../templates/admin/dashboard.html"),
    ),
    (
        "admin/plugins.html",
        include_str!("../../../templates/admin/plugins.html"),
    ),
    (
        "admin/plugin.html",
        include_str!("../../../templates/admin/plugin.html"),
    ),
    (
        "admin/routes.html",
        include_str!("../../../templates/admin/routes.html"),
    ),
    (
        "admin/nodes.html",
        include_str!("../../../templates/admin/nodes.html"),
    ),
    (
        "admin/keys.html",
        include_str!("../../../templates/admin/keys.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../../templates/admin/users.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../../templates/admin/audit.html"),
    ),
    (
        "admin/forbidden.html",
        include_str!("../../../templates/admin/forbidden.html"),
    ),
];

/// Folders of the template namespace the host owns; no plugin may take these names.
pub const HOST_TEMPLATE_FOLDERS: &[&str] = &["errors", "admin"];

/// Largest template file read from the templates directory or accepted from a plugin.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// Folder depth searched below the templates directory.
const MAX_DEPTH: usize = 4;

/// Templates parsed by this process, across all generations. Only `Views::build` adds to it, so it
/// stays still between reloads however many pages are rendered (`/metrics` shows it).
static PARSED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Templates parsed by this process so far.
pub fn parsed_total() -> u64 {
    PARSED_TOTAL.load(Ordering::Relaxed)
}

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Compiled into the host.
    Builtin,
    /// A file in the templates directory.
    File { path: PathBuf },
    /// Shipped by a plugin in its manifest.
    Plugin { plugin: String },
    /// A file in the templates directory that replaces a template a plugin ships.
    Override { plugin: String, path: PathBuf },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built into the host"),
            Origin::File { path } => write!(f, "{}", path.display()),
            Origin::Plugin { plugin } => write!(f, "shipped by plugin {plugin}"),
            Origin::Override { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// One template of a generation, as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateInfo {
    pub name: String,
    pub origin: Origin,
}

/// A template read from the templates directory, with the SHA-256 (hex) of the text that was parsed:
/// what the last good set records of it.
#[derive(Debug, Clone)]
pub struct DiskTemplate {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// The templates one plugin ships (what `Views::build` needs of a loaded plugin).
pub struct PluginTemplates<'a> {
    pub plugin: &'a str,
    /// Name (without the plugin prefix) and source.
    pub templates: &'a [(String, String)],
}

/// A template that could not be read or parsed. The generation that needed it is not built.
#[derive(Debug, thiserror::Error)]
#[error("template {name} ({origin}){}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct TemplateError {
    pub name: String,
    pub origin: Origin,
    pub line: Option<usize>,
    pub message: String,
}

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template named {0}")]
    Missing(String),
    #[error("{0:#}")]
    Template(#[from] minijinja::Error),
    #[error("page of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
}

/// Limits on rendering (from `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// minijinja instructions one render may execute.
    pub fuel: u64,
    /// Largest page a render may produce.
    pub max_bytes: usize,
}

impl RenderLimits {
    /// What one page render may cost: template instructions, and the page's size (the same cap as a
    /// plugin's response body).
    pub fn of(limits: &crate::config::Limits) -> Self {
        Self {
            fuel: limits.render_fuel,
            max_bytes: limits.max_response_body_bytes,
        }
    }
}

/// The templates of one generation. Immutable once built.
pub struct Views {
    env: Environment<'static>,
    templates: Vec<TemplateInfo>,
    /// The files read from the templates directory.
    disk: Vec<DiskTemplate>,
    parsed: u64,
    renders: AtomicU64,
    max_bytes: usize,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("templates", &self.templates.len())
            .field("parsed", &self.parsed)
            .finish_non_exhaustive()
    }
}

/// What the admin API shows of a generation's templates.
#[derive(Debug, Clone, Serialize)]
pub struct ViewStats {
    pub templates: usize,
    pub parsed: u64,
    pub renders: u64,
}

impl Views {
    /// Parse every template a generation needs: built-ins, the plugins' own, and the operator's files in
    /// `dir` (which replace built-ins and plugin templates of the same name). A missing `dir` means
    /// built-ins and plugin templates only.
    pub fn build(
        dir: &Path,
        plugins: &[PluginTemplates<'_>],
        limits: RenderLimits,
    ) -> Result<Self, TemplateError> {
        let mut views = Views {
            env: new_environment(limits.fuel),
            templates: Vec::new(),
            disk: Vec::new(),
            parsed: 0,
            renders: AtomicU64::new(0),
            max_bytes: limits.max_bytes,
        };
        let files = template_files(dir)?;
        let on_disk = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, p)| p);

        for (name, path) in &files {
            let plugin = name
                .split_once('/')
                .map(|(folder, _)| folder)
                .filter(|folder| plugins.iter().any(|p| p.plugin == *folder));
            let origin = match plugin {
                Some(plugin) => Origin::Override {
                    plugin: plugin.to_owned(),
                    path: path.clone(),
                },
                None => Origin::File { path: path.clone() },
            };
            let source = read_template(name, path)?;
            views.disk.push(DiskTemplate {
                name: name.clone(),
                path: path.clone(),
                sha256: crate::accounts::db::sha256_hex(source.as_bytes()),
            });
            views.add(name.clone(), source, origin)?;
        }
        for (name, source) in BUILTIN {
            if on_disk(name).is_none() {
                views.add((*name).to_owned(), (*source).to_owned(), Origin::Builtin)?;
            }
        }
        for p in plugins {
            for (name, source) in p.templates {
                let full = format!("{}/{name}", p.plugin);
                if on_disk(&full).is_none() {
                    let origin = Origin::Plugin {
                        plugin: p.plugin.to_owned(),
                    };
                    views.add(full, source.clone(), origin)?;
                }
            }
        }
        views.templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(views)
    }

    /// Parse one template into the environment (the only place that parses).
    fn add(&mut self, name: String, source: String, origin: Origin) -> Result<(), TemplateError> {
        self.env
            .add_template_owned(name.clone(), source)
            .map_err(|e| TemplateError {
                name: name.clone(),
                origin: origin.clone(),
                line: e.line(),
                message: e
                    .detail()
                    .map_or_else(|| e.kind().to_string(), str::to_owned),
            })?;
        self.parsed += 1;
        PARSED_TOTAL.fetch_add(1, Ordering::Relaxed);
        self.templates.push(TemplateInfo { name, origin });
        Ok(())
    }

    /// Whether a template of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.templates.iter().any(|t| t.name == name)
    }

    /// The generation's templates and where each came from, by name.
    pub fn templates(&self) -> &[TemplateInfo] {
        &self.templates
    }

    /// The templates read from the templates directory, in name order.
    pub fn disk_templates(&self) -> &[DiskTemplate] {
        &self.disk
    }

    /// The templates of plugin `plugin`: those named `plugin/...` (shipped or overridden).
    pub fn templates_of<'a>(&'a self, plugin: &'a str) -> impl Iterator<Item = &'a TemplateInfo> {
        self.templates.iter().filter(move |t| {
            t.name
                .strip_prefix(plugin)
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Counts for the admin API: templates, parses (all at build) and renders since.
    pub fn stats(&self) -> ViewStats {
        ViewStats {
            templates: self.templates.len(),
            parsed: self.parsed,
            renders: self.renders.load(Ordering::Relaxed),
        }
    }

    /// Render template `name` with `context`.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| RenderError::Missing(name.to_owned()))?;
        self.renders.fetch_add(1, Ordering::Relaxed);
        let page = template.render(context)?;
        if page.len() > self.max_bytes {
            return Err(RenderError::TooLarge {
                size: page.len(),
                limit: self.max_bytes,
            });
        }
        Ok(page)
    }

    /// The error page for `status`: `errors/404.html` and `errors/405.html` for those, else
    /// `errors/4xx.html` or `errors/5xx.html` (all extend `error.html`).
    pub fn error_template(&self, status: u16) -> &'static str {
        match status {
            404 => "errors/404.html",
            405 => "errors/405.html",
            400..=499 => "errors/4xx.html",
            _ => "errors/5xx.html",
        }
    }
}

/// The context a view renders a plugin's answer with: the answer's fields as variables when it is a JSON
/// object, `body` (the whole answer) and `page` (facts about the request).
pub fn view_context(body: Value, page: Value) -> Value {
    if body.kind() == ValueKind::Map {
        minijinja::context! { body => body.clone(), page, ..body }
    } else {
        minijinja::context! { body, page }
    }
}

/// An environment with the host's settings: HTML escaping for every template whatever its name,
/// chainable undefined values (a missing field, or a field of one, renders empty), a fuel budget per render, and the helpers
/// the data page uses.
fn new_environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(fuel));
    env.add_function("columns", columns);
    env.add_test("table", is_table);
    env.add_filter("datetime", |ms: i64| datetime(ms));
    env.add_filter("duration", |ms: i64| duration_text(ms.max(0) as u64));
    env.add_filter("ago", |ms: i64| {
        duration_text(crate::clock::unix_ms().saturating_sub(ms).max(0) as u64) + " ago"
    });
    env
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn datetime(ms: i64) -> String {
    plugin_host_kit::time::datetime(ms)
}

/// A span of milliseconds in words for people: `850 ms`, `42 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration_text(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The keys of a list of objects, in order of first appearance (the data page's table columns).
fn columns(rows: &Value) -> Vec<Value> {
    let mut keys: Vec<Value> = Vec::new();
    for row in rows.try_iter().into_iter().flatten() {
        if row.kind() != ValueKind::Map {
            continue;
        }
        for key in row.try_iter().into_iter().flatten() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// True for a non-empty list whose items are all objects: the data page shows it as a table.
fn is_table(value: &Value) -> bool {
    value.kind() == ValueKind::Seq
        && value.len().is_some_and(|n| n > 0)
        && value
            .try_iter()
            .is_ok_and(|mut items| items.all(|v| v.kind() == ValueKind::Map))
}

/// The `.html` files below `dir` as (template name, path), names with `/` separators. Hidden entries are
/// skipped; a missing directory has no templates.
fn template_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, "", 0, &mut found)?;
    }
    found.sort();
    Ok(found)
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    found: &mut Vec<(String, PathBuf)>,
) -> Result<(), TemplateError> {
    let unreadable = |path: &Path, e: std::io::Error| TemplateError {
        name: prefix.trim_end_matches('/').to_owned(),
        origin: Origin::File {
            path: path.to_owned(),
        },
        line: None,
        message: format!("cannot read directory: {e}"),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let name = format!("{prefix}{file_name}");
        if path.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, &format!("{name}/"), depth + 1, found)?;
            }
        } else if file_name.ends_with(".html") {
            found.push((name, path));
        }
    }
    Ok(())
}

fn read_template(name: &str, path: &Path) -> Result<String, TemplateError> {
    let fail = |message: String| TemplateError {
        name: name.to_owned(),
        origin: Origin::File {
            path: path.to_owned(),
        },
        line: None,
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if size > MAX_TEMPLATE_BYTES as u64 {
        return Err(fail(format!(
            "{size} bytes is over the limit of {MAX_TEMPLATE_BYTES}"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (x, y) = (luminance(a) + 0.05, luminance(b) + 0.05);
        x.max(y) / x.min(y)
    }

    #[test]
    fn layout_colours_have_enough_contrast() {
        let layout = BUILTIN.iter().find(|(n, _)| *n == "layout.html").unwrap().1;
        // The light scheme is the first `:root` rule, the dark one the second.
        let schemes: Vec<std::collections::HashMap<&str, &str>> = layout
            .split(":root {")
            .skip(1)
            .map(|rule| {
                rule.split('}')
                    .next()
                    .unwrap()
                    .split(';')
                    .filter_map(|d| d.trim().strip_prefix("--")?.split_once(':'))
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .collect()
            })
            .collect();
        assert_eq!(schemes.len(), 2, "a light and a dark scheme");
        for scheme in &schemes {
            for text in ["fg", "muted", "accent", "ok", "bad"] {
                let ratio = contrast(scheme[text], scheme["bg"]);
                assert!(ratio >= 4.5, "--{text} on --bg: {ratio:.2}");
            }
            // Buttons: background-coloured text on the accent and on the danger colour.
            assert!(contrast(scheme["bg"], scheme["accent"]) >= 4.5);
            assert!(contrast(scheme["bg"], scheme["bad"]) >= 4.5);
        }
    }

    #[test]
    fn dates_and_durations_read_well() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(datetime(1_795_887_003_000), "2026-11-28 17:30:03 UTC");
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(42_000), "42 s");
        assert_eq!(duration_text(3_600_000 + 5 * 60_000), "1 h 5 min");
        assert_eq!(duration_text(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }

    const LIMITS: RenderLimits = RenderLimits {
        fuel: 1_000_000,
        max_bytes: 1 << 20,
    };

    fn no_dir() -> PathBuf {
        PathBuf::from("/nonexistent/plugin-host-templates")
    }

    fn ctx(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// Built-ins plus one template `name` shipped by plugin `p`.
    fn with_plugin_template(name: &str, source: &str) -> Result<Views, TemplateError> {
        let shipped = [(name.to_owned(), source.to_owned())];
        let plugin = PluginTemplates {
            plugin: "p",
            templates: &shipped,
        };
        Views::build(&no_dir(), &[plugin], LIMITS)
    }

    #[test]
    fn builtins_parse_and_render_data_as_tables_and_lists() {
        let views = Views::build(&no_dir(), &[], LIMITS).unwrap();
        assert_eq!(views.stats().parsed, BUILTIN.len() as u64);
        let page = views
            .render(
                "data.html",
                &ctx(r#"{"body":{"users":[{"name":"ann","age":3},{"name":"bob","extra":true}],"n":null}}"#),
            )
            .unwrap();
        assert!(page.contains("<table"), "{page}");
        for column in [
            "<th scope=\"col\">name</th>",
            "<th scope=\"col\">age</th>",
            "<th scope=\"col\">extra</th>",
        ] {
            assert!(page.contains(column), "{column} in {page}");
        }
        assert!(page.contains("<dt>n</dt>"), "{page}");
        assert_eq!(views.stats().renders, 1);
    }

    #[test]
    fn every_template_escapes_html_whatever_its_name() {
        let views = with_plugin_template("raw", "{{ x }}").unwrap();
        let page = views.render("p/raw", &ctx(r#"{"x":"<b>\"'"}"#)).unwrap();
        assert_eq!(page, "&lt;b&gt;&quot;&#x27;");
    }

    #[test]
    fn syntax_errors_name_the_template_and_line() {
        let err = with_plugin_template("v.html", "ok\n{% if %}").unwrap_err();
        assert_eq!(err.name, "p/v.html");
        assert_eq!(err.line, Some(2));
        let text = err.to_string();
        assert!(
            text.contains("p/v.html") && text.contains("line 2"),
            "{text}"
        );
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let spin = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}\
                    {% endfor %}{% endfor %}{% endfor %}";
        let views = with_plugin_template("spin.html", spin).unwrap();
        assert!(views.render("p/spin.html", &Value::UNDEFINED).is_err());
    }

    #[test]
    fn files_override_plugin_templates_and_builtins() {
        let dir = std::env::temp_dir().join(format!("ph-views-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("p")).unwrap();
        std::fs::write(dir.join("p/v.html"), "from the operator").unwrap();
        std::fs::write(dir.join("layout.html"), "my layout").unwrap();
        std::fs::write(dir.join("README.md"), "not a template {% if").unwrap();
        let plugin = [("v.html".to_owned(), "{% broken".to_owned())];
        let views = Views::build(
            &dir,
            &[PluginTemplates {
                plugin: "p",
                templates: &plugin,
            }],
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            views.render("p/v.html", &Value::UNDEFINED).unwrap(),
            "from the operator"
        );
        assert_eq!(
            views.render("layout.html", &Value::UNDEFINED).unwrap(),
            "my layout"
        );
        let origin = |n: &str| {
            &views
                .templates()
                .iter()
                .find(|t| t.name == n)
                .unwrap()
                .origin
        };
        assert!(matches!(origin("p/v.html"), Origin::Override { plugin, .. } if plugin == "p"));
        assert!(matches!(origin("layout.html"), Origin::File { .. }));
        assert_eq!(origin("data.html"), &Origin::Builtin);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deep_data_stops_nesting_and_still_renders() {
        let views = Views::build(&no_dir(), &[], LIMITS).unwrap();
        // 120 levels: under serde_json's limit of 128, far over the data page's depth of 8.
        let mut json = String::from("1");
        for _ in 0..60 {
            json = format!("{{\"a\":[{json}]}}");
        }
        let page = views
            .render("data.html", &ctx(&format!("{{\"body\":{json}}}")))
            .unwrap();
        assert!(page.contains("<dl>"), "{page}");
    }
}
