//! Path patterns (`/notes/{id}`) and the route table a generation builds from all plugin manifests.
//!
//! Matching is by path segment. When several patterns match a path, the most specific wins: comparing
//! segment by segment, a literal beats a parameter at the first place they differ (so `/notes/new`
//! beats `/notes/{id}`). Among the patterns that match, the most specific one that has the request's
//! method answers; if none has it the answer is 405 with the union of their methods in `Allow`.
//! Two routes with the same method and the same shape (parameter names aside) are a conflict.

use std::fmt;

use crate::bindings::types::Method;

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed path pattern such as `/hello/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    raw: String,
    segments: Vec<Segment>,
}

/// Why a path pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathPattern {
    /// Parse a pattern: it starts with `/`, has no empty segments and no trailing `/` (except the root
    /// pattern `/` itself), and each segment is either literal URL characters or a whole `{name}`.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let fail = |reason: String| PatternError {
            pattern: raw.to_owned(),
            reason,
        };
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(fail("must start with '/'".into()));
        };
        if raw.len() > 1024 {
            return Err(fail("longer than 1024 bytes".into()));
        }
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for seg in rest.split('/') {
                if seg.is_empty() {
                    return Err(fail("empty segment (double or trailing '/')".into()));
                }
                if let Some(inner) = seg.strip_prefix('{') {
                    let name = inner.strip_suffix('}').ok_or_else(|| {
                        fail(format!("segment {seg:?} opens '{{' but does not close it"))
                    })?;
                    if !is_param_name(name) {
                        return Err(fail(format!(
                            "parameter name {name:?} must be letters, digits and '_', not starting with a digit"
                        )));
                    }
                    if segments
                        .iter()
                        .any(|s| s == &Segment::Param(name.to_owned()))
                    {
                        return Err(fail(format!("parameter {{{name}}} appears twice")));
                    }
                    segments.push(Segment::Param(name.to_owned()));
                } else if let Some(bad) = seg.chars().find(|&c| !is_literal_char(c)) {
                    return Err(fail(format!(
                        "character {bad:?} is not allowed in segment {seg:?}"
                    )));
                } else {
                    segments.push(Segment::Literal(seg.to_owned()));
                }
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The pattern with parameter names erased: equal shapes match exactly the same paths.
    pub fn shape(&self) -> Vec<Option<&str>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => Some(l.as_str()),
                Segment::Param(_) => None,
            })
            .collect()
    }

    /// Parameter values if `path` (already split and percent-decoded) matches.
    fn captures(&self, path: &[String]) -> Option<Vec<(String, String)>> {
        if path.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, value) in self.segments.iter().zip(path) {
            match seg {
                Segment::Literal(l) if l == value => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if value.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), value.clone())),
            }
        }
        Some(params)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Split a request path into percent-decoded segments. `None` if it is not an absolute path or a segment
/// does not decode to UTF-8.
pub fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|seg| {
            percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
        .collect()
}

/// What a route leads to: which plugin, and which of its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub plugin: usize,
    pub route: usize,
}

#[derive(Debug)]
struct Entry {
    pattern: PathPattern,
    method: Method,
    target: Target,
}

/// Every route of a generation.
#[derive(Debug, Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
}

/// A successful lookup.
#[derive(Debug, PartialEq, Eq)]
pub struct Match<'a> {
    pub target: Target,
    pub pattern: &'a PathPattern,
    pub params: Vec<(String, String)>,
}

/// Why a lookup failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No pattern matches the path.
    NotFound,
    /// Patterns match, but none for this method; these are the methods they do have.
    MethodNotAllowed(Vec<Method>),
}

/// Two routes that cannot both be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    pub existing: Target,
    pub new: Target,
}

/// Order two matching patterns: `Less` when `a` is more specific than `b`.
fn specificity(a: &PathPattern, b: &PathPattern) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (x, y) in a.segments.iter().zip(&b.segments) {
        match (x, y) {
            (Segment::Literal(_), Segment::Param(_)) => return Ordering::Less,
            (Segment::Param(_), Segment::Literal(_)) => return Ordering::Greater,
            _ => {}
        }
    }
    Ordering::Equal
}

impl RouteTable {
    /// Add a route; a route with the same method and shape already present is a conflict.
    pub fn insert(
        &mut self,
        method: Method,
        pattern: PathPattern,
        target: Target,
    ) -> Result<(), Conflict> {
        if let Some(existing) = self
            .entries
            .iter()
            .find(|e| e.method == method && e.pattern.shape() == pattern.shape())
        {
            return Err(Conflict {
                existing: existing.target,
                new: target,
            });
        }
        self.entries.push(Entry {
            pattern,
            method,
            target,
        });
        Ok(())
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Find the route for `method` on the already-split `path`. A HEAD request falls back to the GET
    /// route when there is no HEAD route (the server drops the body).
    pub fn lookup(&self, method: Option<Method>, path: &[String]) -> Result<Match<'_>, Miss> {
        let mut best: Option<(&Entry, Vec<(String, String)>)> = None;
        let mut best_get: Option<(&Entry, Vec<(String, String)>)> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for entry in &self.entries {
            let Some(params) = entry.pattern.captures(path) else {
                continue;
            };
            if !allowed.contains(&entry.method) {
                allowed.push(entry.method);
            }
            let slot = if Some(entry.method) == method {
                &mut best
            } else if method == Some(Method::Head) && entry.method == Method::Get {
                &mut best_get
            } else {
                continue;
            };
            let better = match slot {
                Some((current, _)) => specificity(&entry.pattern, &current.pattern).is_lt(),
                None => true,
            };
            if better {
                *slot = Some((entry, params));
            }
        }
        match best.or(best_get) {
            Some((entry, params)) => Ok(Match {
                target: entry.target,
                pattern: &entry.pattern,
                params,
            }),
            None if allowed.is_empty() => Err(Miss::NotFound),
            None => {
                if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
                    allowed.push(Method::Head);
                }
                Err(Miss::MethodNotAllowed(allowed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    fn path(s: &str) -> Vec<String> {
        split_path(s).unwrap()
    }

    fn t(plugin: usize, route: usize) -> Target {
        Target { plugin, route }
    }

    #[test]
    fn parses_literals_and_params() {
        let pat = p("/notes/{id}/tags");
        assert_eq!(pat.shape(), vec![Some("notes"), None, Some("tags")]);
        assert_eq!(p("/").shape(), Vec::<Option<&str>>::new());
    }

    #[test]
    fn rejects_bad_patterns() {
        for (bad, why) in [
            ("hello", "start with '/'"),
            ("/items/{id", "does not close"),
            ("/a//b", "empty segment"),
            ("/a/", "empty segment"),
            ("/a/{1x}", "parameter name"),
            ("/a/{}", "parameter name"),
            ("/a/{x}/{x}", "appears twice"),
            ("/a b", "not allowed"),
            ("/a?b", "not allowed"),
            ("/a{x}", "not allowed"),
        ] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn matches_and_decodes_params() {
        let mut table = RouteTable::default();
        table
            .insert(Method::Get, p("/hello/{name}"), t(0, 0))
            .unwrap();
        let m = table
            .lookup(Some(Method::Get), &path("/hello/w%C3%B6rld%2F1"))
            .unwrap();
        assert_eq!(m.params, vec![("name".to_owned(), "wörld/1".to_owned())]);
        assert_eq!(m.target, t(0, 0));
        assert_eq!(
            table.lookup(Some(Method::Get), &path("/hello")),
            Err(Miss::NotFound)
        );
        assert_eq!(
            table.lookup(Some(Method::Get), &path("/hello/")),
            Err(Miss::NotFound)
        );
        assert_eq!(
            table.lookup(Some(Method::Get), &path("/hello/a/b")),
            Err(Miss::NotFound)
        );
    }

    #[test]
    fn literal_beats_param() {
        let mut table = RouteTable::default();
        table
            .insert(Method::Get, p("/notes/{id}"), t(0, 0))
            .unwrap();
        table.insert(Method::Get, p("/notes/new"), t(1, 0)).unwrap();
        table.insert(Method::Get, p("/{any}/new"), t(2, 0)).unwrap();
        assert_eq!(
            table
                .lookup(Some(Method::Get), &path("/notes/new"))
                .unwrap()
                .target,
            t(1, 0)
        );
        assert_eq!(
            table
                .lookup(Some(Method::Get), &path("/notes/7"))
                .unwrap()
                .target,
            t(0, 0)
        );
        assert_eq!(
            table
                .lookup(Some(Method::Get), &path("/x/new"))
                .unwrap()
                .target,
            t(2, 0)
        );
    }

    #[test]
    fn method_not_allowed_lists_methods_of_matching_routes() {
        let mut table = RouteTable::default();
        table
            .insert(Method::Get, p("/notes/{id}"), t(0, 0))
            .unwrap();
        table
            .insert(Method::Delete, p("/notes/{id}"), t(0, 1))
            .unwrap();
        table
            .insert(Method::Post, p("/notes/new"), t(1, 0))
            .unwrap();
        // The literal route lacks GET, so the parameter route answers.
        assert_eq!(
            table
                .lookup(Some(Method::Get), &path("/notes/new"))
                .unwrap()
                .target,
            t(0, 0)
        );
        match table.lookup(Some(Method::Put), &path("/notes/1")) {
            Err(Miss::MethodNotAllowed(m)) => {
                assert_eq!(m, vec![Method::Get, Method::Delete, Method::Head]);
            }
            other => panic!("expected 405, got {other:?}"),
        }
        // A method the contract does not know (e.g. TRACE) is a 405 on a known path.
        assert!(matches!(
            table.lookup(None, &path("/notes/1")),
            Err(Miss::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn head_falls_back_to_get() {
        let mut table = RouteTable::default();
        table.insert(Method::Get, p("/a"), t(0, 0)).unwrap();
        assert_eq!(
            table
                .lookup(Some(Method::Head), &path("/a"))
                .unwrap()
                .target,
            t(0, 0)
        );
    }

    #[test]
    fn same_method_and_shape_conflict() {
        let mut table = RouteTable::default();
        table
            .insert(Method::Get, p("/hello/{name}"), t(0, 0))
            .unwrap();
        // Another method on the same shape is fine.
        table
            .insert(Method::Post, p("/hello/{who}"), t(1, 0))
            .unwrap();
        let conflict = table
            .insert(Method::Get, p("/hello/{who}"), t(1, 1))
            .unwrap_err();
        assert_eq!(
            conflict,
            Conflict {
                existing: t(0, 0),
                new: t(1, 1)
            }
        );
    }
}
