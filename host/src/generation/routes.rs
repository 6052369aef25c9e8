//! Path patterns (`/notes/{id}`) and the route table a generation builds from all plugin manifests.
//!
//! Matching is by path segment. When several patterns match a path, the most specific wins: comparing
//! segment by segment, a literal beats a parameter at the first place they differ (so `/notes/new`
//! beats `/notes/{id}`). Among the patterns that match, the most specific one that has the request's
//! method answers; if none has it the answer is 405 with the union of their methods in `Allow`.
//! Two routes with the same method and the same shape (parameter names aside) are a conflict.
//!
//! The table is a trie of path segments walked depth-first, literal child before parameter child, so
//! the first pattern found is the most specific and a lookup's cost does not grow with the number of
//! routes.

use std::collections::{HashMap, HashSet};
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
        // Names seen so far: a set, so a pattern of many parameters is checked in linear time.
        let mut names = HashSet::new();
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
                    if !names.insert(name) {
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

    /// The names of the pattern's parameters, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
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

    /// Parameter values from `path`, which this pattern is known to match.
    fn params(&self, path: &[String]) -> Vec<(String, String)> {
        self.segments
            .iter()
            .zip(path)
            .filter_map(|(seg, value)| match seg {
                Segment::Param(name) => Some((name.clone(), value.clone())),
                Segment::Literal(_) => None,
            })
            .collect()
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

/// One place in the route trie: the segments that may come next, and the routes whose pattern ends here.
#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    param: Option<Box<Node>>,
    ends: Vec<usize>,
}

impl Node {
    /// The node where `pattern`'s shape ends, created as needed.
    fn descend(&mut self, pattern: &PathPattern) -> &mut Node {
        pattern
            .segments
            .iter()
            .fold(self, |node, segment| match segment {
                Segment::Literal(l) => node.literals.entry(l.clone()).or_default(),
                Segment::Param(_) => node.param.get_or_insert_default(),
            })
    }

    /// Offer `visit` every node where a pattern matching `path` ends, most specific first (depth-first,
    /// the literal child before the parameter child), until it returns something.
    fn walk<T>(&self, path: &[String], visit: &mut impl FnMut(&Node) -> Option<T>) -> Option<T> {
        let Some((segment, rest)) = path.split_first() else {
            return visit(self);
        };
        if let Some(found) = self
            .literals
            .get(segment.as_str())
            .and_then(|child| child.walk(rest, visit))
        {
            return Some(found);
        }
        match &self.param {
            Some(child) if !segment.is_empty() => child.walk(rest, visit),
            _ => None,
        }
    }
}

/// Every route of a generation, indexed by path segment so that a lookup costs the same however many
/// routes there are.
#[derive(Debug, Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
    root: Node,
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

impl RouteTable {
    /// Add a route; a route with the same method and shape already present is a conflict.
    pub fn insert(
        &mut self,
        method: Method,
        pattern: PathPattern,
        target: Target,
    ) -> Result<(), Conflict> {
        let node = self.root.descend(&pattern);
        if let Some(&existing) = node
            .ends
            .iter()
            .find(|&&i| self.entries[i].method == method)
        {
            return Err(Conflict {
                existing: self.entries[existing].target,
                new: target,
            });
        }
        node.ends.push(self.entries.len());
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
        let mut matched = false;
        let found = self.root.walk(path, &mut |node| {
            matched |= !node.ends.is_empty();
            self.route_at(node, method?)
        });
        let found = found.or_else(|| match method {
            Some(Method::Head) => self.most_specific(Method::Get, path),
            _ => None,
        });
        match found {
            Some(entry) => Ok(Match {
                target: entry.target,
                pattern: &entry.pattern,
                params: entry.pattern.params(path),
            }),
            None if matched => Err(Miss::MethodNotAllowed(self.allowed(path))),
            None => Err(Miss::NotFound),
        }
    }

    /// The route for `method` among those whose pattern ends at `node`.
    fn route_at(&self, node: &Node, method: Method) -> Option<&Entry> {
        node.ends
            .iter()
            .map(|&i| &self.entries[i])
            .find(|entry| entry.method == method)
    }

    /// The most specific route for `method` whose pattern matches `path`.
    fn most_specific(&self, method: Method, path: &[String]) -> Option<&Entry> {
        self.root
            .walk(path, &mut |node| self.route_at(node, method))
    }

    /// The methods of every pattern matching `path`, in the order the routes were added, and HEAD when
    /// GET is among them.
    fn allowed(&self, path: &[String]) -> Vec<Method> {
        let mut matching = Vec::new();
        self.root.walk(path, &mut |node| {
            matching.extend_from_slice(&node.ends);
            None::<()>
        });
        matching.sort_unstable();
        let mut allowed: Vec<Method> = Vec::new();
        for method in matching.into_iter().map(|i| self.entries[i].method) {
            if !allowed.contains(&method) {
                allowed.push(method);
            }
        }
        if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
            allowed.push(Method::Head);
        }
        allowed
    }
}

/// A reference for tests: the route table as a plain scan.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;

    /// The table as a linear scan, the way it was before the trie: the reference the trie must agree with
    /// (`tests::matches_reference`, and `fuzz::route_table` on arbitrary tables).
    #[derive(Default)]
    pub(crate) struct Linear(pub(crate) Vec<(PathPattern, Method, Target)>);

    pub(crate) type Params = Vec<(String, String)>;
    pub(crate) type Found = Result<(Target, String, Params), Miss>;

    fn captures(pattern: &PathPattern, path: &[String]) -> Option<Params> {
        if path.len() != pattern.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, value) in pattern.segments.iter().zip(path) {
            match seg {
                Segment::Literal(l) if l == value => {}
                Segment::Param(name) if !value.is_empty() => {
                    params.push((name.clone(), value.clone()))
                }
                _ => return None,
            }
        }
        Some(params)
    }

    fn more_specific(a: &PathPattern, b: &PathPattern) -> bool {
        for (x, y) in a.segments.iter().zip(&b.segments) {
            match (x, y) {
                (Segment::Literal(_), Segment::Param(_)) => return true,
                (Segment::Param(_), Segment::Literal(_)) => return false,
                _ => {}
            }
        }
        false
    }

    impl Linear {
        pub(crate) fn insert(
            &mut self,
            method: Method,
            pattern: PathPattern,
            new: Target,
        ) -> Result<(), Conflict> {
            if let Some((_, _, existing)) = self
                .0
                .iter()
                .find(|(p, m, _)| *m == method && p.shape() == pattern.shape())
            {
                return Err(Conflict {
                    existing: *existing,
                    new,
                });
            }
            self.0.push((pattern, method, new));
            Ok(())
        }

        pub(crate) fn lookup(&self, method: Option<Method>, path: &[String]) -> Found {
            let mut best: Option<(&PathPattern, Target, Params)> = None;
            let mut best_get = None;
            let mut allowed = Vec::new();
            for (pattern, m, target) in &self.0 {
                let Some(params) = captures(pattern, path) else {
                    continue;
                };
                if !allowed.contains(m) {
                    allowed.push(*m);
                }
                let slot = if Some(*m) == method {
                    &mut best
                } else if method == Some(Method::Head) && *m == Method::Get {
                    &mut best_get
                } else {
                    continue;
                };
                if slot
                    .as_ref()
                    .is_none_or(|(b, _, _)| more_specific(pattern, b))
                {
                    *slot = Some((pattern, *target, params));
                }
            }
            match best.or(best_get) {
                Some((pattern, target, params)) => {
                    Ok((target, pattern.as_str().to_owned(), params))
                }
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
}

#[cfg(test)]
mod tests {
    use super::reference::{Found, Linear};
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

    fn get(table: &RouteTable, method: Method, s: &str) -> Result<Target, Miss> {
        table.lookup(Some(method), &path(s)).map(|m| m.target)
    }

    #[test]
    fn backtracks_from_a_literal_dead_end() {
        let mut table = RouteTable::default();
        table.insert(Method::Get, p("/a/{x}/c"), t(0, 0)).unwrap();
        table.insert(Method::Get, p("/a/b/d"), t(1, 0)).unwrap();
        let m = table.lookup(Some(Method::Get), &path("/a/b/c")).unwrap();
        assert_eq!(m.target, t(0, 0));
        assert_eq!(m.pattern.as_str(), "/a/{x}/c");
        assert_eq!(m.params, vec![("x".to_owned(), "b".to_owned())]);
        assert_eq!(get(&table, Method::Get, "/a/b/d"), Ok(t(1, 0)));
    }

    #[test]
    fn backtracks_when_the_most_specific_match_lacks_the_method() {
        let mut table = RouteTable::default();
        table.insert(Method::Post, p("/a/b/{y}"), t(0, 0)).unwrap();
        table.insert(Method::Get, p("/a/{x}/c"), t(1, 0)).unwrap();
        assert_eq!(get(&table, Method::Get, "/a/b/c"), Ok(t(1, 0)));
        assert_eq!(get(&table, Method::Post, "/a/b/c"), Ok(t(0, 0)));
    }

    #[test]
    fn method_not_allowed_unites_patterns_of_every_specificity() {
        let mut table = RouteTable::default();
        table.insert(Method::Put, p("/{c}/new"), t(0, 0)).unwrap();
        table.insert(Method::Get, p("/n/{id}"), t(1, 0)).unwrap();
        table.insert(Method::Post, p("/n/new"), t(2, 0)).unwrap();
        table.insert(Method::Delete, p("/n/{id}"), t(1, 1)).unwrap();
        table.insert(Method::Patch, p("/m/new"), t(3, 0)).unwrap();
        assert_eq!(
            get(&table, Method::Options, "/n/new"),
            Err(Miss::MethodNotAllowed(vec![
                Method::Put,
                Method::Get,
                Method::Post,
                Method::Delete,
                Method::Head
            ]))
        );
        assert_eq!(
            get(&table, Method::Options, "/x/new"),
            Err(Miss::MethodNotAllowed(vec![Method::Put]))
        );
    }

    #[test]
    fn head_falls_back_to_a_less_specific_get() {
        let mut table = RouteTable::default();
        table.insert(Method::Post, p("/a/b"), t(0, 0)).unwrap();
        table.insert(Method::Get, p("/a/{x}"), t(1, 0)).unwrap();
        assert_eq!(get(&table, Method::Head, "/a/b"), Ok(t(1, 0)));
    }

    #[test]
    fn head_route_beats_a_more_specific_get() {
        let mut table = RouteTable::default();
        table.insert(Method::Get, p("/a/b"), t(0, 0)).unwrap();
        table.insert(Method::Head, p("/{x}/b"), t(1, 0)).unwrap();
        assert_eq!(get(&table, Method::Head, "/a/b"), Ok(t(1, 0)));
    }

    #[test]
    fn root_pattern_matches_only_the_root() {
        let mut table = RouteTable::default();
        table.insert(Method::Get, p("/{x}"), t(0, 0)).unwrap();
        assert_eq!(get(&table, Method::Get, "/"), Err(Miss::NotFound));
        table.insert(Method::Get, p("/"), t(1, 0)).unwrap();
        let m = table.lookup(Some(Method::Get), &path("/")).unwrap();
        assert_eq!((m.target, m.params), (t(1, 0), Vec::new()));
        assert_eq!(get(&table, Method::Get, "/a"), Ok(t(0, 0)));
        assert_eq!(get(&table, Method::Get, "//"), Err(Miss::NotFound));
        assert_eq!(
            table.insert(Method::Get, p("/"), t(2, 0)),
            Err(Conflict {
                existing: t(1, 0),
                new: t(2, 0)
            })
        );
    }

    /// xorshift64: a fixed-seed source of test cases.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
    }

    const METHODS: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    fn random_pattern(rng: &mut Rng) -> PathPattern {
        let segments: Vec<String> = (0..rng.below(5))
            .map(|i| match rng.below(5) {
                0 => format!("{{p{i}}}"),
                n => ["a", "b", "c", "d"][n - 1].to_owned(),
            })
            .collect();
        p(&format!("/{}", segments.join("/")))
    }

    fn random_path(rng: &mut Rng) -> Vec<String> {
        (0..rng.below(6))
            .map(|_| rng.pick(&["a", "b", "c", "d", "e", ""]).to_owned())
            .collect()
    }

    #[test]
    fn matches_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for size in [10, 100, 3000] {
            let mut table = RouteTable::default();
            let mut linear = Linear::default();
            for i in 0..size {
                let (method, pattern) = (rng.pick(&METHODS), random_pattern(&mut rng));
                let target = t(i, 0);
                assert_eq!(
                    table.insert(method, pattern.clone(), target),
                    linear.insert(method, pattern.clone(), target),
                    "insert {} {pattern}",
                    method.as_str()
                );
            }
            assert_eq!(table.len(), linear.0.len());
            for _ in 0..3000 {
                let path = random_path(&mut rng);
                let method = rng.pick(&METHODS);
                let method = (rng.below(8) > 0).then_some(method);
                let found: Found = table
                    .lookup(method, &path)
                    .map(|m| (m.target, m.pattern.as_str().to_owned(), m.params));
                assert_eq!(found, linear.lookup(method, &path), "{method:?} {path:?}");
            }
        }
    }
}
