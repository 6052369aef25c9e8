//! The `echo` example plugin: `POST /echo` answers with what it was sent, as JSON.

use plugin_sdk::prelude::*;

fn plugin() -> Plugin {
    Plugin::new(
        "echo",
        env!("CARGO_PKG_VERSION"),
        "Reflects the request back as JSON",
    )
    .post("/echo", echo)
    .summary("Echo method, path, query, headers and body")
}

/// Headers worth reflecting; the rest (and every credential, which the host never passes on) stay out.
const SHOWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "x-request-id",
];

fn echo(req: &Request) -> Result {
    let headers: plugin_sdk::Map<String, Value> = req
        .headers()
        .iter()
        .filter(|(name, _)| SHOWN_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    let query: Vec<Value> = req
        .query_pairs()
        .iter()
        .map(|(k, v)| json!([k, v]))
        .collect();
    let body = match std::str::from_utf8(req.body()) {
        Ok(text) => json!({ "encoding": "utf-8", "data": text }),
        Err(_) => json!({ "encoding": "base64", "data": base64(req.body()) }),
    };
    plugin_sdk::log!(Info, "echoing {} body bytes", req.body().len());
    Response::json(&json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": query,
        "headers": headers,
        "body": body,
    }))
}

/// Standard base64 with padding (RFC 4648 §4); small enough not to need a crate.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

plugin_sdk::plugin!(plugin);
