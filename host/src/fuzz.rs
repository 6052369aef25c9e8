//! Property and fuzz targets (issue 19, class 8) for the host's pure parsers and checkers: path
//! patterns and the route table, manifest validation, content negotiation, path and query decoding,
//! API keys (their form, where a request carries them, scopes, expiry), the session cookie, the login
//! redirect, the configuration overlay, and the checks on a plugin's response and its JSON depth.
//!
//! Each target is an ordinary `#[test]` around `bolero::check!`. Under `cargo test` (and so `make
//! test`) it runs [`CASES`] random inputs (fewer for the costly ones; `BOLERO_RANDOM_ITERATIONS`
//! overrides) and replays every file in `host/src/__fuzz__/fuzz__NAME/{corpus,crashes}`. `make fuzz`
//! runs the same functions under libFuzzer (bolero's engine, built by the Makefile) for as long as
//! asked. Each target checks a property stronger than "does not panic" wherever one exists;
//! docs/security.md (Fuzzing) lists them, the executions run and what they found.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bolero::check;
use bolero::generator::TypeGenerator;
use http::{HeaderMap, HeaderValue, header};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::accounts::{auth, keys, sessions};
use crate::bindings::types::{self as wit, Method, Role};
use crate::config::{Config, Overrides};
use crate::generation::manifest::{MAX_ROUTES, MAX_TEMPLATES, Manifest, ManifestError};
use crate::generation::routes::{Miss, PathPattern, RouteTable, Target, split_path};
use crate::generation::views::{HOST_TEMPLATE_FOLDERS, MAX_TEMPLATE_BYTES};
use crate::http::negotiate::{Format, negotiate};
use crate::request::answer::{self, HOST_RESPONSE_HEADERS};
use crate::request::plugin_request;

/// Random cases per target under `cargo test`, for the cheap targets (a few microseconds a case).
const CASES: usize = 20_000;
/// For the targets that build larger inputs (manifests, route tables, response checks).
const CASES_HEAVY: usize = 5_000;
/// For the configuration overlay: each case writes a file and parses the whole default configuration.
const CASES_CONFIG: usize = 1_000;
/// For the decoding targets, whose inputs are lists of long Unicode strings.
const CASES_TEXT: usize = 5_000;

const METHODS: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

fn pick<T: Copy>(items: &[T], i: impl Into<u64>) -> T {
    items[(i.into() % items.len() as u64) as usize]
}

/// `bytes` as text over `alphabet` (one character per byte).
fn over(alphabet: &[u8], bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| char::from(alphabet[b as usize % alphabet.len()]))
        .collect()
}

/// Text for a field: mostly from an alphabet that makes valid and nearly valid values, sometimes
/// one of a few chosen values, sometimes anything.
#[derive(Debug, TypeGenerator)]
enum Text {
    Alphabet(Vec<u8>),
    Chosen(u8),
    Raw(String),
}

impl Text {
    fn make(&self, alphabet: &[u8], chosen: &[&str]) -> String {
        match self {
            Text::Alphabet(bytes) => over(alphabet, bytes),
            Text::Chosen(i) => pick(chosen, *i).to_owned(),
            Text::Raw(s) => s.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Path patterns
// ---------------------------------------------------------------------------------------------------

/// Characters a literal pattern segment may hold (RFC 3986 `pchar` without `%`).
const LITERAL_CHARS: &[u8] = b"abcdefxyzABZ0129-._~!$&'()*+,;=:@";

/// One segment of a generated pattern.
#[derive(Debug, TypeGenerator)]
enum SegmentSpec {
    Literal(Vec<u8>),
    Param(u8),
    /// This many parameter segments, `{q0}/{q1}/...`.
    Params(u8),
    /// Characters a pattern may not hold, among ones it may.
    Bad(Vec<u8>),
    Raw(String),
}

impl SegmentSpec {
    fn text(&self) -> String {
        match self {
            SegmentSpec::Literal(b) => over(LITERAL_CHARS, b),
            SegmentSpec::Param(i) => format!("{{p{}}}", i % 12),
            SegmentSpec::Params(n) => (0..*n)
                .map(|i| format!("{{q{i}}}"))
                .collect::<Vec<_>>()
                .join("/"),
            SegmentSpec::Bad(b) => over(b"ab{}%? #/\\\"<>^`|1_", b),
            SegmentSpec::Raw(s) => s.clone(),
        }
    }
}

/// The pattern text for `segments`: `/` and the segments joined by `/`; sometimes without the leading
/// `/` or with a trailing one.
fn pattern_text(segments: &[SegmentSpec], form: u8) -> String {
    let body: Vec<String> = segments.iter().map(SegmentSpec::text).collect();
    let lead = if form.is_multiple_of(32) { "" } else { "/" };
    let trail = if form % 32 == 1 { "/" } else { "" };
    format!("{lead}{}{trail}", body.join("/"))
}

/// A pattern as the grammar in routes.rs's docs describes it, written independently: `Some` of the
/// segments (`Ok(literal)` or `Err(parameter name)`) when `text` is a valid pattern.
fn grammar(text: &str) -> Option<Vec<Result<String, String>>> {
    let rest = text.strip_prefix('/')?;
    if text.len() > 1024 {
        return None;
    }
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for seg in rest.split('/') {
        if let Some(inner) = seg.strip_prefix('{') {
            let name = inner.strip_suffix('}')?;
            let first = name.chars().next()?;
            let ok = (first == '_' || first.is_ascii_alphabetic())
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
            if !ok || !names.insert(name) {
                return None;
            }
            out.push(Err(name.to_owned()));
        } else if !seg.is_empty() && seg.bytes().all(|b| LITERAL_CHARS_ALL.contains(&b)) {
            out.push(Ok(seg.to_owned()));
        } else {
            return None;
        }
    }
    Some(out)
}

/// Every character a literal segment may hold (RFC 3986 `pchar` without `%`).
const LITERAL_CHARS_ALL: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";

/// The parameter names of a parsed pattern, in order.
fn param_names(p: &PathPattern) -> Vec<String> {
    p.as_str()
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, TypeGenerator)]
struct PatternCase {
    segments: Vec<SegmentSpec>,
    form: u8,
    /// Values for the parameters of a path built from the pattern.
    values: Vec<String>,
    method: u8,
    /// Whether literal segments are percent-encoded in the built path too.
    encode_literals: bool,
}

/// Path patterns: parsing agrees with the grammar; a pattern that parses round-trips through its
/// `Display`, and matches, in a table of its own, exactly the paths built from it, with the
/// parameter values decoded back; other methods get a 405 naming its method; a path one segment
/// longer, with a literal changed or with an empty parameter is a 404.
#[test]
fn route_patterns() {
    check!()
        .with_type::<PatternCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let text = pattern_text(&case.segments, case.form);
            let parsed = PathPattern::parse(&text);
            let expected = grammar(&text);
            let p = match (parsed, expected) {
                (Ok(p), Some(segments)) => {
                    assert_eq!(p.to_string(), text);
                    assert_eq!(p.as_str(), text);
                    assert_eq!(PathPattern::parse(&p.to_string()).as_ref(), Ok(&p));
                    let shape: Vec<Option<String>> =
                        segments.iter().map(|s| s.as_ref().ok().cloned()).collect();
                    let got: Vec<Option<String>> =
                        p.shape().iter().map(|s| s.map(str::to_owned)).collect();
                    assert_eq!(got, shape, "{text:?}");
                    let names: Vec<String> =
                        segments.iter().filter_map(|s| s.clone().err()).collect();
                    assert_eq!(param_names(&p), names);
                    p
                }
                (Err(e), None) => {
                    assert_eq!(e.pattern, text);
                    assert!(e.to_string().starts_with("invalid path pattern"), "{e}");
                    return;
                }
                (parsed, expected) => {
                    panic!("{text:?}: parse gave {parsed:?}, the grammar {expected:?}")
                }
            };

            // A path built from the pattern: literals as they are, parameters from `values`.
            let mut values = case.values.iter().filter(|v| !v.is_empty());
            let mut segments = Vec::new();
            let mut params = Vec::new();
            for (shape, name) in p.shape().iter().zip(all_names(&p)) {
                match (shape, name) {
                    (Some(literal), _) => segments.push((*literal).to_owned()),
                    (None, Some(name)) => {
                        let value = values.next().cloned().unwrap_or_else(|| "v".to_owned());
                        params.push((name, value.clone()));
                        segments.push(value);
                    }
                    (None, None) => unreachable!(),
                }
            }
            let encoded = |segments: &[String]| -> String {
                let parts: Vec<String> = segments
                    .iter()
                    .zip(p.shape())
                    .map(|(s, shape)| {
                        if shape.is_some() && !case.encode_literals {
                            s.clone()
                        } else {
                            utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
                        }
                    })
                    .collect();
                format!("/{}", parts.join("/"))
            };
            let path = encoded(&segments);
            let decoded = split_path(&path).expect("an encoded path decodes");
            assert_eq!(decoded, segments, "{path}");

            let method = pick(&METHODS, case.method);
            let mut table = RouteTable::default();
            let target = Target {
                plugin: 0,
                route: 0,
            };
            table.insert(method, p.clone(), target).unwrap();
            let found = table.lookup(Some(method), &decoded).unwrap();
            assert_eq!((found.target, found.pattern), (target, &p));
            assert_eq!(found.params, params);
            for other in METHODS {
                let expected_ok =
                    other == method || (other == Method::Head && method == Method::Get);
                match table.lookup(Some(other), &decoded) {
                    Ok(m) => assert!(expected_ok && m.params == params),
                    Err(Miss::MethodNotAllowed(allowed)) => {
                        assert!(!expected_ok && allowed.contains(&method), "{allowed:?}")
                    }
                    Err(Miss::NotFound) => panic!("{path} matches {text}"),
                }
            }
            assert!(matches!(
                table.lookup(None, &decoded),
                Err(Miss::MethodNotAllowed(_))
            ));

            let mut longer = decoded.clone();
            longer.push("x".into());
            assert_eq!(table.lookup(Some(method), &longer), Err(Miss::NotFound));
            if let Some(i) = p.shape().iter().position(Option::is_some) {
                let mut changed = decoded.clone();
                changed[i].push('\u{e9}');
                assert_eq!(table.lookup(Some(method), &changed), Err(Miss::NotFound));
            }
            if let Some(i) = p.shape().iter().position(Option::is_none) {
                let mut empty = decoded.clone();
                empty[i].clear();
                assert_eq!(table.lookup(Some(method), &empty), Err(Miss::NotFound));
                if empty.len() > 1 {
                    assert_eq!(split_path(&encoded(&empty)), Some(empty));
                }
            }
        });
}

/// Each segment's parameter name (`None` for a literal).
fn all_names(p: &PathPattern) -> Vec<Option<String>> {
    if p.as_str() == "/" {
        return Vec::new();
    }
    p.as_str()[1..]
        .split('/')
        .map(|s| Some(s.strip_prefix('{')?.strip_suffix('}')?.to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// The route table
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, TypeGenerator)]
struct TableCase {
    routes: Vec<(u8, Vec<u8>)>,
    lookups: Vec<(u8, Vec<u8>)>,
}

/// The route table (a trie) finds, for any set of routes and any path, what a linear scan for the
/// most specific matching pattern finds: the same route and parameters, or the same 404, or the same
/// 405 with the same methods in the same order; conflicts are the same too. Paths go through
/// `split_path`, with some segments percent-encoded.
#[test]
fn route_table() {
    check!()
        .with_type::<TableCase>()
        .with_iterations(CASES_HEAVY)
        .for_each(|case| {
            let mut table = RouteTable::default();
            let mut linear = crate::generation::routes::reference::Linear::default();
            for (i, (method, codes)) in case.routes.iter().enumerate() {
                let segments: Vec<String> = codes
                    .iter()
                    .take(5)
                    .enumerate()
                    .map(|(k, c)| match c % 6 {
                        0 => format!("{{p{k}}}"),
                        n => ["a", "b", "c", "d", "e"][n as usize - 1].to_owned(),
                    })
                    .collect();
                let pattern = PathPattern::parse(&format!("/{}", segments.join("/"))).unwrap();
                let method = pick(&METHODS, *method);
                let target = Target {
                    plugin: i,
                    route: 0,
                };
                let trie = table.insert(method, pattern.clone(), target);
                let scan = linear.insert(method, pattern.clone(), target);
                assert_eq!(trie, scan, "insert {pattern}");
            }
            assert_eq!(table.len(), linear.0.len());
            for (method, codes) in &case.lookups {
                let segments: Vec<&str> = codes
                    .iter()
                    .take(6)
                    .map(|c| ["a", "b", "c", "d", "e", "", "%61", "f"][*c as usize % 8])
                    .collect();
                let path = split_path(&format!("/{}", segments.join("/"))).unwrap();
                let method = (method % 8 != 7).then(|| pick(&METHODS, *method));
                let found: crate::generation::routes::reference::Found = table
                    .lookup(method, &path)
                    .map(|m| (m.target, m.pattern.as_str().to_owned(), m.params));
                assert_eq!(found, linear.lookup(method, &path), "{method:?} {path:?}");
            }
        });
}

// ---------------------------------------------------------------------------------------------------
// Manifest validation
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, TypeGenerator)]
struct RouteSpec {
    method: u8,
    /// A first segment the host reserves, sometimes.
    first: u8,
    segments: Vec<SegmentSpec>,
    form: u8,
    role: u8,
    view: Option<Text>,
    summary: String,
}

#[derive(Debug, TypeGenerator)]
struct TemplateSpec {
    name: Text,
    size: u32,
}

#[derive(Debug, TypeGenerator)]
struct ManifestCase {
    name: Text,
    version: Text,
    description: String,
    routes: Vec<RouteSpec>,
    templates: Vec<TemplateSpec>,
    /// The routes repeated this many times more (each copy under a `/rN` prefix), up to past
    /// [`MAX_ROUTES`], so a small input can describe a large manifest.
    copies: u16,
}

const NAME_CHARS: &[u8] = b"abcxyz0189-_A";
const NAMES: &[&str] = &[
    "hello", "notes", "errors", "admin", "a", "9lives", "", "x-", "Hello",
];
const VERSION_CHARS: &[u8] = b"0123456789..-+abAZ";
const VERSIONS: &[&str] = &[
    "1.0.0",
    "0.1.0-beta.1",
    "1.2.3+build.5",
    "1.0",
    "01.0.0",
    "1.0.0-",
    "",
    "18446744073709551616.0.0",
];
const TEMPLATE_CHARS: &[u8] = b"abz09-_./";
const TEMPLATE_NAMES: &[&str] = &[
    "v.html",
    "notes/list.html",
    "../x.html",
    "a//b.html",
    "./a.html",
    " ",
    "",
    "A.html",
    ".html",
    "..html",
];

fn template_name(t: &Text) -> String {
    match t {
        Text::Alphabet(b) if b.first().is_some_and(|b| b % 4 != 0) => {
            format!("{}.html", over(TEMPLATE_CHARS, &b[1..]))
        }
        t => t.make(TEMPLATE_CHARS, TEMPLATE_NAMES),
    }
}

impl ManifestCase {
    fn build(&self) -> wit::Manifest {
        let name = match &self.name {
            Text::Alphabet(b) => format!("p{}", over(NAME_CHARS, b)),
            t => t.make(NAME_CHARS, NAMES),
        };
        let version = self.version.make(VERSION_CHARS, VERSIONS);
        let one: Vec<wit::Route> = self
            .routes
            .iter()
            .map(|r| {
                let first = match r.first % 16 {
                    0 => "/admin",
                    1 => "/healthz",
                    2 => "/api",
                    3 => "/metrics",
                    _ => "",
                };
                let rest = pattern_text(&r.segments, r.form);
                let path = if first.is_empty() {
                    rest
                } else if r.segments.is_empty() {
                    first.to_owned()
                } else {
                    format!("{first}{rest}")
                };
                wit::Route {
                    method: pick(&METHODS, r.method),
                    path,
                    role: pick(&Role::ALL, r.role),
                    summary: r.summary.clone(),
                    view: r.view.as_ref().map(template_name),
                }
            })
            .collect();
        let copies = usize::from(self.copies % 64);
        let mut routes = one.clone();
        for k in 1..=copies {
            if routes.len() > MAX_ROUTES {
                break;
            }
            routes.extend(one.iter().map(|r| wit::Route {
                path: if r.path.starts_with('/') {
                    format!("/r{k}{}", r.path)
                } else {
                    r.path.clone()
                },
                ..r.clone()
            }));
        }
        let templates = self
            .templates
            .iter()
            .map(|t| {
                let size = if t.size < 1 << 31 {
                    t.size as usize % 64
                } else {
                    MAX_TEMPLATE_BYTES - 8 + t.size as usize % 16
                };
                wit::Template {
                    name: template_name(&t.name),
                    source: "x".repeat(size),
                }
            })
            .collect();
        wit::Manifest {
            name,
            version,
            description: self.description.clone(),
            routes,
            templates,
        }
    }
}

/// A plugin name, checked independently: 1-64 of `[a-z0-9-]`, starting with a letter.
fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A template name, checked independently: at most 128 bytes, `.html` at the end, `/`-separated
/// segments of `[a-z0-9._-]`, none empty or only dots.
fn template_ok(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".html")
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg.bytes().any(|b| b != b'.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

fn reserved(path: &str) -> bool {
    ["/healthz", "/readyz", "/metrics", "/api"].contains(&path)
        || path == "/admin"
        || path.starts_with("/admin/")
}

/// Every way `m` breaks the rules, as (field, offending value) pairs, found independently of
/// `Manifest::validate` and in no particular order.
fn violations(m: &wit::Manifest) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if !name_ok(&m.name) {
        found.push(("name", m.name.clone()));
    }
    if HOST_TEMPLATE_FOLDERS.contains(&m.name.as_str()) {
        found.push(("reserved name", m.name.clone()));
    }
    if semver::Version::parse(&m.version).is_err() {
        found.push(("version", m.version.clone()));
    }
    if m.routes.len() > MAX_ROUTES {
        found.push(("routes", m.routes.len().to_string()));
    }
    if m.templates.len() > MAX_TEMPLATES {
        found.push(("templates", m.templates.len().to_string()));
    }
    let mut shapes = std::collections::HashMap::new();
    for r in &m.routes {
        let Some(segments) = grammar(&r.path) else {
            found.push(("pattern", r.path.clone()));
            continue;
        };
        if reserved(&r.path) {
            found.push(("reserved", r.path.clone()));
        }
        if let Some(view) = &r.view {
            if view.trim().is_empty() {
                found.push(("empty view", r.path.clone()));
            } else if !template_ok(view) {
                found.push(("template name", view.clone()));
            }
        }
        let shape: Vec<Option<String>> = segments.into_iter().map(Result::ok).collect();
        if let Some(first) = shapes.insert((r.method.as_str(), shape), r.path.clone()) {
            found.push(("duplicate", format!("{first} {}", r.path)));
        }
    }
    let mut names = BTreeSet::new();
    for t in &m.templates {
        if !template_ok(&t.name) {
            found.push(("template name", t.name.clone()));
        }
        if !names.insert(&t.name) {
            found.push(("duplicate template", t.name.clone()));
        }
        if t.source.len() > MAX_TEMPLATE_BYTES {
            found.push(("template size", t.name.clone()));
        }
    }
    found
}

/// The violation an error reports, as (field, offending value), and the words its message must hold
/// to name the field.
fn reported(e: &ManifestError) -> ((&'static str, String), &'static str) {
    match e {
        ManifestError::Name(n) => (("name", n.clone()), "plugin name"),
        ManifestError::ReservedName(n) => (("reserved name", n.clone()), "plugin name"),
        ManifestError::Version { version, .. } => (("version", version.clone()), "version"),
        ManifestError::TooManyRoutes { count, .. } => (("routes", count.to_string()), "routes"),
        ManifestError::TooManyTemplates { count, .. } => {
            (("templates", count.to_string()), "templates")
        }
        ManifestError::Pattern(p) => (("pattern", p.pattern.clone()), "path pattern"),
        ManifestError::Reserved { path, .. } => (("reserved", path.clone()), "route"),
        ManifestError::EmptyView { path, .. } => (("empty view", path.clone()), "view"),
        ManifestError::TemplateName(n) => (("template name", n.clone()), "template name"),
        ManifestError::DuplicateRoute { first, second, .. } => {
            (("duplicate", format!("{first} {second}")), "declared twice")
        }
        ManifestError::DuplicateTemplate(n) => (("duplicate template", n.clone()), "template"),
        ManifestError::TemplateTooLarge { name, .. } => {
            (("template size", name.clone()), "template")
        }
    }
}

/// How long validating `m` may take: about four times what the linear check of its text (patterns,
/// names, summaries; template sources are only measured) takes on this machine (25 ms for the largest
/// manifest, [`manifest_at_the_caps`]), well below what the quadratic one took there (230 ms); four
/// times that again under libFuzzer's instrumentation.
fn validation_budget(m: &wit::Manifest) -> Duration {
    let bytes: usize = m
        .routes
        .iter()
        .map(|r| r.path.len() + r.summary.len() + r.view.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + m.templates.iter().map(|t| t.name.len()).sum::<usize>()
        + m.name.len()
        + m.version.len();
    let scale = if std::env::var_os("BOLERO_LIBFUZZER_ARGS").is_some() {
        4
    } else {
        1
    };
    (Duration::from_millis(10) + Duration::from_nanos(100) * bytes as u32) * scale
}

/// Validates `m` (best of three runs while over budget) and checks the time against
/// [`validation_budget`].
fn validate_timed(m: &wit::Manifest) -> Result<Manifest, ManifestError> {
    let budget = validation_budget(m);
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        let input = m.clone();
        let start = Instant::now();
        let result = Manifest::validate(input);
        fastest = fastest.min(start.elapsed());
        if fastest <= budget {
            return result;
        }
    }
    panic!(
        "validating {} routes took {fastest:?} at best, over {budget:?}",
        m.routes.len()
    );
}

/// The largest manifest: [`MAX_ROUTES`] routes of 1,000-byte patterns with 159 parameters each.
/// Checking that no parameter comes twice compared each with every earlier segment, allocating for
/// each comparison: 230 ms here (found with [`manifest_validation`]'s time budget); now 25 ms.
#[test]
fn manifest_at_the_caps() {
    let pattern = |k: usize| {
        let mut p = format!("/r{k}");
        for i in 0.. {
            if p.len() >= 1000 {
                break;
            }
            p.push_str(&format!("/{{a{i}}}"));
        }
        p
    };
    let routes: Vec<wit::Route> = (0..MAX_ROUTES)
        .map(|k| wit::Route {
            method: Method::Get,
            path: pattern(k),
            role: Role::Anonymous,
            summary: String::new(),
            view: None,
        })
        .collect();
    assert_eq!(pattern(0).matches('{').count(), 159);
    let m = wit::Manifest {
        name: "many".into(),
        version: "1.0.0".into(),
        description: String::new(),
        routes,
        templates: Vec::new(),
    };
    assert_eq!(validate_timed(&m).unwrap().routes.len(), MAX_ROUTES);
}

/// Manifest validation accepts exactly the manifests that break no rule (checked independently) and
/// keeps every field as given; a refusal reports a rule the manifest really breaks, with the
/// offending value, and its message names the field. Validating takes time linear in the manifest:
/// within [`validation_budget`] (the best of three runs, so a busy machine does not fail it).
#[test]
fn manifest_validation() {
    check!()
        .with_type::<ManifestCase>()
        .with_iterations(CASES_HEAVY)
        .for_each(|case| {
            let raw = case.build();
            let broken = violations(&raw);
            match validate_timed(&raw) {
                Ok(m) => {
                    assert!(broken.is_empty(), "accepted, but breaks {broken:?}");
                    assert_eq!(
                        (&m.name, &m.version, &m.description),
                        (&raw.name, &raw.version, &raw.description)
                    );
                    assert_eq!(m.routes.len(), raw.routes.len());
                    for (v, r) in m.routes.iter().zip(&raw.routes) {
                        assert_eq!(
                            (v.method, v.path.as_str(), v.role, &v.summary, &v.view),
                            (r.method, r.path.as_str(), r.role, &r.summary, &r.view)
                        );
                    }
                    let templates: Vec<(String, String)> = raw
                        .templates
                        .iter()
                        .map(|t| (t.name.clone(), t.source.clone()))
                        .collect();
                    assert_eq!(m.templates, templates);
                }
                Err(e) => {
                    let (violation, words) = reported(&e);
                    assert!(
                        broken.contains(&violation),
                        "refused with {e} ({violation:?}), but the manifest breaks only {broken:?}"
                    );
                    let message = e.to_string();
                    assert!(message.contains(words), "{message}");
                }
            }
        });
}

// ---------------------------------------------------------------------------------------------------
// Content negotiation
// ---------------------------------------------------------------------------------------------------

const MEDIA: &[&str] = &[
    "text/html",
    "application/xhtml+xml",
    "application/json",
    "application/problem+json",
    "text/*",
    "application/*",
    "*/*",
    "text/plain",
    "image/webp",
    "application/xml",
    "",
    "html",
    "*/json",
    "text/html/x",
];

#[derive(Debug, TypeGenerator)]
struct RangeSpec {
    media: u8,
    q: Option<u16>,
    /// A parameter other than q, sometimes.
    extra: u8,
    /// Whitespace around the range and its parameters.
    spaced: bool,
}

impl RangeSpec {
    fn text(&self) -> String {
        let media = pick(MEDIA, self.media);
        let sp = if self.spaced { " " } else { "" };
        let mut out = format!("{sp}{media}");
        match self.extra % 4 {
            0 => out.push_str(&format!("{sp};{sp}level=1")),
            1 => out.push_str(";charset=utf-8"),
            _ => {}
        }
        if let Some(q) = self.q {
            let value = match q % 1100 {
                n @ 0..1000 => {
                    let digits = format!("{n:03}");
                    format!("0.{}", &digits[..1 + (q as usize / 1100) % 3])
                }
                1000 => "1".to_owned(),
                1001 => "1.000".to_owned(),
                1002 => "0".to_owned(),
                1003 => "2".to_owned(),
                1004 => "0.1234".to_owned(),
                1005 => "1.5".to_owned(),
                1006 => "".to_owned(),
                _ => "x".to_owned(),
            };
            let name = if q % 3 == 0 { "Q" } else { "q" };
            out.push_str(&format!("{sp};{sp}{name}={value}"));
        }
        out.push_str(sp);
        out
    }
}

#[derive(Debug, TypeGenerator)]
struct NegotiationCase {
    ranges: Vec<RangeSpec>,
    /// Into how many `Accept` headers the ranges are split.
    headers: u8,
    rotate: u8,
    /// A query string: 0 `format=html`, 1 `format=json`, 2 `format=xml`, 3 none; then other pairs.
    query: Option<(u8, String)>,
    /// `Accept` headers as anything.
    raw: Vec<String>,
}

fn accept(values: &[String]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.append(header::ACCEPT, v);
        }
    }
    h
}

/// The format the query asks for: its first `format` pair that is `html` or `json`.
fn query_format(query: &str) -> Option<Format> {
    form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| match (&*k, &*v) {
        ("format", "html") => Some(Format::Html),
        ("format", "json") => Some(Format::Json),
        _ => None,
    })
}

/// Content negotiation depends on the media ranges (up to the 32 read), not on their order, on how
/// they are split into `Accept` headers, on letter case or on whitespace; HTML is chosen only when some
/// range accepts it; `format=html|json` in the query decides whatever `Accept` says.
#[test]
fn negotiation() {
    check!()
        .with_type::<NegotiationCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let ranges: Vec<String> = case.ranges.iter().map(RangeSpec::text).collect();
            let joined = ranges.join(",");
            let result = negotiate(&accept(std::slice::from_ref(&joined)), None);
            if ranges.len() <= 32 {
                let chunks = ranges
                    .len()
                    .div_ceil(1 + usize::from(case.headers % 4))
                    .max(1);
                let split: Vec<String> = ranges.chunks(chunks).map(|c| c.join(",")).collect();
                assert_eq!(negotiate(&accept(&split), None), result, "split {split:?}");
                let mut turned = ranges.clone();
                turned.reverse();
                assert_eq!(
                    negotiate(&accept(&[turned.join(",")]), None),
                    result,
                    "reversed {turned:?}"
                );
                if !ranges.is_empty() {
                    turned.rotate_left(usize::from(case.rotate) % ranges.len());
                    assert_eq!(
                        negotiate(&accept(&[turned.join(",")]), None),
                        result,
                        "rotated {turned:?}"
                    );
                }
                let upper = joined.to_ascii_uppercase();
                assert_eq!(negotiate(&accept(&[upper]), None), result);
                let spaced = joined.replace(',', " , ").replace(';', " ; ");
                assert_eq!(negotiate(&accept(&[spaced]), None), result);
            }
            if result == Format::Html {
                let lower = joined.to_ascii_lowercase();
                assert!(
                    ["html", "text/*", "*/*"].iter().any(|m| lower.contains(m)),
                    "{joined}"
                );
            }
            if ranges.is_empty() {
                assert_eq!(result, Format::Json);
            }

            if let Some((kind, rest)) = &case.query {
                let rest: String = form_urlencoded::byte_serialize(rest.as_bytes()).collect();
                let query = match kind % 4 {
                    0 => format!("format=html&x={rest}"),
                    1 => format!("x={rest}&format=json"),
                    2 => format!("format=xml&{rest}"),
                    _ => rest,
                };
                let h = accept(std::slice::from_ref(&joined));
                let expected = query_format(&query).unwrap_or(result);
                assert_eq!(negotiate(&h, Some(&query)), expected, "{query}");
                match kind % 4 {
                    0 => assert_eq!(expected, Format::Html),
                    1 => assert_eq!(expected, Format::Json),
                    _ => {}
                }
            }

            let raw = accept(&case.raw);
            let result = negotiate(&raw, None);
            let pieces: Vec<&str> = raw
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect();
            if pieces.len() <= 32 {
                let mut turned: Vec<&str> = pieces.clone();
                turned.reverse();
                let joined = turned.join(",");
                assert_eq!(
                    negotiate(&accept(&[joined]), None),
                    result,
                    "reversed {pieces:?}"
                );
            }
        });
}

// ---------------------------------------------------------------------------------------------------
// Path and query decoding
// ---------------------------------------------------------------------------------------------------

/// What a client must encode in a path segment at least: `%`, `/` and what is not a URL character.
const MINIMAL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

#[derive(Debug, TypeGenerator)]
struct PathCase {
    segments: Vec<String>,
    raw: String,
    raw_bytes: Vec<u8>,
}

/// Request paths: percent-encoding segments (everything, or only what must be) and splitting the
/// path gives the segments back; any text splits without panicking, into one segment per `/`, only
/// when it is an absolute path whose segments decode to UTF-8, and its segments re-encode to a path
/// that splits the same.
#[test]
fn path_decoding() {
    check!()
        .with_type::<PathCase>()
        .with_iterations(CASES_TEXT)
        .for_each(|case| {
            let expected: Vec<String> = if case.segments == [""] {
                Vec::new()
            } else {
                case.segments.clone()
            };
            for set in [NON_ALPHANUMERIC, MINIMAL] {
                let parts: Vec<String> = case
                    .segments
                    .iter()
                    .map(|s| utf8_percent_encode(s, set).to_string())
                    .collect();
                let path = format!("/{}", parts.join("/"));
                assert_eq!(split_path(&path).as_ref(), Some(&expected), "{path}");
            }

            let raw_lossy = String::from_utf8_lossy(&case.raw_bytes).into_owned();
            for raw in [&case.raw, &raw_lossy] {
                let decoded = split_path(raw);
                let Some(rest) = raw.strip_prefix('/') else {
                    assert_eq!(decoded, None);
                    continue;
                };
                let utf8 = rest.split('/').all(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .is_ok()
                });
                assert_eq!(decoded.is_some(), utf8, "{raw:?}");
                let Some(segments) = decoded else { continue };
                let count = if rest.is_empty() {
                    0
                } else {
                    rest.split('/').count()
                };
                assert_eq!(segments.len(), count);
                let again: Vec<String> = segments
                    .iter()
                    .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
                    .collect();
                let again = split_path(&format!("/{}", again.join("/")));
                let normal = if segments == [""] {
                    Vec::new()
                } else {
                    segments
                };
                assert_eq!(again, Some(normal));
            }
        });
}

#[derive(Debug, TypeGenerator)]
struct QueryCase {
    pairs: Vec<(u8, String, String)>,
    raw: String,
}

/// The query a plugin sees: form-encoded pairs decode to the pairs, in order, without the ones that
/// carry an API key (`api-key`, `api_key`, however their names are encoded); from any text, no pair
/// named like a key parameter ever reaches a plugin, and the rest are what `form_urlencoded` reads.
#[test]
fn query_decoding() {
    check!()
        .with_type::<QueryCase>()
        .with_iterations(CASES_TEXT)
        .for_each(|case| {
            let pairs: Vec<(String, String)> = case
                .pairs
                .iter()
                .map(|(kind, k, v)| {
                    let k = match kind % 5 {
                        0 => "api-key".to_owned(),
                        1 => "api_key".to_owned(),
                        _ => k.clone(),
                    };
                    (k, v.clone())
                })
                .collect();
            let expected: Vec<(String, String)> = pairs
                .iter()
                .filter(|(k, _)| !auth::KEY_QUERY_PARAMS.contains(&k.as_str()))
                .cloned()
                .collect();
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            assert_eq!(plugin_request::query(&form), expected, "{form}");
            // Percent-encoding every byte (no `+` for spaces) reads the same.
            let strict: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, NON_ALPHANUMERIC),
                        utf8_percent_encode(v, NON_ALPHANUMERIC)
                    )
                })
                .collect();
            assert_eq!(plugin_request::query(&strict.join("&")), expected);

            let seen = plugin_request::query(&case.raw);
            let all: Vec<(String, String)> = form_urlencoded::parse(case.raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(k, _)| !auth::KEY_QUERY_PARAMS.contains(&k.as_str()))
                .collect();
            assert_eq!(seen, all);
        });
}

// ---------------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, TypeGenerator)]
struct KeyCase {
    secret: [u8; 32],
    other: [u8; 32],
    /// A change to the key's text: (position, character, kind).
    change: Option<(u8, u8, u8)>,
    raw: String,
    /// Where the request carries the key: Bearer, X-Api-Key, `api-key` or `api_key` in the query.
    places: Vec<u8>,
    /// Also send another key.
    second: bool,
}

fn parts(uri: &str, headers: &[(&str, String)]) -> Option<http::request::Parts> {
    let mut b = http::Request::builder().uri(uri);
    for (name, value) in headers {
        b = b.header(*name, HeaderValue::from_str(value).ok()?);
    }
    Some(b.body(()).ok()?.into_parts().0)
}

/// API keys: the parser accepts exactly the texts the generator makes (`phk_` + 43 base64url
/// characters of 32 bytes) and gives back their bytes; any change to a key's text is refused unless it
/// makes another such key. A request carrying a key as `Bearer` (any case, extra spaces), in
/// `X-Api-Key` or in the query (`api-key`, `api_key`, encoded or not), in one place or several,
/// presents exactly that key; a second key is presented too; a key in `Authorization` without the
/// Bearer scheme is the 401 that says how to send it.
#[test]
fn api_keys() {
    check!()
        .with_type::<KeyCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let key = keys::key_text(&case.secret);
            assert_eq!(key.len(), 47);
            assert!(key.starts_with(keys::KEY_PREFIX));
            assert!(
                key[4..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(keys::parse_key(&key), Some(case.secret));

            let mut changed = key.clone().into_bytes();
            if let Some((pos, c, kind)) = case.change {
                let pos = usize::from(pos) % changed.len();
                let c = pick(b"aAzZ09-_+/=. ", c);
                match kind % 3 {
                    0 => changed[pos] = c,
                    1 => changed.insert(pos, c),
                    _ => {
                        changed.remove(pos);
                    }
                }
            }
            let changed = String::from_utf8(changed).unwrap();
            for text in [&changed, &case.raw] {
                if let Some(secret) = keys::parse_key(text) {
                    assert_eq!(&keys::key_text(&secret), text);
                }
            }

            let other = keys::key_text(&case.other);
            let mut headers = Vec::new();
            let mut query = Vec::new();
            for (i, place) in case.places.iter().take(6).enumerate() {
                match place % 4 {
                    0 => {
                        let scheme = pick(&["Bearer", "bearer", "BEARER", "bEaReR"], *place / 4);
                        let pad = " ".repeat(1 + i % 2);
                        headers.push(("authorization", format!("{scheme}{pad}{key}{pad}")));
                    }
                    1 => headers.push(("x-api-key", format!(" {key} "))),
                    2 => query.push(format!("api-key={key}")),
                    _ => query.push(format!(
                        "api_key={}",
                        utf8_percent_encode(&key, NON_ALPHANUMERIC)
                    )),
                }
            }
            if case.second {
                headers.push(("x-api-key", other.clone()));
            }
            let uri = format!("/x?a=1&{}", query.join("&"));
            let request = parts(&uri, &headers).expect("a valid request");
            let mut expected: Vec<String> = Vec::new();
            if !case.places.is_empty() {
                expected.push(key.clone());
            }
            if case.second && !expected.contains(&other) {
                expected.push(other.clone());
            }
            expected.sort();
            assert_eq!(auth::presented_keys(&request), expected);
            assert!(auth::misplaced_key(&request).is_ok());

            for scheme in ["", "Basic ", "Token ", "  "] {
                let value = format!("{scheme}{key}");
                let request = parts("/x", &[("authorization", value)]).unwrap();
                assert!(auth::misplaced_key(&request).is_err(), "{scheme:?}");
            }
        });
}

#[derive(Debug, TypeGenerator)]
struct ScopeCase {
    scope: Vec<u8>,
    path: Vec<u8>,
    raw_scope: String,
    raw_path: String,
    scopes: Vec<Vec<u8>>,
}

/// Key scopes: a valid scope is an absolute path prefix without `?`, `#` or a line break, of at most
/// 256 bytes; a path is inside a scope exactly when the scope's `/`-separated segments begin the
/// path's (or, for a scope ending in `/`, the path begins with it): `/notes` covers `/notes/1`,
/// never `/notesx`. Valid scopes stored one a line read back the same.
#[test]
fn key_scopes() {
    check!()
        .with_type::<ScopeCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let alphabet = b"/ab.%?";
            let scope = format!("/{}", over(alphabet, &case.scope));
            let path = format!("/{}", over(alphabet, &case.path));
            for (scope, path) in [
                (&scope, &path),
                (&case.raw_scope, &case.raw_path),
                (&scope, &case.raw_path),
            ] {
                let valid = scope.starts_with('/')
                    && !scope.contains(['?', '#', '\n', '\r'])
                    && scope.len() <= 256;
                assert_eq!(keys::check_scope(scope).is_ok(), valid, "{scope:?}");
                if !valid {
                    continue;
                }
                let segments: Vec<&str> = scope.split('/').collect();
                let path_segments: Vec<&str> = path.split('/').collect();
                let expected = if scope.ends_with('/') {
                    path.starts_with(scope.as_str())
                } else {
                    path_segments.starts_with(&segments)
                };
                assert_eq!(keys::in_scope(scope, path), expected, "{scope:?} {path:?}");
                assert!(keys::in_scope(scope, scope));
                assert!(keys::in_scope(scope, &format!("{scope}/x")));
            }
            let stored: Vec<String> = case
                .scopes
                .iter()
                .map(|s| format!("/{}", over(b"/ab.%", s)))
                .collect();
            assert!(stored.iter().all(|s| keys::check_scope(s).is_ok()));
            assert_eq!(keys::split_scopes(&stored.join("\n")), stored);
        });
}

#[derive(Debug, TypeGenerator)]
enum ExpirySpec {
    For(i64, u8),
    Date(i64, u8, u8),
    DateTime(i64, u8, u8, u8, u8, Option<u8>, bool),
    Raw(String),
}

/// Days in `month` of `year` (proleptic Gregorian).
fn days_in(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Key expiry: `30d`/`12h`/`45m`/`10s` is exactly that long after now, when it fits; a date or
/// date-time is that instant, and only a real one (month 1-12, a day the month has, 00:00:00 to
/// 23:59:59): the instant read back as a calendar date is the date given. Whatever the text, an
/// accepted expiry is in the future, and nothing overflows.
#[test]
fn key_expiry() {
    check!()
        .with_type::<(ExpirySpec, u64)>()
        .with_iterations(CASES)
        .for_each(|(spec, now)| {
            // Now: any time from 1970 to about the year 2286.
            let now = (*now % 10_000_000_000_000) as i64;
            match spec {
                ExpirySpec::For(n, unit) => {
                    let (u, ms) = pick(
                        &[
                            ('d', 86_400_000i64),
                            ('h', 3_600_000),
                            ('m', 60_000),
                            ('s', 1_000),
                        ],
                        *unit,
                    );
                    let n = if unit % 2 == 0 { n % 100_000 } else { *n };
                    let got = keys::parse_expiry(&format!("{n}{u}"), now);
                    let expected = n
                        .checked_mul(ms)
                        .and_then(|d| now.checked_add(d))
                        .filter(|_| n > 0);
                    assert_eq!(got.ok(), expected, "{n}{u} at {now}");
                }
                ExpirySpec::Date(y, m, d) => {
                    let (y, m, d) = date_parts(*y, *m, *d);
                    let text = format!("{y:04}-{m:02}-{d:02}");
                    let got = keys::parse_expiry(&text, now);
                    check_instant(&text, now, got.ok(), (y, m, d, 0, 0, 0));
                }
                ExpirySpec::DateTime(y, m, d, h, mi, s, z) => {
                    let (y, m, d) = date_parts(*y, *m, *d);
                    let (h, mi) = (i64::from(*h % 30), i64::from(*mi % 70));
                    let seconds = s.map(|s| i64::from(s % 70));
                    let mut text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}");
                    if let Some(s) = seconds {
                        text.push_str(&format!(":{s:02}"));
                    }
                    if *z {
                        text.push('Z');
                    }
                    let got = keys::parse_expiry(&text, now);
                    check_instant(&text, now, got.ok(), (y, m, d, h, mi, seconds.unwrap_or(0)));
                }
                ExpirySpec::Raw(text) => {
                    if let Ok(at) = keys::parse_expiry(text, now) {
                        assert!(at > now, "{text:?} at {now} gave {at}");
                    }
                }
            }
        });
}

fn date_parts(y: i64, m: u8, d: u8) -> (i64, i64, i64) {
    let y = if y % 4 == 0 {
        y
    } else {
        1960 + y.rem_euclid(400)
    };
    (y, i64::from(m % 14), i64::from(d % 33))
}

/// `got` is the instant of `(y, m, d, h, mi, s)` when that is a real date and time after `now`,
/// else nothing.
fn check_instant(
    text: &str,
    now: i64,
    got: Option<i64>,
    (y, m, d, h, mi, s): (i64, i64, i64, i64, i64, i64),
) {
    let real = (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && (1..=days_in(y, m)).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s);
    match got {
        Some(at) => {
            assert!(real && at > now, "{text:?} at {now} gave {at}");
            let c = plugin_host_kit::time::Civil::from_unix_ms(at);
            assert_eq!(
                (
                    c.year,
                    i64::from(c.month),
                    i64::from(c.day),
                    i64::from(c.hour),
                    i64::from(c.minute),
                    i64::from(c.second)
                ),
                (y, m, d, h, mi, s),
                "{text:?}"
            );
        }
        None => {
            // Refused: not a real date and time, or not after now.
            if real {
                let days = days_from_civil(y, m, d);
                let at = (days * 86_400 + h * 3600 + mi * 60 + s) * 1000;
                assert!(at <= now, "{text:?} at {now} refused");
            }
        }
    }
}

/// Days since 1970-01-01 (an independent count: whole years, then months).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mut days = 0;
    if y >= 1970 {
        days += (1970..y)
            .map(|y| if leap(y) { 366 } else { 365 })
            .sum::<i64>();
    } else {
        days -= (y..1970)
            .map(|y| if leap(y) { 366 } else { 365 })
            .sum::<i64>();
    }
    days + (1..m).map(|m| days_in(y, m)).sum::<i64>() + d - 1
}

// ---------------------------------------------------------------------------------------------------
// The session cookie
// ---------------------------------------------------------------------------------------------------

const COOKIE_NAME_CHARS: &[u8] = b"abph_sesionPHS-";
const COOKIE_NAMES: &[&str] = &[
    "ph_session",
    "PH_SESSION",
    "ph_session_x",
    "xph_session",
    "__Host-ph_session",
    "__Secure-ph_session",
    "theme",
    "",
];
const COOKIE_VALUE_CHARS: &[u8] = b"abAZ09-_=.%\"";

#[derive(Debug, TypeGenerator)]
struct CookieSpec {
    name: Text,
    value: Vec<u8>,
    spaced: bool,
}

impl CookieSpec {
    fn pair(&self) -> (String, String, String) {
        let name = self
            .name
            .make(COOKIE_NAME_CHARS, COOKIE_NAMES)
            .replace([';', '='], "");
        let value = over(COOKIE_VALUE_CHARS, &self.value);
        let sp = if self.spaced { " " } else { "" };
        (format!("{sp}{name}{sp}={sp}{value}{sp}"), name, value)
    }
}

#[derive(Debug, TypeGenerator)]
struct CookieCase {
    before: Vec<CookieSpec>,
    /// The session id (base64url, as the host makes them) or any cookie value.
    id: Option<Vec<u8>>,
    after: Vec<CookieSpec>,
    headers: u8,
    secure: bool,
    raw: Vec<String>,
    /// A plugin's `Set-Cookie`: a name, whether it has `=`, a value and attributes.
    plugin: (Text, u8, Vec<u8>, String),
}

/// What a browser sends back for a `Set-Cookie` value (RFC 6265bis 5.6: the pair before the first
/// `;`, split at its first `=`, a pair without `=` being a nameless cookie, both parts trimmed of
/// spaces and tabs), or nothing when it stores no cookie.
fn sent_back(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let (name, value) = pair.split_once('=').unwrap_or(("", pair));
    let trim = |s: &str| s.trim_matches([' ', '\t']).to_owned();
    let (name, value) = (trim(name), trim(value));
    match (name.is_empty(), value.is_empty()) {
        (true, true) => None,
        (true, false) => Some(value),
        _ => Some(format!("{name}={value}")),
    }
}

/// The session cookie: the id is the value of the first cookie named exactly `ph_session` (no space
/// before its `=`) among any others, in one `Cookie` header or several, spaces trimmed; none without one; the cookie the
/// host sets reads back as its id. And across two parsers: a `Set-Cookie` a plugin sends that the
/// response check lets through never comes back from the browser as the host's session cookie.
#[test]
fn session_cookie() {
    check!()
        .with_type::<CookieCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let mut pairs: Vec<(String, String, String)> =
                case.before.iter().map(CookieSpec::pair).collect();
            let id = case.id.as_ref().map(|b| over(COOKIE_VALUE_CHARS, b));
            if let Some(id) = &id {
                pairs.push((
                    format!("{}={id}", sessions::COOKIE),
                    sessions::COOKIE.into(),
                    id.clone(),
                ));
            }
            pairs.extend(case.after.iter().map(CookieSpec::pair));
            // A pair is the session cookie when, trimmed, it starts with exactly `ph_session=` (no space
            // before the `=`: RFC 6265's cookie-pair has none, and browsers send none).
            let expected = pairs.iter().find_map(|(text, _, _)| {
                let (name, value) = text.trim().split_once('=')?;
                (name == sessions::COOKIE).then(|| value.trim().to_owned())
            });
            let texts: Vec<&str> = pairs.iter().map(|(t, _, _)| t.as_str()).collect();
            let per_header = texts
                .len()
                .div_ceil(1 + usize::from(case.headers % 3))
                .max(1);
            let headers: Vec<String> = texts.chunks(per_header).map(|c| c.join(";")).collect();
            let got = sessions::from_cookies(headers.iter().map(String::as_str));
            assert_eq!(got.map(str::to_owned), expected, "{headers:?}");

            // The host's own cookie reads back.
            let token = id.unwrap_or_default();
            let set = sessions::set_cookie(&token, case.secure, 3_600_000);
            let back = sent_back(&set).unwrap_or_default();
            assert_eq!(
                sessions::from_cookies([back.as_str()].into_iter()),
                Some(token.as_str())
            );
            let cleared = sent_back(&sessions::clear_cookie(case.secure)).unwrap_or_default();
            assert_eq!(
                sessions::from_cookies([cleared.as_str()].into_iter()),
                Some("")
            );

            for raw in &case.raw {
                if let Some(v) = sessions::from_cookies([raw.as_str()].into_iter()) {
                    assert!(raw.contains(v) && !v.contains(';') && v.trim() == v);
                }
            }

            // A plugin's Set-Cookie through the response check, then back from the browser.
            let (name, eq, value, attributes) = &case.plugin;
            let name = name.make(COOKIE_NAME_CHARS, COOKIE_NAMES);
            let value = over(COOKIE_VALUE_CHARS, value);
            let lead = if eq % 5 == 0 { " =" } else { "" };
            let set_cookie = match eq % 3 {
                0 => format!("{lead}{name}{attributes}"),
                _ => format!("{lead}{name}={value};{attributes}"),
            };
            let response = wit::Response {
                status: 200,
                headers: vec![("set-cookie".into(), set_cookie.clone())],
                body: wit::Body::Empty,
            };
            if answer::checked(response, 0).is_ok()
                && let Some(back) = sent_back(&set_cookie)
            {
                assert_eq!(
                    sessions::from_cookies([back.as_str()].into_iter()),
                    None,
                    "{set_cookie:?} let through, comes back as {back:?}"
                );
            }
        });
}

// ---------------------------------------------------------------------------------------------------
// The login redirect
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, TypeGenerator)]
struct NextCase {
    next: Text,
    prefix: u8,
}

/// Where the login form sends the browser: `safe_next` gives back its input or `/admin`, and what it
/// gives back, put in a `Location` header, stays on the host: a browser (the WHATWG URL parser, as the
/// `url` crate implements it) resolves it to the same origin.
#[test]
fn login_next() {
    check!()
        .with_type::<NextCase>()
        .with_iterations(CASES)
        .for_each(|case| {
            let text = case.next.make(
                b"/\\.:@ab\t%?#",
                &[
                    "//evil.example",
                    "/\t/evil.example",
                    "/\\evil",
                    "https://evil.example",
                    "/admin",
                ],
            );
            let next = format!("{}{text}", pick(&["", "/", "//", "/\t", "\\"], case.prefix));
            let got = crate::admin::login::safe_next(Some(&next));
            assert!(got == next || got == "/admin", "{next:?} gave {got:?}");
            // Found here first (docs/security.md, Fuzzing): a tab, which browsers drop from URLs,
            // turned `/<tab>/evil.example` into `//evil.example`; another control character made no
            // header value, so the 303 had no Location. safe_next now refuses both.
            let Ok(location) = HeaderValue::from_str(got) else {
                panic!(
                    "{next:?} accepted, but it is no header value: the redirect has no Location"
                );
            };
            let base = url::Url::parse("http://plugin-host.test/admin/login").unwrap();
            let to = base.join(&String::from_utf8_lossy(location.as_bytes()));
            assert!(
                to.as_ref().is_ok_and(|u| u.origin() == base.origin()),
                "{next:?} accepted, but leads to {to:?}"
            );
        });
}

// ---------------------------------------------------------------------------------------------------
// The configuration overlay
// ---------------------------------------------------------------------------------------------------

/// A key of the configuration, how to write a value for it and how to read it back.
struct Key {
    path: &'static [&'static str],
    kind: Kind,
    read: fn(&Config) -> String,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Str,
}

const KEYS: &[Key] = &[
    Key {
        path: &["log"],
        kind: Kind::Str,
        read: |c| c.log.clone(),
    },
    Key {
        path: &["database"],
        kind: Kind::Str,
        read: |c| c.database.clone(),
    },
    Key {
        path: &["plugins_dir"],
        kind: Kind::Str,
        read: |c| c.plugins_dir.display().to_string(),
    },
    Key {
        path: &["data_dir"],
        kind: Kind::Str,
        read: |c| c.data_dir.display().to_string(),
    },
    Key {
        path: &["watch"],
        kind: Kind::Bool,
        read: |c| c.watch.to_string(),
    },
    Key {
        path: &["compile_cache"],
        kind: Kind::Bool,
        read: |c| c.compile_cache.to_string(),
    },
    Key {
        path: &["shutdown_grace_ms"],
        kind: Kind::Int,
        read: |c| c.shutdown_grace_ms.to_string(),
    },
    Key {
        path: &["limits", "max_instances"],
        kind: Kind::Int,
        read: |c| c.limits.max_instances.to_string(),
    },
    Key {
        path: &["limits", "request_timeout_ms"],
        kind: Kind::Int,
        read: |c| c.limits.request_timeout_ms.to_string(),
    },
    Key {
        path: &["limits", "max_request_body_bytes"],
        kind: Kind::Int,
        read: |c| c.limits.max_request_body_bytes.to_string(),
    },
    Key {
        path: &["limits", "instance_reuse"],
        kind: Kind::Int,
        read: |c| c.limits.instance_reuse.to_string(),
    },
    Key {
        path: &["limits", "deadlines"],
        kind: Kind::Bool,
        read: |c| c.limits.deadlines.to_string(),
    },
    Key {
        path: &["auth", "session_idle_secs"],
        kind: Kind::Int,
        read: |c| c.auth.session_idle_secs.to_string(),
    },
    Key {
        path: &["auth", "secure_cookies"],
        kind: Kind::Bool,
        read: |c| c.auth.secure_cookies.to_string(),
    },
    Key {
        path: &["cluster", "poll_secs"],
        kind: Kind::Int,
        read: |c| c.cluster.poll_secs.to_string(),
    },
    Key {
        path: &["cluster", "node_id"],
        kind: Kind::Str,
        read: |c| c.cluster.node_id.clone(),
    },
];

#[derive(Debug, TypeGenerator)]
struct ConfigCase {
    /// (key, value) set by the file, in order (a later one for the same key wins).
    file: Vec<(u8, u64, String)>,
    /// Command-line values: data_dir, database, plugins_dir, watch.
    flags: (Option<String>, Option<String>, Option<String>, bool),
    /// `[plugins.NAME.config]` values: (plugin, key, value).
    plugin_config: Vec<(u8, u8, String)>,
    /// A file as any text.
    raw: String,
}

fn toml_value(kind: Kind, n: u64, s: &str) -> toml::Value {
    match kind {
        // Mostly in range; sometimes 0 (below some minimums) or past i64 (not a TOML integer).
        Kind::Int => toml::Value::Integer(match n % 8 {
            0 => 0,
            1 => -1,
            _ => (n % 100_000) as i64 + 1,
        }),
        Kind::Bool => toml::Value::Boolean(n.is_multiple_of(2)),
        Kind::Str if n.is_multiple_of(16) => toml::Value::Integer(7),
        Kind::Str => toml::Value::String(s.replace(['\0'], "")),
    }
}

fn scratch_file() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-host-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{:?}.toml", std::thread::current().id()))
}

/// The configuration overlay: a value the file sets wins over the default, a command-line value wins
/// over both, and a key no layer sets keeps its default; `[plugins.NAME.config]` reads back as set. A
/// file that is refused is refused for a value it really sets wrongly, and the message names that
/// key. Any text as the file is an answer, never a panic.
#[test]
fn config_overlay() {
    let defaults = Config::defaults();
    check!()
        .with_type::<ConfigCase>()
        .with_iterations(CASES_CONFIG)
        .for_each(|case| {
            let mut table = toml::Table::new();
            let mut set: Vec<Option<toml::Value>> = vec![None; KEYS.len()];
            for (k, n, s) in &case.file {
                let i = usize::from(*k) % KEYS.len();
                let key = &KEYS[i];
                let value = toml_value(key.kind, *n, s);
                let slot = match key.path {
                    [_] => &mut table,
                    [section, _] => table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .unwrap(),
                    _ => unreachable!(),
                };
                slot.insert(key.path.last().unwrap().to_string(), value.clone());
                set[i] = Some(value);
            }
            let mut plugin_config = std::collections::BTreeMap::new();
            for (p, k, v) in &case.plugin_config {
                let (plugin, key) = (format!("p{}", p % 3), format!("k{}", k % 4));
                let plugins = table
                    .entry("plugins".to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let entry = plugins
                    .as_table_mut()
                    .unwrap()
                    .entry(plugin.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap()
                    .entry("config".to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                entry
                    .as_table_mut()
                    .unwrap()
                    .insert(key.clone(), toml::Value::String(v.clone()));
                plugin_config
                    .entry(plugin)
                    .or_insert_with(std::collections::BTreeMap::new)
                    .insert(key, v.clone());
            }
            let (data_dir, database, plugins_dir, watch) = &case.flags;
            let overrides = Overrides {
                data_dir: data_dir.clone().map(Into::into),
                database: database.clone(),
                plugins_dir: plugins_dir.clone().map(Into::into),
                watch: *watch,
                ..Overrides::default()
            };
            let file = scratch_file();
            std::fs::write(&file, toml::to_string(&table).unwrap()).unwrap();
            match Config::load(Some(&file), &overrides) {
                Ok(c) => {
                    for (key, value) in KEYS.iter().zip(&set) {
                        let flag = match key.path {
                            ["data_dir"] => data_dir.clone(),
                            ["database"] => database.clone(),
                            ["plugins_dir"] => plugins_dir.clone(),
                            ["watch"] if *watch => Some("true".into()),
                            _ => None,
                        };
                        let expected = match (flag, value) {
                            (Some(flag), _) => flag,
                            (None, Some(toml::Value::String(s))) => s.clone(),
                            (None, Some(v)) => v.to_string(),
                            (None, None) => (key.read)(&defaults),
                        };
                        assert_eq!((key.read)(&c), expected, "{}", key.path.join("."));
                    }
                    for (plugin, values) in &plugin_config {
                        assert_eq!(&c.plugin_config(plugin), values);
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    let named = KEYS.iter().zip(&set).any(|(key, value)| {
                        value.is_some() && message.contains(key.path.last().unwrap())
                    }) || (database.as_deref().is_some_and(|d| d.trim().is_empty())
                        && message.contains("database"));
                    assert!(named, "refused without naming a key it sets: {message}");
                }
            }
            std::fs::write(&file, &case.raw).unwrap();
            let _ = Config::load(Some(&file), &Overrides::default());
        });
}

// ---------------------------------------------------------------------------------------------------
// The response checks
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, TypeGenerator)]
enum HeaderSpec {
    Owned(u8, u8),
    Custom(Vec<u8>, Vec<u8>),
    SetCookie(Text, Vec<u8>),
    ContentType(u8),
    Raw(String, String),
}

impl HeaderSpec {
    fn make(&self) -> (String, String) {
        match self {
            HeaderSpec::Owned(i, case) => {
                let name = pick(HOST_RESPONSE_HEADERS, *i);
                let name = if case % 2 == 0 {
                    name.to_ascii_uppercase()
                } else {
                    name.to_owned()
                };
                (name, "x".into())
            }
            HeaderSpec::Custom(n, v) => (
                format!("x-{}", over(b"abz09-_ :", n)),
                over(b"abz09 -;=\t\x7f\n", v),
            ),
            HeaderSpec::SetCookie(name, v) => (
                "Set-Cookie".into(),
                format!(
                    "{}={}; Path=/",
                    name.make(COOKIE_NAME_CHARS, COOKIE_NAMES),
                    over(COOKIE_VALUE_CHARS, v)
                ),
            ),
            HeaderSpec::ContentType(i) => (
                "content-type".into(),
                pick(&["text/csv", "image/png", "application/json"], *i).into(),
            ),
            HeaderSpec::Raw(n, v) => (n.clone(), v.clone()),
        }
    }
}

#[derive(Debug, TypeGenerator)]
enum BodySpec {
    Empty,
    Json(JsonSpec),
    JsonRaw(String),
    Text(String),
    Bytes(Vec<u8>),
    /// A body of about `max_body` bytes: (offset from it, text or bytes).
    Sized(u8, bool),
}

#[derive(Debug, TypeGenerator)]
struct ResponseCase {
    status: u16,
    headers: Vec<HeaderSpec>,
    /// Extra headers to reach the caps: (how many, each value's length).
    fill: Option<(u8, u16)>,
    body: BodySpec,
    max_body: u16,
}

const STATUSES: &[u16] = &[
    200, 201, 204, 304, 100, 101, 103, 199, 301, 404, 500, 599, 600, 999, 1000, 0,
];

/// Every way a plugin response breaks the contract (independently of `checked`), as reasons.
fn response_violations(r: &wit::Response, max_body: usize) -> Vec<String> {
    let mut found = Vec::new();
    match http::StatusCode::from_u16(r.status) {
        Ok(s) if !s.is_informational() => {}
        _ => found.push(format!("status {}", r.status)),
    }
    if r.headers.len() > 64 {
        found.push("header count".into());
    }
    if r.headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum::<usize>()
        > 64 << 10
    {
        found.push("header bytes".into());
    }
    for (name, value) in &r.headers {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            found.push(format!("name {name:?}"));
        } else if HOST_RESPONSE_HEADERS.contains(&lower.as_str()) {
            found.push(format!("owned {lower}"));
        } else if lower == "set-cookie" && answer::sets_host_cookie(value) {
            found.push(format!("cookie {value:?}"));
        } else if HeaderValue::from_str(value).is_err() {
            found.push(format!("value {value:?}"));
        }
    }
    let len = match &r.body {
        wit::Body::Empty => 0,
        wit::Body::Json(t) => {
            if serde_json::from_str::<serde::de::IgnoredAny>(t).is_err() {
                found.push("json".into());
            } else {
                // Typed parsing stops at 128 levels, and at numbers out of f64's range (which the
                // validity check above skips over): the depth scan is checked against it in `json_depth`.
                let depth = match serde_json::from_str::<serde_json::Value>(t) {
                    Ok(v) => value_depth(&v),
                    Err(_) => answer::json_depth(t),
                };
                if depth > 100 {
                    found.push("json depth".into());
                }
            }
            t.len()
        }
        wit::Body::Text(t) => t.len(),
        wit::Body::Bytes(b) => b.len(),
    };
    if len > max_body {
        found.push("body size".into());
    }
    if matches!(r.status, 204 | 304) && len > 0 {
        found.push("body on 204/304".into());
    }
    found
}

/// How deep arrays and objects nest in `v`.
fn value_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The checks on a plugin's response let it through exactly when it breaks no rule (status not 1xx
/// and valid, at most 64 headers and 64 KiB of them, valid names and values, no header the host owns,
/// no Set-Cookie for the host's session, JSON that parses and nests at most 100 deep, a body within the
/// limit, none on a 204 or 304), and what they let through is the plugin's status and headers, the
/// right content type and a body of the plugin's length.
#[test]
fn response_checks() {
    check!()
        .with_type::<ResponseCase>()
        .with_iterations(CASES_HEAVY)
        .for_each(|case| {
            let status = if case.status % 4 == 0 {
                case.status
            } else {
                pick(STATUSES, case.status / 4)
            };
            let mut headers: Vec<(String, String)> =
                case.headers.iter().map(HeaderSpec::make).collect();
            if let Some((count, len)) = case.fill {
                let value = "v".repeat(usize::from(len % 8192));
                headers.extend((0..count % 80).map(|i| (format!("x-fill-{i}"), value.clone())));
            }
            let max_body = usize::from(case.max_body % 2048);
            let body = match &case.body {
                BodySpec::Empty => wit::Body::Empty,
                BodySpec::Json(spec) => wit::Body::Json(spec.build().0),
                BodySpec::JsonRaw(t) => wit::Body::Json(t.clone()),
                BodySpec::Text(t) => wit::Body::Text(t.clone()),
                BodySpec::Bytes(b) => wit::Body::Bytes(b.clone()),
                BodySpec::Sized(offset, text) => {
                    let len = (max_body + usize::from(*offset)).saturating_sub(128);
                    if *text {
                        wit::Body::Text("t".repeat(len))
                    } else {
                        wit::Body::Bytes(vec![0; len])
                    }
                }
            };
            let response = wit::Response {
                status,
                headers: headers.clone(),
                body,
            };
            let broken = response_violations(&response, max_body);
            let expected_type = match &response.body {
                wit::Body::Empty => None,
                wit::Body::Json(_) => Some("application/json"),
                wit::Body::Text(_) => Some("text/plain; charset=utf-8"),
                wit::Body::Bytes(_) => Some("application/octet-stream"),
            };
            let len = match &response.body {
                wit::Body::Empty => 0,
                wit::Body::Json(t) | wit::Body::Text(t) => t.len(),
                wit::Body::Bytes(b) => b.len(),
            };
            match answer::checked(response, max_body) {
                Ok(out) => {
                    assert!(broken.is_empty(), "let through, but breaks {broken:?}");
                    assert_eq!(out.status().as_u16(), status);
                    for owned in HOST_RESPONSE_HEADERS {
                        assert!(!out.headers().contains_key(*owned), "{owned} let through");
                    }
                    for cookie in out.headers().get_all(header::SET_COOKIE) {
                        let cookie = String::from_utf8_lossy(cookie.as_bytes());
                        let back = sent_back(&cookie).unwrap_or_default();
                        assert_eq!(sessions::from_cookies([back.as_str()].into_iter()), None);
                    }
                    let plugin_type = headers
                        .iter()
                        .rev()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                        .map(|(_, v)| v.as_str());
                    let content_type = out
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()));
                    let content_type = content_type.as_deref();
                    assert_eq!(content_type, plugin_type.or(expected_type));
                    let plugin_headers = headers
                        .iter()
                        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
                        .count();
                    let out_headers = out.headers().len() - usize::from(content_type.is_some());
                    assert_eq!(out_headers, plugin_headers);
                    let size = axum::body::HttpBody::size_hint(out.body()).exact();
                    assert_eq!(size, Some(len as u64));
                    if matches!(status, 204 | 304) {
                        assert_eq!(len, 0);
                    }
                }
                Err(reason) => {
                    assert!(!broken.is_empty(), "refused ({reason}), but breaks no rule");
                }
            }
        });
}

// ---------------------------------------------------------------------------------------------------
// JSON depth
// ---------------------------------------------------------------------------------------------------

/// A JSON document nested `levels.len()` deep: level i is an array (odd byte) or an object, with a
/// string sibling full of brackets, quotes and escapes, around a scalar.
#[derive(Debug, TypeGenerator)]
struct JsonSpec {
    levels: Vec<u8>,
    extra: u8,
    text: String,
}

impl JsonSpec {
    /// The text and its depth.
    fn build(&self) -> (String, usize) {
        let depth = self.levels.len() + usize::from(self.extra % 4) * 40;
        let tricky = serde_json::to_string(&format!("{}[{{\"\\]}}", self.text)).unwrap();
        let mut text = String::from("0");
        for i in 0..depth {
            let kind = self.levels.get(i % self.levels.len().max(1)).copied();
            text = if kind.unwrap_or(0) % 2 == 1 {
                format!("[{tricky},{text}]")
            } else {
                format!("{{\"k\":{text},\"s\":{tricky}}}")
            };
        }
        (text, depth)
    }
}

/// The one-pass depth scan of a plugin's JSON agrees with the depth of the document: of generated
/// documents (any depth, strings full of brackets and escaped quotes), and of any text serde_json
/// reads as JSON; `check_json` accepts exactly the valid documents at most 100 deep.
#[test]
fn json_depth() {
    check!()
        .with_type::<(JsonSpec, String)>()
        .with_iterations(CASES)
        .for_each(|(spec, raw)| {
            let (text, depth) = spec.build();
            assert_eq!(answer::json_depth(&text), depth, "{text}");
            assert_eq!(answer::check_json(&text).is_ok(), depth <= 100);
            if serde_json::from_str::<serde::de::IgnoredAny>(raw).is_err() {
                assert!(answer::check_json(raw).is_err(), "{raw}");
                return;
            }
            match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v) => {
                    let depth = value_depth(&v);
                    assert_eq!(answer::json_depth(raw), depth, "{raw}");
                    assert_eq!(answer::check_json(raw).is_ok(), depth <= 100);
                }
                Err(e) if e.to_string().contains("recursion limit") => {
                    assert!(answer::check_json(raw).is_err(), "{raw}");
                }
                // A number out of f64's range: valid JSON, no typed value to compare with.
                Err(_) => {}
            }
        });
}
