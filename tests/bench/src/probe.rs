//! One HTTP/1.0 GET over a plain socket: enough to check what a server answers before it is measured,
//! without an HTTP client crate. HTTP/1.0 makes every server close the connection after the answer and
//! send the body as it is (no chunked encoding), so reading to the end is reading the answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};

/// An answer: status, headers (names lowercased) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on `base` (`http://HOST:PORT`) with extra `Name: value` headers.
pub fn get(base: &str, path: &str, headers: &[&str]) -> Result<Answer> {
    let authority = base
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// address: {base}"))?;
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("cannot connect to {base}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("no answer from {base}{path}"))?;
    parse(&String::from_utf8_lossy(&raw)).with_context(|| format!("bad answer from {base}{path}"))
}

fn parse(raw: &str) -> Option<Answer> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_status_headers_and_body() {
        let a =
            parse("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.body, "{\"a\":1}");
        assert!(parse("garbage").is_none());
    }
}
