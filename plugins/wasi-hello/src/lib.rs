//! `GET /hello/{name}` as a `wasi:http/incoming-handler` component: the same JSON body the `hello` plugin
//! gives (`{"message":"hello, <name>"}`), for `wasmtime serve` in the side-by-side benchmark
//! (tests/bench). Any other path is a 404 with an empty body.
//!
//! The bindings are the `wasi` crate's (its `wasi:http/proxy` world and export macro), so no WIT besides
//! our own contract is kept in this repository.

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        let name = match request.method() {
            Method::Get => path
                .strip_prefix("/hello/")
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .and_then(percent_decode),
            _ => None,
        };
        let Some(name) = name else {
            respond(response_out, 404, None);
            return;
        };
        let body = serde_json::json!({ "message": format!("hello, {name}") }).to_string();
        respond(response_out, 200, Some(body.as_bytes()));
    }
}

/// Send `status` with `body` as JSON. The length is declared up front so the host can send a
/// `content-length` header, as the other servers in the benchmark do, rather than a chunked body.
fn respond(out: ResponseOutparam, status: u16, body: Option<&[u8]>) {
    let body = body.unwrap_or_default();
    let mut headers = vec![(
        "content-length".to_owned(),
        body.len().to_string().into_bytes(),
    )];
    if !body.is_empty() {
        headers.push(("content-type".to_owned(), b"application/json".to_vec()));
    }
    let headers = Fields::from_list(&headers).expect("valid response headers");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("a valid status code");
    let outgoing = response.body().expect("the response body, taken once");
    ResponseOutparam::set(out, Ok(response));
    if !body.is_empty() {
        let stream = outgoing.write().expect("the body stream, taken once");
        stream
            .blocking_write_and_flush(body)
            .expect("the host accepts the body");
    }
    OutgoingBody::finish(outgoing, None).expect("the body is complete");
}

/// `%XX`-decode a path segment as axum's `Path` and the plugin host do; `None` when it is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

wasi::http::proxy::export!(Hello);
