//! What a plugin sees of a request: method, path, route, parameters, query, headers, body and the
//! principal — never credentials. The header and query policy lives here, and only here.

use axum::body::Bytes;

use super::Call;
use crate::accounts::auth::{KEY_QUERY_PARAMS, Principal};
use crate::bindings::types as wit;

/// Request headers never passed to plugins: credentials (the host authenticates) and hop-by-hop headers.
const WITHHELD_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// The plugin's request for `call`, with the route's `params`, the caller and the body.
pub(super) fn build(
    call: &Call<'_>,
    params: Vec<(String, String)>,
    principal: Principal,
    body: Bytes,
) -> wit::Request {
    let parts = call.parts;
    wit::Request {
        id: call.reply.request_id.to_string(),
        method: call.route.method,
        path: parts.uri.path().to_owned(),
        route: call.route.path.as_str().to_owned(),
        params,
        query: parts.uri.query().map(query).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !WITHHELD_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
        principal: principal.to_wit(),
    }
}

/// The query's decoded pairs, without the ones that carry an API key (the same list authentication
/// reads keys from).
pub(crate) fn query(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| !KEY_QUERY_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parameters_never_reach_a_plugin() {
        let pairs = query("a=1&api-key=secret&api_key=secret&b=%20x");
        assert_eq!(
            pairs,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), " x".to_owned())
            ]
        );
    }
}
