//! Requests that come through a trusted proxy (`trusted_proxies`): the client is the address the proxy
//! names in `X-Forwarded-For` (or `Forwarded: for=`), and the scheme the one in `X-Forwarded-Proto` (or
//! `Forwarded: proto=`). From any other peer these headers are ignored, since anyone can send them.
//!
//! The client is the right-most address in the chain that is not itself a trusted proxy: each trusted
//! hop appends the address it saw, so everything left of the first untrusted one may be forged.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail};
use axum::http::HeaderMap;

/// An address block: `10.0.0.0/8`, `::1/128`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parse `text` as an address or an address block.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .with_context(|| format!("{addr:?} is not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .with_context(|| format!("{b:?} is not a prefix length from 0 to {max}"))?,
            None => max,
        };
        Ok(Self { net, bits })
    }

    /// Whether `ip` is in this block (IPv4-mapped IPv6 addresses count as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// The trusted proxies, parsed once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proxies(Vec<Cidr>);

/// Who a request really comes from, as the request's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) client: IpAddr,
    /// The client reached the proxy over HTTPS.
    pub(crate) https: bool,
}

impl Proxies {
    /// From the configuration's `trusted_proxies`.
    pub(crate) fn parse(list: &[String]) -> Result<Self> {
        let mut cidrs = Vec::with_capacity(list.len());
        for text in list {
            match Cidr::parse(text) {
                Ok(c) => cidrs.push(c),
                Err(e) => bail!("trusted_proxies: {text:?}: {e:#}"),
            }
        }
        Ok(Self(cidrs))
    }

    /// Whether any proxy is trusted at all.
    pub(crate) fn any(&self) -> bool {
        !self.0.is_empty()
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Where a request from `peer` with `headers` comes from.
    pub(crate) fn origin(&self, peer: SocketAddr, headers: &HeaderMap) -> Origin {
        let direct = Origin {
            client: peer.ip(),
            https: false,
        };
        if self.0.is_empty() || !self.trusted(peer.ip()) {
            return direct;
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        let mut https = None;
        for value in headers.get_all("forwarded") {
            let Ok(value) = value.to_str() else { continue };
            for element in value.split(',') {
                for pair in element.split(';') {
                    let Some((k, v)) = pair.trim().split_once('=') else {
                        continue;
                    };
                    let v = v.trim().trim_matches('"');
                    if k.eq_ignore_ascii_case("for") {
                        chain.extend(forwarded_for(v));
                    } else if k.eq_ignore_ascii_case("proto") {
                        https = Some(v.eq_ignore_ascii_case("https"));
                    }
                }
            }
        }
        if chain.is_empty() {
            for value in headers.get_all("x-forwarded-for") {
                let Ok(value) = value.to_str() else { continue };
                chain.extend(
                    value
                        .split(',')
                        .filter_map(|a| a.trim().parse::<IpAddr>().ok()),
                );
            }
        }
        if https.is_none() {
            https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(',')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case("https")
                });
        }
        let client = chain
            .iter()
            .rev()
            .find(|ip| !self.trusted(**ip))
            .or(chain.first())
            .copied()
            .unwrap_or(direct.client);
        Origin {
            client,
            https: https.unwrap_or(false),
        }
    }
}

/// Mark every cookie set in `headers` `Secure`: the response goes to a client that reached the proxy
/// over HTTPS, so its cookies must never travel over plain HTTP.
pub(crate) fn secure_cookies(headers: &mut HeaderMap) {
    use axum::http::{HeaderValue, header::SET_COOKIE};
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(SET_COOKIE);
    for cookie in cookies {
        let text = cookie.to_str().unwrap_or_default();
        let secure = text
            .split(';')
            .any(|part| part.trim().eq_ignore_ascii_case("secure"));
        let value = if secure || text.is_empty() {
            cookie
        } else {
            HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
        };
        headers.append(SET_COOKIE, value);
    }
}

/// The address in a `Forwarded: for=` value: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`.
fn forwarded_for(v: &str) -> Option<IpAddr> {
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':').and_then(|(a, _)| a.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            Cidr::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "banana", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_trusted_peers_may_name_the_client() {
        let proxies = Proxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.0.0.5"),
            ("x-forwarded-proto", "https"),
        ]);
        // Through two trusted hops: the right-most untrusted address, and the scheme.
        let o = proxies.origin("127.0.0.1:5000".parse().unwrap(), &h);
        assert_eq!(o.client, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(o.https);
        // From an untrusted peer the headers mean nothing.
        let o = proxies.origin("192.0.2.50:5000".parse().unwrap(), &h);
        assert_eq!(o.client, "192.0.2.50".parse::<IpAddr>().unwrap());
        assert!(!o.https);
        // Forwarded wins over X-Forwarded-For.
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3",
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let o = proxies.origin("127.0.0.1:5000".parse().unwrap(), &h);
        assert_eq!(o.client, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert!(o.https);
        // No list: the peer, whatever the headers say.
        let none = Proxies::default();
        let o = none.origin("127.0.0.1:5000".parse().unwrap(), &h);
        assert_eq!(o.client, "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
