//! The last step: the plugin's answer — or its failure — as HTTP. A JSON answer becomes a page for
//! clients that asked for HTML; everything a plugin returns is checked (status, headers, JSON
//! validity, size) before it is sent; failures are counted per plugin and logged with its name and
//! version, and the client gets a status that says which limit fired.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::Call;
use crate::app::metrics::Fault;
use crate::bindings::types as wit;
use crate::generation::CallFailure;
use crate::generation::invoke::CallError;
use crate::http::negotiate::Format;
use crate::http::respond::{PageError, PageFacts};

/// Response headers a plugin may not set: the host owns framing, the request id and the page's security
/// policy (what a browser may load, frame, send or clear), so a plugin cannot weaken it for the host's
/// own pages or sessions.
pub(crate) const HOST_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "x-request-id",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "strict-transport-security",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "cross-origin-embedder-policy",
    "permissions-policy",
    "clear-site-data",
];

/// Most headers a plugin response may carry. hyper's client, and so reqwest, refuses a response head with
/// more than 100 headers; 64 leaves room for the host's own (`content-type`, `content-length`, `date`,
/// `x-request-id`, `x-generation`, `vary` and the security headers) under that.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 64;

/// Most bytes (names plus values) of a plugin response's headers. Far above what real responses carry,
/// low enough that a flood of headers costs the host little; reverse proxies may allow less (nginx's
/// `proxy_buffer_size` is 4-8 KiB by default).
pub(crate) const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;

/// Deepest nesting of arrays and objects a plugin's JSON body may have. serde_json's typed parsing
/// refuses 128 levels or more (its default recursion limit of 128, which the HTML view path hits),
/// Ruby's `JSON.parse` more than 100 (`max_nesting`); 100 is accepted by both, and by the parsers of
/// Python, JavaScript and Go, so what the host passes on, clients can read. The validity check alone
/// (`IgnoredAny`) walks any depth without a limit.
pub(crate) const MAX_JSON_DEPTH: usize = 100;

/// What the client gets for the call's `outcome`.
pub(super) fn outcome(
    call: &Call<'_>,
    outcome: Result<Result<wit::Response, wit::Error>, CallFailure>,
) -> Response {
    match outcome {
        Ok(Ok(response)) => plugin_answer(call, response),
        Ok(Err(error)) => {
            let status = StatusCode::from_u16(error.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            call.reply.error(status, &error.message)
        }
        Err(CallFailure::Busy) => {
            let name = &call.plugin.manifest.name;
            let message = format!("all instances of plugin {name} are busy; retry shortly");
            let mut response = fault(call, Fault::Busy, StatusCode::SERVICE_UNAVAILABLE, &message);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(CallFailure::Call(e)) => failure(call, e),
    }
}

/// Count `kind` against the plugin and answer with `status`.
fn fault(call: &Call<'_>, kind: Fault, status: StatusCode, message: &str) -> Response {
    call.state
        .metrics
        .observe_fault(&call.plugin.manifest.name, kind);
    call.reply.error(status, message)
}

/// A call that did not return: deadline (504), memory cap, trap or another failure (500).
fn failure(call: &Call<'_>, error: CallError) -> Response {
    let (name, version) = (&call.plugin.manifest.name, &call.plugin.manifest.version);
    let failed = format!(
        "plugin {name} failed; the log has details under request id {}",
        call.reply.request_id
    );
    match error {
        CallError::Timeout(limit) => {
            let timeout_ms = limit.as_millis() as u64;
            tracing::warn!(plugin = %name, %version, timeout_ms, "plugin call interrupted at its deadline");
            let message = format!("plugin {name} did not answer within {timeout_ms} ms");
            fault(call, Fault::Timeout, StatusCode::GATEWAY_TIMEOUT, &message)
        }
        CallError::MemoryLimit { cap, detail } => {
            tracing::warn!(plugin = %name, %version, cap_bytes = cap, %detail, "plugin hit its memory cap");
            fault(
                call,
                Fault::MemoryLimit,
                StatusCode::INTERNAL_SERVER_ERROR,
                &failed,
            )
        }
        CallError::Trap(detail) => {
            tracing::error!(plugin = %name, %version, %detail, "plugin trapped");
            fault(
                call,
                Fault::Trap,
                StatusCode::INTERNAL_SERVER_ERROR,
                &failed,
            )
        }
        CallError::Failed(detail) => {
            tracing::error!(plugin = %name, %version, %detail, "plugin call failed");
            fault(
                call,
                Fault::Failed,
                StatusCode::INTERNAL_SERVER_ERROR,
                &failed,
            )
        }
    }
}

/// The plugin's own answer: rendered as a page when the client wants HTML and it is JSON, then
/// checked.
fn plugin_answer(call: &Call<'_>, mut response: wit::Response) -> Response {
    let mut max_body = call.generation.limits.max_response_body_bytes;
    let mut page = false;
    if let (Format::Html, wit::Body::Json(json)) = (call.reply.format, &response.body) {
        match render_page(call, json) {
            Ok(html) => {
                response.body = wit::Body::Bytes(html.into_bytes());
                // The page's size was checked against the render limit.
                max_body = usize::MAX;
                page = true;
            }
            Err(refused) => return refused,
        }
    }
    match checked(response, max_body) {
        Ok(mut response) => {
            if page {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
            }
            response
        }
        Err(reason) => invalid(call, &reason),
    }
}

/// A plugin answer that breaks the contract: logged with the reason, counted, a 500 for the client.
fn invalid(call: &Call<'_>, reason: &dyn std::fmt::Display) -> Response {
    let (name, version) = (&call.plugin.manifest.name, &call.plugin.manifest.version);
    tracing::warn!(plugin = %name, %version, %reason, "plugin returned an invalid response");
    let message = format!("plugin {name} returned an invalid response");
    fault(
        call,
        Fault::InvalidResponse,
        StatusCode::INTERNAL_SERVER_ERROR,
        &message,
    )
}

/// The plugin's JSON through the route's view (or the generic data page).
fn render_page(call: &Call<'_>, json: &str) -> Result<String, Response> {
    let (name, route) = (&call.plugin.manifest.name, call.route);
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
        version: &call.plugin.manifest.version,
        method: call.parts.method.as_str(),
        route: route.path.as_str(),
        path: call.parts.uri.path(),
    };
    call.reply.page(&template, json, &facts).map_err(|e| match e {
        PageError::Json(e) => invalid(call, &e),
        PageError::Render(e) => {
            let version = &call.plugin.manifest.version;
            tracing::warn!(plugin = %name, %version, %template, error = %e, "cannot render view");
            let message =
                format!("cannot render the page for {} {}", call.parts.method, call.parts.uri.path());
            fault(call, Fault::Render, StatusCode::INTERNAL_SERVER_ERROR, &message)
        }
    })
}

/// Turn a plugin's response into HTTP, refusing anything malformed or over a limit.
pub(crate) fn checked(response: wit::Response, max_body: usize) -> Result<Response, String> {
    check_header_budget(&response.headers)?;
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| format!("invalid status {}", response.status))?;
    let (content_type, body): (Option<&'static str>, Vec<u8>) = match response.body {
        wit::Body::Empty => (None, Vec::new()),
        wit::Body::Json(text) => {
            check_json(&text)?;
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
    // RFC 9110 15.3.5 and 15.4.5: these responses end after their headers. hyper would drop the body on
    // the wire; refusing it instead tells the plugin's author, as for every other malformed answer.
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) && !body.is_empty() {
        return Err(format!(
            "status {} must not have a body, got {} bytes",
            status.as_u16(),
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
        let (name, value) = checked_header(&name, &value)?;
        if name == header::CONTENT_TYPE {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    Ok(out)
}

/// Refuse a header list over [`MAX_RESPONSE_HEADERS`] or [`MAX_RESPONSE_HEADER_BYTES`], before any of it
/// is copied into the response.
fn check_header_budget(headers: &[(String, String)]) -> Result<(), String> {
    if headers.len() > MAX_RESPONSE_HEADERS {
        return Err(format!(
            "{} headers, over the limit of {MAX_RESPONSE_HEADERS}",
            headers.len()
        ));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_RESPONSE_HEADER_BYTES {
        return Err(format!(
            "headers of {bytes} bytes, over the limit of {MAX_RESPONSE_HEADER_BYTES}"
        ));
    }
    Ok(())
}

/// One plugin header as HTTP: a valid name the host does not own, a valid value, and no cookie that
/// would replace the host's session.
fn checked_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    if HOST_RESPONSE_HEADERS.contains(&name.as_str()) {
        return Err(format!("header {name} is set by the host, not by plugins"));
    }
    if name == header::SET_COOKIE && sets_host_cookie(value) {
        return Err(format!(
            "set-cookie names the host's session cookie {:?}",
            crate::accounts::sessions::COOKIE
        ));
    }
    let value =
        HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
    Ok((name, value))
}

/// Whether a `Set-Cookie` value would set the host's session cookie, alone or as `__Host-`/`__Secure-`
/// (names compared without case, as some servers and proxies do). A nameless cookie (`=ph_session=x`)
/// goes back to the server as `ph_session=x`, so its value is read as a name too.
pub(crate) fn sets_host_cookie(set_cookie: &str) -> bool {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let (name, value) = pair.split_once('=').unwrap_or(("", pair));
    let name = match name.trim() {
        "" => value.split('=').next().unwrap_or_default().trim(),
        name => name,
    };
    let unprefixed = ["__host-", "__secure-"]
        .iter()
        .find_map(|prefix| {
            name.get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .map(|_| &name[prefix.len()..])
        })
        .unwrap_or(name);
    unprefixed.eq_ignore_ascii_case(crate::accounts::sessions::COOKIE)
}

/// A JSON body must parse and nest at most [`MAX_JSON_DEPTH`] deep.
pub(crate) fn check_json(text: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| format!("body is not valid JSON: {e}"))?;
    let depth = json_depth(text);
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "JSON body nests {depth} levels deep, over the limit of {MAX_JSON_DEPTH}"
        ));
    }
    Ok(())
}

/// How deep arrays and objects nest in `text` (valid JSON): one pass over the bytes, skipping strings.
pub(crate) fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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
        let ok = checked(
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
            assert!(checked(r, 100).is_err());
        }
    }

    fn headers(count: usize, value_len: usize) -> Vec<(String, String)> {
        (0..count)
            .map(|i| (format!("x-h{i}"), "v".repeat(value_len)))
            .collect()
    }

    #[test]
    fn header_count_and_bytes_are_capped() {
        let at_cap = response(200, &[], wit::Body::Empty);
        let at_cap = wit::Response {
            headers: headers(MAX_RESPONSE_HEADERS, 10),
            ..at_cap
        };
        assert_eq!(checked(at_cap, 100).unwrap().status(), 200);

        let over = wit::Response {
            headers: headers(MAX_RESPONSE_HEADERS + 1, 1),
            ..response(200, &[], wit::Body::Empty)
        };
        let err = checked(over, 100).unwrap_err();
        assert_eq!(err, "65 headers, over the limit of 64");

        // 10 headers of ~7 KiB: few, but over the byte cap.
        let heavy = wit::Response {
            headers: headers(10, 7 << 10),
            ..response(200, &[], wit::Body::Empty)
        };
        let err = checked(heavy, 100).unwrap_err();
        assert!(err.contains("over the limit of 65536"), "{err}");
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        for status in [204, 304] {
            let empty = checked(
                response(status, &[("etag", "\"1\"")], wit::Body::Empty),
                100,
            );
            assert_eq!(empty.unwrap().status(), status);
            let empty_text = checked(response(status, &[], wit::Body::Text(String::new())), 100);
            assert!(empty_text.is_ok());
            let with_body = checked(response(status, &[], wit::Body::Text("x".into())), 100);
            assert_eq!(
                with_body.unwrap_err(),
                format!("status {status} must not have a body, got 1 bytes")
            );
            let json = checked(response(status, &[], wit::Body::Json("{}".into())), 100);
            assert!(json.is_err());
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn serde_json_ignored_any_has_no_depth_limit() {
        // Why the host counts depth itself: the validity check walks any nesting without complaint,
        // while typed parsing stops at serde_json's recursion limit (128: 127 levels parse, 128 do not).
        let deep = nested(10_000);
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&deep).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(127)).is_ok());
        let err = serde_json::from_str::<serde_json::Value>(&nested(128)).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }

    #[test]
    fn json_deeper_than_the_limit_is_refused() {
        assert!(check_json(&nested(MAX_JSON_DEPTH)).is_ok());
        let err = check_json(&nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert_eq!(
            err,
            "JSON body nests 101 levels deep, over the limit of 100"
        );
        assert!(check_json(&nested(100_000)).is_err());
        // Brackets inside strings (with escaped quotes) are text, not nesting.
        let text = format!(
            r#"{{"a":"{}\"{}","b":[{{"c":[]}}]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert_eq!(json_depth(&text), 4);
        assert!(check_json(&text).is_ok());
        assert_eq!(json_depth(r#"["\\", [1]]"#), 2);
    }

    #[test]
    fn plugins_cannot_set_the_session_cookie() {
        for refused in [
            "ph_session=evil; Path=/",
            "PH_SESSION=evil",
            " ph_session =evil",
            "__Host-ph_session=evil; Secure; Path=/",
            "__secure-ph_session=evil",
            "=ph_session=evil",
            "ph_session",
        ] {
            assert!(sets_host_cookie(refused), "{refused}");
            let r = response(200, &[("set-cookie", refused)], wit::Body::Empty);
            let err = checked(r, 100).unwrap_err();
            assert!(err.contains("session cookie"), "{refused}: {err}");
        }
        for allowed in [
            "theme=dark; Path=/",
            "ph_session_extra=1",
            "my_ph_session=1",
            "__Host-theme=1",
        ] {
            assert!(!sets_host_cookie(allowed), "{allowed}");
            let r = response(200, &[("set-cookie", allowed)], wit::Body::Empty);
            assert_eq!(checked(r, 100).unwrap().headers()["set-cookie"], allowed);
        }
    }

    #[test]
    fn plugins_cannot_set_host_owned_headers() {
        for name in HOST_RESPONSE_HEADERS {
            for spelled in [name.to_string(), name.to_ascii_uppercase()] {
                let r = response(200, &[(spelled.as_str(), "x")], wit::Body::Empty);
                let err = checked(r, 100).unwrap_err();
                assert_eq!(
                    err,
                    format!("header {name} is set by the host, not by plugins")
                );
            }
        }
        assert!(HOST_RESPONSE_HEADERS.contains(&"content-security-policy"));
        assert!(HOST_RESPONSE_HEADERS.contains(&"clear-site-data"));
    }
}
