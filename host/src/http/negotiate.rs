//! Content negotiation: whether a client gets HTML or JSON. `?format=html|json` decides when present;
//! otherwise the `Accept` header's q-values do, and HTML is chosen only when the client ranks `text/html`
//! above JSON. Clients that send no `Accept`, or `*/*` alone (curl, most service clients), get JSON;
//! browsers, which list `text/html` first, get HTML.

use axum::http::{HeaderMap, header};

/// The two representations of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Html,
}

/// Media ranges read from one `Accept` header at most (the rest are ignored).
const MAX_RANGES: usize = 32;

/// The format a request asks for.
pub(crate) fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Format {
    if let Some(explicit) = query.and_then(format_param) {
        return explicit;
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let (mut html, mut json) = (Preference::NONE, Preference::NONE);
    for range in accept.flat_map(|v| v.split(',')).take(MAX_RANGES) {
        let Some((media, q)) = parse_range(range) else {
            continue;
        };
        html = html.consider(media_specificity(&media, Format::Html), q);
        json = json.consider(media_specificity(&media, Format::Json), q);
    }
    if html.q > 0 && (html.q, html.specificity) > (json.q, json.specificity) {
        Format::Html
    } else {
        Format::Json
    }
}

/// `format=html` or `format=json` in a query string.
fn format_param(query: &str) -> Option<Format> {
    form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| match (&*k, &*v) {
        ("format", "html") => Some(Format::Html),
        ("format", "json") => Some(Format::Json),
        _ => None,
    })
}

/// How much a client wants one format: the q-value (in thousandths) of the most specific media range
/// that matches it (RFC 9110 §12.5.1: the most specific range decides), the highest of them when
/// several are as specific (`text/html;q=0.1, application/xhtml+xml`), so their order does not matter.
#[derive(Debug, Clone, Copy)]
struct Preference {
    q: u16,
    specificity: u8,
}

impl Preference {
    const NONE: Preference = Preference {
        q: 0,
        specificity: 0,
    };

    fn consider(self, specificity: u8, q: u16) -> Self {
        if specificity > self.specificity
            || (specificity == self.specificity && specificity > 0 && q > self.q)
        {
            Preference { q, specificity }
        } else {
            self
        }
    }
}

/// 3 for an exact match, 2 for `type/*`, 1 for `*/*`, 0 for no match.
fn media_specificity(media: &str, format: Format) -> u8 {
    let Some((kind, subtype)) = media.split_once('/') else {
        return 0;
    };
    let (exact, family) = match format {
        Format::Html => (subtype == "html" || subtype == "xhtml+xml", "text"),
        Format::Json => (
            subtype == "json" || subtype.ends_with("+json"),
            "application",
        ),
    };
    match (kind, subtype) {
        ("*", "*") => 1,
        (k, "*") if k == family => 2,
        (k, _) if exact && (k == family || (format == Format::Html && k == "application")) => 3,
        _ => 0,
    }
}

/// One media range: the lowercase `type/subtype` and its q-value in thousandths (default 1000).
/// Ranges with a malformed q-value are ignored.
fn parse_range(range: &str) -> Option<(String, u16)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    if media.is_empty() {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            q = parse_q(value.trim())?;
        }
    }
    Some((media, q))
}

/// A qvalue (`0`, `0.5`, `1.000`...) in thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_accept(accept: &str) -> Format {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        negotiate(&h, None)
    }

    #[test]
    fn browsers_get_html_and_services_get_json() {
        let chrome =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(with_accept(chrome), Format::Html);
        assert_eq!(with_accept(firefox), Format::Html);
        assert_eq!(with_accept("text/html"), Format::Html);
        assert_eq!(with_accept("text/html, */*"), Format::Html);
        assert_eq!(with_accept("*/*"), Format::Json);
        assert_eq!(with_accept("application/json"), Format::Json);
        assert_eq!(
            with_accept("application/json, text/html;q=0.5"),
            Format::Json
        );
        assert_eq!(with_accept("application/vnd.api+json"), Format::Json);
        assert_eq!(with_accept("text/plain"), Format::Json);
        assert_eq!(negotiate(&HeaderMap::new(), None), Format::Json);
    }

    #[test]
    fn q_values_decide_and_bad_ones_are_ignored() {
        assert_eq!(
            with_accept("text/html;q=0.4, application/json;q=0.5"),
            Format::Json
        );
        assert_eq!(
            with_accept("text/html;q=0.6, application/json;q=0.5"),
            Format::Html
        );
        assert_eq!(with_accept("text/html;q=0, */*"), Format::Json);
        assert_eq!(
            with_accept("text/html;q=2, application/json;q=0.1"),
            Format::Json
        );
        assert_eq!(with_accept("TEXT/HTML; Q=1.0"), Format::Html);
        assert_eq!(with_accept("text/*"), Format::Html);
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.1234"), None);
    }

    /// Found by `fuzz::negotiation`: among equally specific ranges the first one decided, so the same
    /// ranges in another order gave another format.
    #[test]
    fn equally_specific_ranges_in_any_order() {
        for accept in [
            "text/html;level=1;q=0, text/html",
            "text/html, text/html;level=1;q=0",
            "text/html;q=0.1, application/xhtml+xml",
            "application/xhtml+xml, text/html;q=0.1",
        ] {
            assert_eq!(with_accept(accept), Format::Html, "{accept}");
        }
        for accept in [
            "application/json;q=0, application/problem+json, text/html;q=0.5",
            "application/problem+json, application/json;q=0, text/html;q=0.5",
        ] {
            assert_eq!(with_accept(accept), Format::Json, "{accept}");
        }
    }

    #[test]
    fn the_query_overrides_accept() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(negotiate(&h, Some("a=1&format=json")), Format::Json);
        assert_eq!(
            negotiate(&HeaderMap::new(), Some("format=html")),
            Format::Html
        );
        assert_eq!(negotiate(&h, Some("format=xml")), Format::Html);
    }
}
