//! `Plugin::call` (native targets only): route a request made with `Request::builder()` the way the host
//! does (host/src/generation/routes.rs) and run its handler, so unit tests exercise the manifest and the
//! handlers together.

use crate::bindings::plugin_host::plugin::types as wit;
use crate::{Error, Method, Plugin, Request, Response};

impl Plugin {
    /// Run `request` through this plugin as the host would: find the route, fill in the path
    /// parameters, call the handler.
    ///
    /// With a [`route`](crate::RequestBuilder::route) set, the handler is the one declared for the
    /// request's method and that pattern, and the parameters are the ones the builder gave.
    /// Otherwise the path is matched against every pattern like the host does: by segment,
    /// percent-decoded, a literal segment beating a `{param}` at the first place two patterns differ,
    /// GET answering HEAD when no route has HEAD. No matching pattern is a 404, a pattern without the
    /// method a 405.
    ///
    /// Roles are not checked: the host refuses callers below a route's role before the plugin runs
    /// (check the manifest with [`routes`](Self::routes)).
    ///
    /// ```
    /// use plugin_sdk::RequestBuilder;
    /// use plugin_sdk::prelude::*;
    ///
    /// fn show(req: &Request) -> Result {
    ///     let id: u32 = req.param("id")?;
    ///     Response::json(&json!({ "id": id }))
    /// }
    /// let plugin = Plugin::new("items", "0.1.0", "items").get("/items/{id}", show);
    ///
    /// let shown = plugin.call(Request::builder().get("/items/7").build())?;
    /// assert_eq!(shown.body_json::<Value>()?, json!({ "id": 7 }));
    /// let refused = plugin.call(Request::builder().get("/items/x").build()).unwrap_err();
    /// assert_eq!(refused.status(), 400);
    /// let status = |req: RequestBuilder| plugin.call(req.build()).unwrap_err().status();
    /// assert_eq!(status(Request::builder().get("/nothing")), 404);
    /// assert_eq!(status(Request::builder().delete("/items/7")), 405);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn call(&self, mut request: Request) -> Result<Response, Error> {
        let index = if request.inner.route.is_empty() {
            self.match_path(&mut request.inner)?
        } else {
            self.match_route(&request.inner)?
        };
        (self.handlers[index])(&request)
    }

    /// The route declared for the request's method and pattern.
    fn match_route(&self, request: &wit::Request) -> Result<usize, Error> {
        let routes = &self.manifest.routes;
        let same: Vec<usize> = (0..routes.len())
            .filter(|&i| routes[i].path == request.route)
            .collect();
        if same.is_empty() {
            return Err(Error::not_found(format!(
                "plugin {} has no route {}",
                self.manifest.name, request.route
            )));
        }
        self.pick(&same, request.method, &request.route)
    }

    /// The route whose pattern matches the request's path; fills in the request's route and params.
    fn match_path(&self, request: &mut wit::Request) -> Result<usize, Error> {
        let segments = split_path(&request.path).ok_or_else(|| {
            Error::bad_request(format!(
                "request path {:?} is not absolute, or a segment is not UTF-8",
                request.path
            ))
        })?;
        let routes = &self.manifest.routes;
        let mut matching: Vec<(Vec<bool>, usize)> = (0..routes.len())
            .filter_map(|i| Some((shape(&routes[i].path, &segments)?, i)))
            .collect();
        if matching.is_empty() {
            return Err(Error::not_found(format!(
                "no route of plugin {} matches {}",
                self.manifest.name, request.path
            )));
        }
        // Most specific first (a literal before a parameter at the first difference), then in order.
        matching.sort();
        let order: Vec<usize> = matching.into_iter().map(|(_, i)| i).collect();
        let index = self.pick(&order, request.method, &request.path)?;
        request.route = routes[index].path.clone();
        request.params = params(&routes[index].path, &segments);
        Ok(index)
    }

    /// The first of `candidates` declared for `method`, GET standing in for HEAD; else a 405 that
    /// names the methods `target` allows.
    fn pick(&self, candidates: &[usize], method: Method, target: &str) -> Result<usize, Error> {
        let routes = &self.manifest.routes;
        let with = |m: Method| candidates.iter().copied().find(|&i| routes[i].method == m);
        let found = match with(method) {
            None if method == Method::Head => with(Method::Get),
            found => found,
        };
        found.ok_or_else(|| {
            let allowed = self.allowed(candidates).join(", ");
            let method = method.as_str();
            Error::new(
                405,
                format!("{method} is not allowed on {target}; allowed: {allowed}"),
            )
        })
    }

    /// The methods of `candidates` in the order they were declared, and HEAD when GET is among them
    /// (what the host puts in `Allow`).
    fn allowed(&self, candidates: &[usize]) -> Vec<&'static str> {
        let mut indices = candidates.to_vec();
        indices.sort_unstable();
        let mut allowed = Vec::new();
        for i in indices {
            let method = self.manifest.routes[i].method;
            if !allowed.contains(&method) {
                allowed.push(method);
            }
        }
        if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
            allowed.push(Method::Head);
        }
        allowed.iter().map(Method::as_str).collect()
    }
}

/// The segments of a pattern (`/` has none).
fn pattern_segments(pattern: &str) -> impl Iterator<Item = &str> {
    let rest = pattern.strip_prefix('/').unwrap_or(pattern);
    rest.split('/').filter(move |_| !rest.is_empty())
}

/// The name of a `{name}` segment.
fn param_name(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

/// If `pattern` matches `path`, which of its segments are parameters (the sort key for specificity).
fn shape(pattern: &str, path: &[String]) -> Option<Vec<bool>> {
    let mut shape = Vec::with_capacity(path.len());
    let mut segments = pattern_segments(pattern);
    for actual in path {
        let segment = segments.next()?;
        let is_param = param_name(segment).is_some();
        if !is_param && segment != actual {
            return None;
        }
        shape.push(is_param);
    }
    segments.next().is_none().then_some(shape)
}

/// The values of `pattern`'s parameters in `path` (which it matches).
fn params(pattern: &str, path: &[String]) -> Vec<(String, String)> {
    pattern_segments(pattern)
        .zip(path)
        .filter_map(|(segment, value)| Some((param_name(segment)?.to_owned(), value.clone())))
        .collect()
}

/// A request path split into percent-decoded segments, as the host splits it; `None` if it is not
/// absolute or a segment does not decode to UTF-8.
fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/').map(percent_decode).collect()
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
