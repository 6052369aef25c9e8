//! The plugin request path: route a request into the current generation, check the caller and the body,
//! take instance permits, call the plugin on a fresh instance, and turn its answer — or its failure —
//! into HTTP. Everything a plugin returns is checked before it is sent. Clients that prefer HTML get the
//! route's view (or the generic data page) and error pages instead of JSON (see `respond.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::field;

use crate::accounts::auth::AuthContext;
use crate::accounts::kv::KvStore;
use crate::app::metrics::{Fault, Metrics, RouteLabels};
use crate::app::state::AppState;
use crate::bindings::types as wit;
use crate::generation::Generation;
use crate::generation::invoke::CallError;
use crate::generation::manifest::{method_from_http, method_str};
use crate::generation::routes::{Miss, split_path};
use crate::http::context::RequestId;
use crate::http::negotiate::{Format, negotiate};
use crate::http::respond::{PageError, PageFacts, Reply};

/// Request headers never passed to plugins: credentials (the host authenticates) and hop-by-hop headers.
const WITHHELD_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];
/// Query parameters never passed to plugins (the Tigase-style API key).
const WITHHELD_QUERY: &[&str] = &["api-key", "api_key"];
/// Response headers a plugin may not set: the host owns framing and the request id.
const HOST_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "x-request-id",
];

/// Serve a request from the current generation, marked in flight on it until the response is made; the
/// response says which generation served it (`x-generation`) and that its form depends on `Accept`.
pub(crate) async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let flight = state.current().enter();
    let generation = flight.generation();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .expect("request_context runs first");
    let reply = Reply {
        format: negotiate(req.headers(), req.uri().query()),
        views: &generation.views,
        request_id: &request_id,
        generation: generation.id,
    };
    let mut response = dispatch_on(&state.metrics, generation, &reply, req).await;
    let headers = response.headers_mut();
    headers.insert("x-generation", HeaderValue::from(generation.id));
    headers.append(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// Route a request to the plugin that serves it, call it, and turn its answer into HTTP.
async fn dispatch_on(
    metrics: &Metrics,
    generation: &Generation,
    reply: &Reply<'_>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let describe = || format!("{} {}", parts.method, path);

    let Some(segments) = split_path(path) else {
        return reply.error(
            StatusCode::NOT_FOUND,
            &format!("no route for {}", describe()),
        );
    };
    let found = match generation
        .routes
        .lookup(method_from_http(&parts.method), &segments)
    {
        Ok(found) => found,
        Err(Miss::NotFound) => {
            return reply.error(
                StatusCode::NOT_FOUND,
                &format!("no route for {}", describe()),
            );
        }
        Err(Miss::MethodNotAllowed(allowed)) => {
            let allow = allowed
                .iter()
                .map(|m| method_str(*m))
                .collect::<Vec<_>>()
                .join(", ");
            let mut response = reply.error_allowing(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "method {} is not allowed for {path}; allowed: {allow}",
                    parts.method
                ),
                Some(&allow),
            );
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_str(&allow).expect("method names are ASCII"),
            );
            return response;
        }
    };
    let plugin = &generation.plugins[found.target.plugin];
    let route = &plugin.manifest.routes[found.target.route];
    let labels = RouteLabels {
        plugin: plugin.manifest.name.clone(),
        route: route.path.to_string(),
    };
    let mut response = call_plugin(metrics, generation, reply, found, &parts, body).await;
    response.extensions_mut().insert(labels);
    response
}

/// Everything after routing: role check, body, pool permit, the call, and the plugin's answer.
async fn call_plugin(
    metrics: &Metrics,
    generation: &Generation,
    reply: &Reply<'_>,
    found: crate::generation::routes::Match<'_>,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Response {
    let request_id = reply.request_id;
    let plugin = &generation.plugins[found.target.plugin];
    let route = &plugin.manifest.routes[found.target.route];
    let path = parts.uri.path();
    let describe = || format!("{} {}", parts.method, path);
    let span = tracing::Span::current();
    span.record("route", field::display(&route.path));
    span.record("plugin", field::display(&plugin.manifest.name));
    span.record("version", field::display(&plugin.manifest.version));

    let auth = parts.extensions.get::<Arc<AuthContext>>();
    let principal = match auth
        .expect("router adds the auth context")
        .check(parts, route.role, path)
        .await
    {
        Ok(principal) => crate::accounts::auth::effective(principal),
        Err(e) => {
            let mut response = reply.error(e.status(), &e.to_string());
            e.add_headers(response.headers_mut());
            return response;
        }
    };

    let limit = generation.limits.max_request_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = || {
        reply.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body is larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body_timeout = generation.limits.client_body_timeout();
    let read = tokio::time::timeout(body_timeout, Limited::new(body, limit).collect()).await;
    let Ok(read) = read else {
        return reply.error(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "request body not received within {} ms",
                body_timeout.as_millis()
            ),
        );
    };
    let body = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return too_large(),
        Err(_) => {
            return reply.error(StatusCode::BAD_REQUEST, "cannot read request body");
        }
    };

    // An idle warm instance (instance reuse), or one slot from the generation's pool and, if the plugin
    // has its own cap, one from that.
    let Some(lease) = generation.lease(found.target.plugin) else {
        metrics.observe_fault(&plugin.manifest.name, Fault::Busy);
        let mut response = reply.error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "all instances of plugin {} are busy; retry shortly",
                plugin.manifest.name
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };

    let request = wit::Request {
        id: request_id.to_string(),
        method: route.method,
        path: path.to_owned(),
        route: route.path.as_str().to_owned(),
        params: found.params,
        query: parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !WITHHELD_QUERY.contains(&k.as_ref()))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !WITHHELD_REQUEST_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
        principal: principal.to_wit(),
    };

    let timeout = plugin.limits.request_timeout;
    // The instance is dropped (its slots freed) or back in the idle list before the response is built.
    let outcome = generation
        .callable(found.target.plugin)
        .with_kv(parts.extensions.get::<Arc<KvStore>>())
        .serve(lease, &request, timeout)
        .await;
    let (name, version) = (&plugin.manifest.name, &plugin.manifest.version);
    let fault = |fault: Fault, status: StatusCode, message: &str| {
        metrics.observe_fault(name, fault);
        reply.error(status, message)
    };
    let failed = format!("plugin {name} failed; the log has details under request id {request_id}");
    match outcome {
        Ok(Ok(mut response)) => {
            let mut max_body = generation.limits.max_response_body_bytes;
            let mut page = false;
            if let (Format::Html, wit::Body::Json(json)) = (reply.format, &response.body) {
                let template = route
                    .view
                    .as_ref()
                    .map_or_else(|| "data.html".to_owned(), |v| format!("{name}/{v}"));
                let facts = PageFacts {
                    title: if route.summary.is_empty() {
                        name
                    } else {
                        &route.summary
                    },
                    plugin: name,
                    version,
                    method: parts.method.as_str(),
                    route: route.path.as_str(),
                    path,
                };
                match reply.page(&template, json, &facts) {
                    Ok(html) => {
                        response.body = wit::Body::Bytes(html.into_bytes());
                        // The page's size was checked against the render limit.
                        max_body = usize::MAX;
                        page = true;
                    }
                    Err(PageError::Json(e)) => {
                        tracing::warn!(plugin = %name, %version, reason = %e, "plugin returned an invalid response");
                        let message = format!("plugin {name} returned an invalid response");
                        return fault(
                            Fault::InvalidResponse,
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &message,
                        );
                    }
                    Err(PageError::Render(e)) => {
                        tracing::warn!(plugin = %name, %version, %template, error = %e, "cannot render view");
                        let message = format!("cannot render the page for {}", describe());
                        return fault(Fault::Render, StatusCode::INTERNAL_SERVER_ERROR, &message);
                    }
                }
            }
            match plugin_response(response, max_body) {
                Ok(mut response) if page => {
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    response
                }
                Ok(response) => response,
                Err(reason) => {
                    tracing::warn!(plugin = %name, %version, %reason, "plugin returned an invalid response");
                    let message = format!("plugin {name} returned an invalid response");
                    fault(
                        Fault::InvalidResponse,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &message,
                    )
                }
            }
        }
        Ok(Err(error)) => {
            let status = StatusCode::from_u16(error.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            reply.error(status, &error.message)
        }
        Err(CallError::Timeout(limit)) => {
            let timeout_ms = limit.as_millis() as u64;
            tracing::warn!(plugin = %name, %version, timeout_ms, "plugin call interrupted at its deadline");
            let message = format!("plugin {name} did not answer within {timeout_ms} ms");
            fault(Fault::Timeout, StatusCode::GATEWAY_TIMEOUT, &message)
        }
        Err(CallError::MemoryLimit { cap, detail }) => {
            tracing::warn!(plugin = %name, %version, cap_bytes = cap, %detail, "plugin hit its memory cap");
            fault(
                Fault::MemoryLimit,
                StatusCode::INTERNAL_SERVER_ERROR,
                &failed,
            )
        }
        Err(CallError::Trap(detail)) => {
            tracing::error!(plugin = %name, %version, %detail, "plugin trapped");
            fault(Fault::Trap, StatusCode::INTERNAL_SERVER_ERROR, &failed)
        }
        Err(CallError::Failed(detail)) => {
            tracing::error!(plugin = %name, %version, %detail, "plugin call failed");
            fault(Fault::Failed, StatusCode::INTERNAL_SERVER_ERROR, &failed)
        }
    }
}

/// Turn a plugin's response into HTTP, refusing anything malformed or over the size limit.
fn plugin_response(response: wit::Response, max_body: usize) -> Result<Response, String> {
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| format!("invalid status {}", response.status))?;
    let (content_type, body): (Option<&'static str>, Vec<u8>) = match response.body {
        wit::Body::Empty => (None, Vec::new()),
        wit::Body::Json(text) => {
            serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .map_err(|e| format!("body is not valid JSON: {e}"))?;
            (Some("application/json"), text.into_bytes())
        }
        wit::Body::Text(text) => (Some("text/plain; charset=utf-8"), text.into_bytes()),
        wit::Body::Bytes(bytes) => (Some("application/octet-stream"), bytes),
    };
    if body.len() > max_body {
        return Err(format!(
            "body of {} bytes is over the limit of {max_body}",
            body.len()
        ));
    }
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    if let Some(ct) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    for (name, value) in response.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        if HOST_RESPONSE_HEADERS.contains(&name.as_str()) {
            return Err(format!("header {name} is set by the host, not by plugins"));
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("invalid value for header {name}"))?;
        if name == header::CONTENT_TYPE {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: wit::Body) -> wit::Response {
        wit::Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    #[test]
    fn plugin_responses_are_checked() {
        let ok = plugin_response(
            response(201, &[("x-a", "1")], wit::Body::Json("{\"a\":1}".into())),
            100,
        )
        .unwrap();
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["content-type"], "application/json");
        assert_eq!(ok.headers()["x-a"], "1");

        let bad = [
            response(99, &[], wit::Body::Empty),
            response(101, &[], wit::Body::Empty),
            response(200, &[], wit::Body::Json("{not json".into())),
            response(200, &[("bad name", "x")], wit::Body::Empty),
            response(200, &[("x-a", "line\nbreak")], wit::Body::Empty),
            response(200, &[("content-length", "5")], wit::Body::Empty),
            response(200, &[], wit::Body::Text("x".repeat(101))),
        ];
        for r in bad {
            assert!(plugin_response(r, 100).is_err());
        }
    }
}
