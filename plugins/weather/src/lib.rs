//! The `weather` example plugin: forecasts from an upstream service, through the host's outbound HTTP.
//!
//! - `GET /weather/{city}` — `{"city", "temperature_c", "conditions", "source"}` (HTML view
//!   `forecast.html`), from `GET {upstream}/forecast?city={city}`.
//!
//! The operator names the upstream and allows the plugin to call it:
//!
//! ```toml
//! [plugins.weather]
//! allow_http = ["http://127.0.0.1:9000/forecast"]
//! [plugins.weather.config]
//! upstream = "http://127.0.0.1:9000"
//! ```
//!
//! The upstream answers `{"city": "Oslo", "temperature_c": 3.5, "conditions": "snow"}`, or 404 for a
//! city it does not know (a 404 here too). Any other failure is the SDK's: 504 when the upstream does not
//! answer in time, 502 for the rest (not allowed, no connection, an error status, a body that is not the
//! JSON above), with the details in the plugin's log.

use std::time::Duration;

use plugin_sdk::prelude::*;
use plugin_sdk::{config, http};

/// How long the upstream has to answer: well inside the host's deadline for the whole request (5 s by
/// default), so a slow upstream is a 504 from this plugin rather than a request cut off.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// What the upstream sends.
#[derive(Deserialize)]
struct Upstream {
    city: String,
    temperature_c: f64,
    conditions: String,
}

/// What this plugin answers.
#[derive(Serialize)]
struct Forecast {
    city: String,
    temperature_c: f64,
    conditions: String,
    /// The upstream it came from.
    source: String,
}

fn plugin() -> Plugin {
    Plugin::new(
        "weather",
        env!("CARGO_PKG_VERSION"),
        "Forecasts from an upstream weather service",
    )
    .template("forecast.html", include_str!("../templates/forecast.html"))
    .get("/weather/{city}", forecast)
    .summary("The forecast for a city")
    .view("forecast.html")
}

/// The configured upstream's base URL, without a trailing `/`.
fn upstream() -> std::result::Result<String, Error> {
    let configured = config::get("upstream").unwrap_or_default();
    let base = configured.trim().trim_end_matches('/');
    if base.is_empty() {
        let message = "weather has no upstream: set `upstream` in [plugins.weather.config] to the \
                       forecast service's base URL (e.g. \"http://127.0.0.1:9000\") and allow it in \
                       [plugins.weather] allow_http";
        plugin_sdk::log!(Error, "{message}");
        return Err(Error::internal(message));
    }
    Ok(base.to_owned())
}

fn forecast(req: &Request) -> Result {
    let city: String = req.param("city")?;
    let source = upstream()?;
    let response = http::get(format!("{source}/forecast"))
        .query("city", &city)
        .header("accept", "application/json")
        .timeout(UPSTREAM_TIMEOUT)
        .send()?;
    if response.status() == 404 {
        return Err(Error::not_found(format!("no forecast for {city}")));
    }
    let found: Upstream = response.error_for_status()?.json()?;
    Response::json(&Forecast {
        city: found.city,
        temperature_c: found.temperature_c,
        conditions: found.conditions,
        source,
    })
}

plugin_sdk::plugin!(plugin);

#[cfg(test)]
mod tests {
    //! The handler against the SDK's fake host: `testing::http_responder` plays the upstream.

    use plugin_sdk::http::{self, ErrorKind};
    use plugin_sdk::log::Level;
    use plugin_sdk::prelude::*;
    use plugin_sdk::testing;

    const UPSTREAM: &str = "http://127.0.0.1:9000";

    fn get(city: &str) -> Result {
        let path = format!("/weather/{}", http::percent_encode(city));
        super::plugin().call(Request::builder().get(&path).build())
    }

    /// An upstream that knows Oslo and São Paulo.
    fn upstream() {
        testing::set_config("upstream", UPSTREAM);
        testing::http_responder(|req| {
            let city = match req.url() {
                "http://127.0.0.1:9000/forecast?city=Oslo" => "Oslo",
                "http://127.0.0.1:9000/forecast?city=S%C3%A3o%20Paulo" => "São Paulo",
                _ => return Ok(http::Response::new(404).with_body("unknown city")),
            };
            Ok(http::Response::new(200).with_json(&json!({
                "city": city, "temperature_c": 3.5, "conditions": "snow"
            })))
        });
    }

    #[test]
    fn a_forecast_is_the_upstreams_with_its_source() {
        upstream();
        let response = get("Oslo").unwrap();
        assert_eq!(response.status_code(), 200);
        assert_eq!(
            response.body_json::<Value>().unwrap(),
            json!({
                "city": "Oslo", "temperature_c": 3.5, "conditions": "snow",
                "source": "http://127.0.0.1:9000"
            })
        );
        let sent = testing::http_requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method(), Method::Get);
        assert_eq!(sent[0].header("Accept"), Some("application/json"));
        assert_eq!(sent[0].timeout(), Some(super::UPSTREAM_TIMEOUT));
    }

    #[test]
    fn the_city_is_percent_encoded_and_a_trailing_slash_is_dropped() {
        upstream();
        testing::set_config("upstream", "http://127.0.0.1:9000/");
        let forecast: Value = get("São Paulo").unwrap().body_json().unwrap();
        assert_eq!(forecast["city"], "São Paulo");
        assert_eq!(forecast["source"], UPSTREAM);
    }

    #[test]
    fn an_unknown_city_is_404_naming_it() {
        upstream();
        let error = get("Atlantis").unwrap_err();
        assert_eq!(
            (error.status(), error.message()),
            (404, "no forecast for Atlantis")
        );
    }

    #[test]
    fn an_upstream_timeout_is_504_and_the_detail_is_logged_not_sent() {
        testing::set_config("upstream", UPSTREAM);
        testing::http_responder(|_| {
            Err(http::Error::new(
                ErrorKind::Timeout,
                "no response within 3000 ms",
            ))
        });
        let error = get("Oslo").unwrap_err();
        assert_eq!(
            (error.status(), error.message()),
            (504, "upstream did not answer in time")
        );
        let logs = testing::logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, Level::Warn);
        assert_eq!(
            logs[0].1,
            "upstream request failed: GET http://127.0.0.1:9000/forecast: timeout: no response within 3000 ms"
        );
    }

    #[test]
    fn an_upstream_not_allowed_is_502() {
        // No responder: the fake answers like a host whose allow_http does not list the upstream.
        testing::set_config("upstream", UPSTREAM);
        let error = get("Oslo").unwrap_err();
        assert_eq!(
            (error.status(), error.message()),
            (502, "upstream request failed")
        );
        assert!(testing::logs()[0].1.contains("not-allowed"));
    }

    #[test]
    fn other_upstream_failures_are_502() {
        testing::set_config("upstream", UPSTREAM);
        let failures: [fn() -> std::result::Result<http::Response, http::Error>; 4] = [
            || Ok(http::Response::new(500).with_body("database down")),
            || Ok(http::Response::new(200).with_body("<html>not json</html>")),
            || Ok(http::Response::new(200).with_json(&json!({ "city": "Oslo" }))),
            || Err(http::Error::new(ErrorKind::ConnectionFailed, "refused")),
        ];
        for failure in failures {
            testing::http_responder(move |_| failure());
            let error = get("Oslo").unwrap_err();
            assert_eq!(error.status(), 502, "{error}");
            assert!(!error.message().contains("database"), "{error}");
        }
    }

    #[test]
    fn no_upstream_configured_is_500_naming_the_key() {
        for configured in [None, Some(""), Some(" / ")] {
            testing::reset();
            if let Some(value) = configured {
                testing::set_config("upstream", value);
            }
            let error = get("Oslo").unwrap_err();
            assert_eq!(error.status(), 500);
            assert!(
                error
                    .message()
                    .contains("`upstream` in [plugins.weather.config]"),
                "{error}"
            );
            assert!(
                testing::http_requests().is_empty(),
                "no call without an upstream"
            );
            assert_eq!(testing::logs()[0].0, Level::Error);
        }
    }

    #[test]
    fn the_route_is_anonymous_with_the_forecast_view() {
        let plugin = super::plugin();
        let routes: Vec<_> = plugin
            .routes()
            .iter()
            .map(|r| (r.method, r.path.as_str(), r.role, r.view.as_deref()))
            .collect();
        assert_eq!(
            routes,
            [(
                Method::Get,
                "/weather/{city}",
                Role::Anonymous,
                Some("forecast.html")
            )]
        );
    }
}
