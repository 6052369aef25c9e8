//! The plugin request path, as a pipeline: route the request into the current generation
//! ([`dispatch`]), then [`authorize`](Call::authorize) the caller, read the body ([`body`]), build the
//! plugin's view of the request ([`plugin_request`]), call the plugin through the generation's front
//! door, and [`answer`] — checking everything the plugin returned before it is sent. Clients that prefer
//! HTML get the route's view (or the generic data page) and error pages instead of JSON.

// Each step hands the next its input or answers the client itself, with the finished response; boxing
// that response would cost an allocation on every refusal to satisfy a size heuristic.
#![allow(clippy::result_large_err)]

pub(crate) mod answer;
mod body;
pub(crate) mod plugin_request;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tracing::field;

use crate::accounts::auth::Principal;
use crate::app::metrics::RouteLabels;
use crate::app::state::AppState;
use crate::generation::Generation;
use crate::generation::manifest::Route;
use crate::generation::plugin::LoadedPlugin;
use crate::generation::routes::{Match, Miss, split_path};
use crate::http::context::RequestId;
use crate::http::negotiate::negotiate;
use crate::http::respond::Reply;

/// Serve a request from the current generation, marked in flight on it until the response is made; the
/// response says which generation served it (`x-generation`) and that its form depends on `Accept`.
pub(crate) async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let flight = state.current().enter();
    let generation = flight.generation();
    let request_id = RequestId::of(req.extensions());
    let reply = Reply {
        format: negotiate(req.headers(), req.uri().query()),
        views: &generation.views,
        request_id: &request_id,
        generation: generation.id,
    };
    let (parts, body) = req.into_parts();
    let mut policy = None;
    let mut response = match route(generation, &reply, &parts) {
        Ok(found) => {
            let plugin = &generation.plugins[found.target.plugin];
            policy = plugin.limits.content_security_policy.clone();
            Call::new(&state, generation, &reply, &parts, &found)
                .run(found, body)
                .await
        }
        Err(refused) => refused,
    };
    let headers = response.headers_mut();
    // Whatever a plugin answered, the host's policy confines it (plugins may not set these headers).
    if let Some(policy) = policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-generation", HeaderValue::from(generation.id));
    headers.append(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// The route that serves this request, or the 404 / 405 (with `Allow`) that answers it.
fn route<'g>(
    generation: &'g Generation,
    reply: &Reply<'_>,
    parts: &Parts,
) -> Result<Match<'g>, Response> {
    let path = parts.uri.path();
    let not_found = || {
        reply.error(
            StatusCode::NOT_FOUND,
            &format!("no route for {} {path}", parts.method),
        )
    };
    let segments = split_path(path).ok_or_else(not_found)?;
    match generation.routes.lookup(
        crate::bindings::types::Method::from_http(&parts.method),
        &segments,
    ) {
        Ok(found) => Ok(found),
        Err(Miss::NotFound) => Err(not_found()),
        Err(Miss::MethodNotAllowed(allowed)) => {
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let message = format!(
                "method {} is not allowed for {path}; allowed: {allow}",
                parts.method
            );
            let mut response =
                reply.error_allowing(StatusCode::METHOD_NOT_ALLOWED, &message, Some(&allow));
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_str(&allow).expect("method names are ASCII"),
            );
            Err(response)
        }
    }
}

/// One routed request to a plugin: what every step of the pipeline reads.
struct Call<'a> {
    state: &'a AppState,
    generation: &'a Generation,
    reply: &'a Reply<'a>,
    parts: &'a Parts,
    /// The plugin's index in the generation.
    index: usize,
    plugin: &'a LoadedPlugin,
    route: &'a Route,
}

impl<'a> Call<'a> {
    fn new(
        state: &'a AppState,
        generation: &'a Generation,
        reply: &'a Reply<'a>,
        parts: &'a Parts,
        found: &Match<'_>,
    ) -> Self {
        let plugin = &generation.plugins[found.target.plugin];
        Self {
            state,
            generation,
            reply,
            parts,
            index: found.target.plugin,
            plugin,
            route: &plugin.manifest.routes[found.target.route],
        }
    }

    /// authorize → read the body → build the plugin's request → call → answer. Each step either hands
    /// the next one its input or answers the client itself.
    async fn run(self, found: Match<'_>, body: Body) -> Response {
        let span = tracing::Span::current();
        span.record("route", field::display(&self.route.path));
        span.record("plugin", field::display(&self.plugin.manifest.name));
        span.record("version", field::display(&self.plugin.manifest.version));
        let labels = RouteLabels {
            plugin: self.plugin.manifest.name.clone(),
            route: self.route.path.to_string(),
        };
        let mut response = match self.steps(found, body).await {
            Ok(response) | Err(response) => response,
        };
        response.extensions_mut().insert(labels);
        response
    }

    async fn steps(&self, found: Match<'_>, body: Body) -> Result<Response, Response> {
        let principal = self.authorize().await?;
        let body = body::read(self, body).await?;
        let request = plugin_request::build(self, found.params, principal, body);
        let outcome = self
            .generation
            .call(self.index, &self.state.kv, &self.state.outbound, &request)
            .await;
        Ok(answer::outcome(self, outcome))
    }

    /// Who is calling, and whether that is enough for the route (401 / 403 otherwise).
    async fn authorize(&self) -> Result<Principal, Response> {
        let path = self.parts.uri.path();
        match self
            .state
            .auth
            .check(self.parts, self.route.role, path)
            .await
        {
            Ok(principal) => Ok(crate::accounts::auth::effective(principal)),
            Err(e) => {
                let mut response = self.reply.error(e.status(), &e.to_string());
                e.add_headers(response.headers_mut());
                Err(response)
            }
        }
    }
}
