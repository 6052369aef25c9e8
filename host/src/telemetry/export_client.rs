//! The OTLP exporter's HTTP client: the host's own reqwest (rustls with webpki roots, as plugins'
//! outbound calls use) running on a one-thread tokio runtime of its own. The SDK's batch processor
//! exports from a plain thread; each send is handed to this runtime, so exports neither need nor load
//! the server's runtime, and the last batch still leaves after the server's runtime has stopped.

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, ResponseBodyTooLarge};

/// The largest answer read from a collector (they answer with a small status message).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

#[derive(Debug)]
pub(super) struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl ExportClient {
    /// A client whose every request gives up after `timeout`.
    pub(super) fn new(timeout: Duration) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .context("cannot start the OTLP exporter's runtime")?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("plugin-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot make the OTLP exporter's HTTP client")?;
        Ok(Self { client, runtime })
    }
}

#[async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let mut response = client.execute(request.try_into()?).await?;
            let mut answer = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(Box::new(ResponseBodyTooLarge::new()) as HttpError);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(answer.body(Bytes::from(body))?)
        });
        sent.await?
    }
}
