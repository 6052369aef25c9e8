//! `Plugin`: the manifest and the route → handler table, declared together so they cannot drift.

use crate::bindings::plugin_host::plugin::types as wit;
use crate::{Error, Method, Request, Response, Role};

/// A route handler: takes the request, returns a response or an error for the client.
pub type Handler = fn(&Request) -> Result<Response, Error>;

/// A plugin's manifest together with its handlers. Build it with the chained methods below; the
/// modifiers (`summary`, `role`, `view`) apply to the route added last.
pub struct Plugin {
    pub(crate) manifest: wit::Manifest,
    /// One per route, in the same order.
    pub(crate) handlers: Vec<Handler>,
}

impl Plugin {
    /// A plugin with no routes yet. `version` must be a semantic version (use `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            manifest: wit::Manifest {
                name: name.to_owned(),
                version: version.to_owned(),
                description: description.to_owned(),
                routes: Vec::new(),
                templates: Vec::new(),
            },
            handlers: Vec::new(),
        }
    }

    /// Add a route for `method` and `path` (e.g. `/notes/{id}`), open to anonymous callers until
    /// `.role(..)` says otherwise.
    pub fn route(mut self, method: Method, path: &str, handler: Handler) -> Self {
        self.manifest.routes.push(wit::Route {
            method,
            path: path.to_owned(),
            role: Role::Anonymous,
            summary: String::new(),
            view: None,
        });
        self.handlers.push(handler);
        self
    }

    /// `route(Method::Get, ..)`.
    pub fn get(self, path: &str, handler: Handler) -> Self {
        self.route(Method::Get, path, handler)
    }

    /// `route(Method::Post, ..)`.
    pub fn post(self, path: &str, handler: Handler) -> Self {
        self.route(Method::Post, path, handler)
    }

    /// `route(Method::Put, ..)`.
    pub fn put(self, path: &str, handler: Handler) -> Self {
        self.route(Method::Put, path, handler)
    }

    /// `route(Method::Patch, ..)`.
    pub fn patch(self, path: &str, handler: Handler) -> Self {
        self.route(Method::Patch, path, handler)
    }

    /// `route(Method::Delete, ..)`.
    pub fn delete(self, path: &str, handler: Handler) -> Self {
        self.route(Method::Delete, path, handler)
    }

    /// One line describing the last route, for the route catalogue.
    #[track_caller]
    pub fn summary(mut self, summary: &str) -> Self {
        self.last_route().summary = summary.to_owned();
        self
    }

    /// The least role a caller needs for the last route.
    #[track_caller]
    pub fn role(mut self, role: Role) -> Self {
        self.last_route().role = role;
        self
    }

    /// The template that renders the last route's JSON as HTML for browsers.
    #[track_caller]
    pub fn view(mut self, template: &str) -> Self {
        self.last_route().view = Some(template.to_owned());
        self
    }

    /// Ship a template with the plugin (operators can override it with a file of their own).
    pub fn template(mut self, name: &str, source: &str) -> Self {
        self.manifest.templates.push(wit::Template {
            name: name.to_owned(),
            source: source.to_owned(),
        });
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// The plugin's one-line description.
    pub fn description(&self) -> &str {
        &self.manifest.description
    }

    /// The routes in the order they were added, as the host will read them (method, path pattern,
    /// role, summary, view), for tests that check the manifest.
    ///
    /// ```
    /// use plugin_sdk::prelude::*;
    ///
    /// fn ok(_: &Request) -> Result {
    ///     Ok(Response::empty())
    /// }
    /// let plugin = Plugin::new("p", "0.1.0", "a plugin").delete("/p/{id}", ok).role(Role::Admin);
    /// let route = &plugin.routes()[0];
    /// assert_eq!((route.method, route.path.as_str()), (Method::Delete, "/p/{id}"));
    /// assert_eq!(route.role, Role::Admin);
    /// ```
    pub fn routes(&self) -> &[crate::Route] {
        &self.manifest.routes
    }

    #[track_caller]
    fn last_route(&mut self) -> &mut wit::Route {
        self.manifest
            .routes
            .last_mut()
            .expect("summary/role/view must follow a route")
    }

    /// The manifest, for the host's `describe` call (moved out: `describe` has an instance of its own).
    #[doc(hidden)]
    pub fn into_manifest(self) -> wit::Manifest {
        self.manifest
    }

    /// Run the handler of the route the host matched.
    #[doc(hidden)]
    pub fn dispatch(&self, request: wit::Request) -> Result<wit::Response, wit::Error> {
        let index = self
            .manifest
            .routes
            .iter()
            .position(|r| r.method == request.method && r.path == request.route);
        let Some(index) = index else {
            return Err(Error::new(404, format!("no handler for route {}", request.route)).into());
        };
        let request = Request::from(request);
        match (self.handlers[index])(&request) {
            Ok(response) => Ok(response.into()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Route panics to the host's log: a panic aborts the instance (`panic = "abort"`), so the hook logs
/// `plugin panicked: <message> at <file>:<line>` first and the host's log says why.
/// [`plugin!`](crate::plugin) installs it on both entry points right before it builds the plugin
/// (once per instance), so a panic in the builder is logged too.
#[doc(hidden)]
pub fn __install_panic_hook() {
    std::panic::set_hook(Box::new(log_panic));
}

fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload_as_str()
        .unwrap_or("(a panic without a message)");
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    // Not behind `log::enabled`: the host keeps a plugin's last error line for its own report (why
    // `describe` failed) even where its log hides errors.
    crate::log::log(
        crate::log::Level::Error,
        &format!("plugin panicked: {message}{at}"),
    );
}
