//! Outbound HTTP for plugins (contract 1.1, `http-client`): the operator's allow-list, the address
//! check, and the call itself.
//!
//! A call is sent only when its URL matches one of the plugin's `allow_http` entries. The host resolves
//! names itself (the client's resolver, [`PublicOnly`]) and connects only to what it checked: a name must
//! resolve to public addresses, so a DNS answer cannot point an allowed name at loopback, the cloud
//! metadata address or the private network. An IP-address entry is the operator naming that address,
//! so it is allowed whatever its range. Redirects are handed to the plugin, never followed; proxies
//! from the environment are not used (they would connect on the host's behalf to unchecked addresses).
//! Each call has a timeout, a response-size cap, and is held to the request's deadline.
//!
//! The client (connection pool included) is one per process, made on first use; a generation holds
//! only its plugins' allow-lists. Idle connections are capped per upstream and closed after 30 s.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::bindings::http_client::{Error, IncomingResponse, OutgoingRequest};
use crate::bindings::types::Method;
use crate::config::{AllowedOrigin, Limits};

/// Idle connections kept per upstream.
const IDLE_PER_UPSTREAM: usize = 8;
/// How long an idle upstream connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Headers a plugin's values are dropped for (as a proxy drops them): the client owns the message's
/// framing and its connection, and the host name is the URL's. A plugin that copies its incoming
/// request's headers onto a call (`host`, `content-length` among them) still gets a well-formed request.
/// The trace context is the host's to send (`telemetry::inject`): a plugin cannot put a call into
/// another trace.
const HOST_OWNED: &[&str] = &[
    crate::telemetry::TRACEPARENT,
    crate::telemetry::TRACESTATE,
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// The process's outbound client and the limits every call is held to.
pub struct Outbound {
    client: OnceLock<Result<reqwest::Client, String>>,
    /// Longest one call may take.
    pub timeout: Duration,
    /// Largest response body.
    pub max_body: usize,
    /// Calls one request may make.
    pub max_calls: u32,
}

impl Outbound {
    pub fn new(limits: &Limits) -> Self {
        Self {
            client: OnceLock::new(),
            timeout: Duration::from_millis(limits.http_call_timeout_ms),
            max_body: limits.http_response_body_bytes,
            max_calls: limits.http_calls_per_request,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, Error> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .dns_resolver(Arc::new(PublicOnly))
                    .pool_max_idle_per_host(IDLE_PER_UPSTREAM)
                    .pool_idle_timeout(IDLE_TIMEOUT)
                    .user_agent(concat!("plugin-host/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot make the HTTP client: {}", chain(&e)))
            })
            .as_ref()
            .map_err(|e| Error::ConnectionFailed(e.clone()))
    }
}

/// One call's outcome for metrics and the log.
pub struct Sent {
    /// `scheme://host:port` of the URL (only for allowed URLs; `-` otherwise), a bounded label.
    pub upstream: String,
    pub result: Result<IncomingResponse, Error>,
    pub took: Duration,
}

/// The request's deadline passed while a call waited: the whole request is out of time, and the caller
/// traps the plugin so the client gets its 504 at the deadline.
pub struct DeadlinePassed;

/// Send `request` for a plugin allowed `allow`, waiting at most `timeout` (already the smaller of the
/// call's limit and what is left of the request's deadline; `deadline_bound` says which), with the
/// `traceparent` of `trace` when it has one. A call's own timeout is the plugin's typed `timeout`
/// error; the deadline is [`DeadlinePassed`].
pub async fn send(
    outbound: &Outbound,
    allow: &[AllowedOrigin],
    request: OutgoingRequest,
    timeout: Duration,
    deadline_bound: bool,
    trace: &opentelemetry::Context,
) -> Result<Sent, DeadlinePassed> {
    let started = Instant::now();
    let url = match url::Url::parse(&request.url) {
        Ok(url) => url,
        Err(e) => {
            return Ok(refused(
                started,
                Error::InvalidRequest(format!("{:?} is not a URL: {e}", request.url)),
            ));
        }
    };
    let upstream = match origin_of(&url) {
        Some(origin) => origin,
        None => {
            return Ok(refused(
                started,
                Error::InvalidRequest(format!("{url} is not an http or https URL with a host")),
            ));
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Ok(refused(
            started,
            Error::InvalidRequest(
                "credentials in the URL are not sent: put them in a header".into(),
            ),
        ));
    }
    if !allow.iter().any(|a| a.allows(&url)) {
        return Ok(refused(
            started,
            Error::NotAllowed(format!(
                "{upstream}{} is not in this plugin's allow_http",
                url.path()
            )),
        ));
    }
    // An IP address in the URL matched an entry naming that very address: the operator allowed it,
    // whatever its range. A name goes through `PublicOnly` when the client connects.
    let built = build(outbound, &url, request, trace);
    let call = async {
        let request = built?;
        let response = request.send().await.map_err(|e| classify(&e))?;
        read(response, outbound.max_body).await
    };
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) if deadline_bound => return Err(DeadlinePassed),
        Err(_) => Err(Error::Timeout(format!(
            "no response from {upstream} within {} ms",
            timeout.as_millis()
        ))),
    };
    Ok(Sent {
        upstream,
        result,
        took: started.elapsed(),
    })
}

fn refused(started: Instant, error: Error) -> Sent {
    Sent {
        upstream: "-".into(),
        result: Err(error),
        took: started.elapsed(),
    }
}

/// `scheme://host:port` of an http(s) URL.
fn origin_of(url: &url::Url) -> Option<String> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = url.host()?;
    let port = url.port_or_known_default()?;
    Some(format!("{scheme}://{host}:{port}"))
}

/// The request as the client sends it: the plugin's method, headers (host-owned ones dropped, the
/// trace context added) and body.
fn build(
    outbound: &Outbound,
    url: &url::Url,
    request: OutgoingRequest,
    trace: &opentelemetry::Context,
) -> Result<reqwest::RequestBuilder, Error> {
    let client = outbound.client()?;
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    };
    let mut headers = reqwest::header::HeaderMap::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("{name:?} is not a header name")))?;
        if HOST_OWNED.contains(&name.as_str()) {
            // As a proxy drops them: the client frames the message and names the host from the URL.
            continue;
        }
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| Error::InvalidRequest(format!("the value of {name} is not valid")))?;
        headers.append(name, value);
    }
    crate::telemetry::inject(trace, &mut headers);
    Ok(client
        .request(method, url.clone())
        .headers(headers)
        .body(request.body))
}

/// Read the response, refusing a body over `max` bytes (by its length when declared, else as it comes).
async fn read(mut response: reqwest::Response, max: usize) -> Result<IncomingResponse, Error> {
    let too_large = || Error::ResponseTooLarge(format!("the response body is over {max} bytes"));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(IncomingResponse {
        status,
        headers,
        body,
    })
}

/// The typed error for a failed send: an address the resolver refused is `not-allowed`.
fn classify(error: &reqwest::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedName>() {
            return Error::NotAllowed(refused.to_string());
        }
        source = e.source();
    }
    if error.is_builder() {
        Error::InvalidRequest(chain(error))
    } else if error.is_timeout() {
        Error::Timeout(chain(error))
    } else {
        Error::ConnectionFailed(chain(error))
    }
}

/// An error with its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// Why an address may not be reached unless an allow-list entry names it; `None` for public addresses.
pub fn refused_range(address: IpAddr) -> Option<&'static str> {
    let address = address.to_canonical();
    match address {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_link_local() {
                Some("link-local (the cloud metadata address is one)")
            } else if a.is_private() || (first == 100 && (64..128).contains(&second)) {
                Some("private")
            } else if a.is_unspecified() || first == 0 || a.is_broadcast() || a.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            if a.is_loopback() {
                Some("loopback")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if a.is_unspecified() || a.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
    }
}

/// A name that resolved to no address a plugin may reach.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name} resolves to {address}, a {why} address; allow it by its address in allow_http if it is meant"
)]
struct RefusedName {
    name: String,
    address: IpAddr,
    why: &'static str,
}

/// The client's resolver: the system's answer, less every address in a refused range. The client
/// connects only to what this returns, so the check holds for the connection actually made.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut public = Vec::with_capacity(found.len());
            let mut first_refused = None;
            for addr in found {
                match refused_range(addr.ip()) {
                    None => public.push(addr),
                    Some(why) => {
                        first_refused.get_or_insert((addr.ip(), why));
                    }
                }
            }
            match (public.is_empty(), first_refused) {
                (true, Some((address, why))) => Err(Box::new(RefusedName { name, address, why })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ranges_cover_loopback_metadata_private_and_mapped_forms() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let address: IpAddr = refused.parse().unwrap();
            assert!(refused_range(address).is_some(), "{refused}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            let address: IpAddr = public.parse().unwrap();
            assert_eq!(refused_range(address), None, "{public}");
        }
    }

    #[test]
    fn allow_entries_match_scheme_host_port_and_path_prefix() {
        let entry = AllowedOrigin::parse("https://api.example.com/v1").unwrap();
        let allows = |u: &str| entry.allows(&url::Url::parse(u).unwrap());
        assert!(allows("https://api.example.com/v1"));
        assert!(allows("https://API.example.com:443/v1/forecast?x=1"));
        assert!(!allows("https://api.example.com/v10"));
        assert!(!allows("https://api.example.com/v1/../admin"));
        assert!(!allows("http://api.example.com/v1"));
        assert!(!allows("https://api.example.com:8443/v1"));
        assert!(!allows("https://api.example.com.evil.test/v1"));
        let loopback = AllowedOrigin::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(loopback.address(), Some("127.0.0.1".parse().unwrap()));
        assert!(loopback.allows(&url::Url::parse("http://127.0.0.1:9000/anything").unwrap()));
        for bad in [
            "ftp://x.test",
            "https://user:pw@x.test",
            "https://x.test/?q=1",
            "not a url",
        ] {
            assert!(AllowedOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
