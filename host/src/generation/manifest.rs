//! The host's view of a plugin manifest: the WIT `manifest` record, checked once when the plugin is
//! loaded (name, semantic version, how many routes and templates, path patterns, duplicate routes,
//! reserved paths, views). Every check is linear in the manifest's size, and the counts are capped
//! before anything else is looked at, so refusing even a huge manifest is quick.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::bindings::types::{self as wit, Method, Role};
use crate::generation::routes::{PathPattern, PatternError};
use crate::generation::views::{HOST_TEMPLATE_FOLDERS, MAX_TEMPLATE_BYTES};

/// Paths the host serves itself; a plugin route here could never be reached.
const RESERVED_EXACT: &[&str] = &["/healthz", "/readyz", "/metrics", "/api"];
/// Path prefixes (first segment) the host owns.
const RESERVED_PREFIXES: &[&str] = &["admin"];

/// Most routes one plugin may declare. The largest plugin shipped here has 12; a REST API of a
/// thousand operations belongs in several plugins. It bounds what one plugin adds to a reload (parsing,
/// the route table, the catalogue page) and to `GET /api`.
pub const MAX_ROUTES: usize = 1_000;

/// Most templates one plugin may ship (each at most `MAX_TEMPLATE_BYTES`): its views and their partials.
/// Every template is parsed on every reload, so this bounds that work: 100 × 256 KiB at most.
pub const MAX_TEMPLATES: usize = 100;

/// A validated manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub routes: Vec<Route>,
    /// Templates the plugin ships: name → source.
    #[serde(skip)]
    pub templates: Vec<(String, String)>,
}

/// A validated route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    #[serde(serialize_with = "ser_method")]
    pub method: Method,
    #[serde(serialize_with = "ser_pattern")]
    pub path: PathPattern,
    #[serde(serialize_with = "ser_role")]
    pub role: Role,
    pub summary: String,
    pub view: Option<String>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "invalid plugin name {0:?}: use 1-64 lowercase letters, digits and '-', starting with a letter"
    )]
    Name(String),
    #[error("invalid version {version:?}: not a semantic version ({reason})")]
    Version { version: String, reason: String },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("route {method} {path} is declared twice (as {first:?} and {second:?})")]
    DuplicateRoute {
        method: &'static str,
        path: String,
        first: String,
        second: String,
    },
    #[error("route {method} {path} is in a path the host reserves for itself")]
    Reserved { method: &'static str, path: String },
    #[error("route {method} {path} names an empty view")]
    EmptyView { method: &'static str, path: String },
    #[error(
        "invalid template name {0:?}: use a relative path of lowercase letters, digits, '-', '_' and '.' ending in .html"
    )]
    TemplateName(String),
    #[error("template {0:?} is declared twice")]
    DuplicateTemplate(String),
    #[error("template {name:?} is {size} bytes, over the limit of {limit}")]
    TemplateTooLarge {
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("plugin name {0:?} is reserved for the host's templates")]
    ReservedName(String),
    #[error("declares {count} routes, over the limit of {limit} per plugin")]
    TooManyRoutes { count: usize, limit: usize },
    #[error("ships {count} templates, over the limit of {limit} per plugin")]
    TooManyTemplates { count: usize, limit: usize },
}

fn ser_method<S: serde::Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

fn ser_role<S: serde::Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn ser_pattern<S: serde::Serializer>(p: &PathPattern, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A template name: `/`-separated segments of `[a-z0-9_.-]`, none empty or dot-only, ending in `.html`.
fn valid_template_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".html")
        && name.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.chars().all(|c| c == '.')
                && segment.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                })
        })
}

fn is_reserved(path: &PathPattern) -> bool {
    let shape = path.shape();
    RESERVED_EXACT.contains(&path.as_str())
        || matches!(shape.first(), Some(Some(first)) if RESERVED_PREFIXES.contains(first))
}

impl Manifest {
    /// Check a manifest returned by a plugin's `describe`.
    pub fn validate(raw: wit::Manifest) -> Result<Self, ManifestError> {
        if !valid_name(&raw.name) {
            return Err(ManifestError::Name(raw.name));
        }
        if HOST_TEMPLATE_FOLDERS.contains(&raw.name.as_str()) {
            return Err(ManifestError::ReservedName(raw.name));
        }
        if let Err(e) = semver::Version::parse(&raw.version) {
            return Err(ManifestError::Version {
                version: raw.version,
                reason: e.to_string(),
            });
        }
        check_counts(&raw)?;
        Ok(Self {
            routes: validate_routes(raw.routes)?,
            templates: validate_templates(raw.templates)?,
            name: raw.name,
            version: raw.version,
            description: raw.description,
        })
    }
}

/// Refuse a manifest over [`MAX_ROUTES`] or [`MAX_TEMPLATES`] before looking at any of its entries.
fn check_counts(raw: &wit::Manifest) -> Result<(), ManifestError> {
    if raw.routes.len() > MAX_ROUTES {
        return Err(ManifestError::TooManyRoutes {
            count: raw.routes.len(),
            limit: MAX_ROUTES,
        });
    }
    if raw.templates.len() > MAX_TEMPLATES {
        return Err(ManifestError::TooManyTemplates {
            count: raw.templates.len(),
            limit: MAX_TEMPLATES,
        });
    }
    Ok(())
}

/// Parse and check each route; a duplicate (same method, same shape) is found through a map from
/// (method, shape) to the first route's index, so the check is linear.
fn validate_routes(raw: Vec<wit::Route>) -> Result<Vec<Route>, ManifestError> {
    let mut routes: Vec<Route> = Vec::with_capacity(raw.len());
    let mut seen: HashMap<(&'static str, Vec<Option<String>>), usize> =
        HashMap::with_capacity(raw.len());
    for r in raw {
        let path = PathPattern::parse(&r.path)?;
        let method = r.method.as_str();
        if is_reserved(&path) {
            return Err(ManifestError::Reserved {
                method,
                path: r.path,
            });
        }
        if r.view.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ManifestError::EmptyView {
                method,
                path: r.path,
            });
        }
        if let Some(view) = r.view.as_deref().filter(|v| !valid_template_name(v)) {
            return Err(ManifestError::TemplateName(view.to_owned()));
        }
        let shape = path.shape().iter().map(|s| s.map(str::to_owned)).collect();
        match seen.entry((method, shape)) {
            Entry::Occupied(first) => {
                return Err(ManifestError::DuplicateRoute {
                    method,
                    path: r.path.clone(),
                    first: routes[*first.get()].path.to_string(),
                    second: r.path,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(routes.len());
            }
        }
        routes.push(Route {
            method: r.method,
            path,
            role: r.role,
            summary: r.summary,
            view: r.view,
        });
    }
    Ok(routes)
}

/// Check each template's name and size, and that no name comes twice (a set: linear).
fn validate_templates(raw: Vec<wit::Template>) -> Result<Vec<(String, String)>, ManifestError> {
    let mut names: HashSet<String> = HashSet::with_capacity(raw.len());
    let mut templates: Vec<(String, String)> = Vec::with_capacity(raw.len());
    for t in raw {
        if !valid_template_name(&t.name) {
            return Err(ManifestError::TemplateName(t.name));
        }
        if !names.insert(t.name.clone()) {
            return Err(ManifestError::DuplicateTemplate(t.name));
        }
        if t.source.len() > MAX_TEMPLATE_BYTES {
            return Err(ManifestError::TemplateTooLarge {
                name: t.name,
                size: t.source.len(),
                limit: MAX_TEMPLATE_BYTES,
            });
        }
        templates.push((t.name, t.source));
    }
    Ok(templates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str) -> wit::Route {
        wit::Route {
            method,
            path: path.to_owned(),
            role: Role::Anonymous,
            summary: String::new(),
            view: None,
        }
    }

    fn manifest(name: &str, version: &str, routes: Vec<wit::Route>) -> wit::Manifest {
        wit::Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            routes,
            templates: Vec::new(),
        }
    }

    #[test]
    fn accepts_a_good_manifest() {
        let m = Manifest::validate(manifest(
            "notes",
            "1.2.3-beta.1",
            vec![
                route(Method::Get, "/notes"),
                route(Method::Get, "/notes/{id}"),
            ],
        ))
        .unwrap();
        assert_eq!(m.routes.len(), 2);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["routes"][1]["path"], "/notes/{id}");
        assert_eq!(json["routes"][1]["method"], "GET");
        assert_eq!(json["routes"][1]["role"], "anonymous");
    }

    #[test]
    fn rejects_bad_names_and_versions() {
        for name in ["", "Hello", "9lives", "a_b", &"x".repeat(65)] {
            let err = Manifest::validate(manifest(name, "1.0.0", vec![])).unwrap_err();
            assert!(matches!(err, ManifestError::Name(_)), "{name}: {err}");
        }
        let err = Manifest::validate(manifest("a", "1.0", vec![])).unwrap_err();
        assert!(err.to_string().contains("semantic version"), "{err}");
    }

    #[test]
    fn rejects_duplicate_routes_by_shape() {
        let err = Manifest::validate(manifest(
            "dup",
            "0.1.0",
            vec![
                route(Method::Get, "/dup/{a}"),
                route(Method::Get, "/dup/{b}"),
            ],
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"route GET /dup/{b} is declared twice (as "/dup/{a}" and "/dup/{b}")"#
        );
        // Same path, other method: fine.
        Manifest::validate(manifest(
            "ok",
            "0.1.0",
            vec![
                route(Method::Get, "/x/{a}"),
                route(Method::Delete, "/x/{a}"),
            ],
        ))
        .unwrap();
    }

    fn many_routes(n: usize) -> Vec<wit::Route> {
        (0..n)
            .map(|i| route(Method::Get, &format!("/many/r{i}/{{id}}")))
            .collect()
    }

    #[test]
    fn route_and_template_counts_are_capped() {
        let m = Manifest::validate(manifest("many", "0.1.0", many_routes(MAX_ROUTES))).unwrap();
        assert_eq!(m.routes.len(), MAX_ROUTES);

        let err = Manifest::validate(manifest("many", "0.1.0", many_routes(20_000))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "declares 20000 routes, over the limit of 1000 per plugin"
        );

        let mut m = manifest("views", "0.1.0", vec![]);
        m.templates = (0..=MAX_TEMPLATES)
            .map(|i| wit::Template {
                name: format!("t{i}.html"),
                source: String::new(),
            })
            .collect();
        let err = Manifest::validate(m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ships 101 templates, over the limit of 100 per plugin"
        );
    }

    #[test]
    fn a_duplicate_is_found_at_the_end_of_a_full_manifest() {
        let mut routes = many_routes(MAX_ROUTES - 1);
        routes.push(route(Method::Get, "/many/r0/{other}"));
        let err = Manifest::validate(manifest("many", "0.1.0", routes)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"route GET /many/r0/{other} is declared twice (as "/many/r0/{id}" and "/many/r0/{other}")"#
        );
    }

    #[test]
    fn rejects_bad_patterns_and_reserved_paths() {
        let err = Manifest::validate(manifest(
            "a",
            "0.1.0",
            vec![route(Method::Get, "/items/{id")],
        ))
        .unwrap_err();
        assert!(err.to_string().contains("invalid path pattern"), "{err}");
        for reserved in ["/healthz", "/admin", "/admin/x/{y}", "/api"] {
            let err =
                Manifest::validate(manifest("a", "0.1.0", vec![route(Method::Get, reserved)]))
                    .unwrap_err();
            assert!(
                matches!(err, ManifestError::Reserved { .. }),
                "{reserved}: {err}"
            );
        }
        // A parameter first segment may shadow nothing: host routes win, so it is allowed.
        Manifest::validate(manifest("a", "0.1.0", vec![route(Method::Get, "/{page}")])).unwrap();
        Manifest::validate(manifest(
            "a",
            "0.1.0",
            vec![route(Method::Get, "/api/v1/x")],
        ))
        .unwrap();
    }

    #[test]
    fn template_names_are_relative_html_paths() {
        for good in ["a.html", "notes/list.html", "x_1-2.v2.html"] {
            assert!(valid_template_name(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a.txt",
            "/a.html",
            "../a.html",
            "a//b.html",
            "A.html",
            "a b.html",
            "./a.html",
        ] {
            assert!(!valid_template_name(bad), "{bad}");
        }
        let mut m = manifest("a", "0.1.0", vec![]);
        m.templates = vec![
            wit::Template {
                name: "v.html".into(),
                source: "x".into(),
            },
            wit::Template {
                name: "v.html".into(),
                source: "y".into(),
            },
        ];
        assert!(matches!(
            Manifest::validate(m),
            Err(ManifestError::DuplicateTemplate(_))
        ));
        let mut m = manifest("a", "0.1.0", vec![route(Method::Get, "/a")]);
        m.routes[0].view = Some("../escape.html".into());
        assert!(matches!(
            Manifest::validate(m),
            Err(ManifestError::TemplateName(_))
        ));
        let err = Manifest::validate(manifest("errors", "0.1.0", vec![])).unwrap_err();
        assert!(matches!(err, ManifestError::ReservedName(_)), "{err}");
    }
}
