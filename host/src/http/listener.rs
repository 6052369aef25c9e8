//! The accept loop: HTTP/1.1 connections served by hyper with a header-read timeout (so a client that
//! trickles or stalls its headers — slowloris — is cut off), the peer address attached to each request
//! (for login rate limits and the audit log), graceful shutdown with a grace period, and a warning plus
//! `plugin_host_responses_unwritten_total` for every response that could not be written to its client.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, let open requests finish
/// for up to `grace`, and return.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small request/response exchanges: do not let Nagle's algorithm delay them.
        stream.set_nodelay(true).ok();
        let watch = Arc::new(Watch::default());
        let seen = watch.clone();
        let service = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            })
            .map_response(move |response: Response| {
                seen.sending(&response);
                response
            });
        let stream = Watched {
            stream,
            watch: watch.clone(),
        };
        // No upgrades (websockets): plugins answer plain requests.
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                watch.ended(peer, &e);
            }
        });
    }
    drop(listener);
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over: exiting with requests still in flight"),
    }
}

/// What the host knows about one connection when it ends with an error: whether a response was still
/// on its way out, and that response's request id.
///
/// A response is on its way from the moment the service hands it to hyper until hyper, its buffer
/// written out, flushes the socket (the host's bodies are whole, so that flush comes after the last
/// byte). A failure in between — seen by hyper on a write, or first on a read of the same reset
/// connection — cost that response.
#[derive(Default)]
struct Watch {
    sending: AtomicBool,
    request_id: Mutex<Option<HeaderValue>>,
}

impl Watch {
    /// `response` is handed to hyper to be written.
    fn sending(&self, response: &Response) {
        let id = response.headers().get("x-request-id").cloned();
        *self.request_id.lock().expect("watch lock") = id;
        self.sending.store(true, Ordering::Relaxed);
    }

    /// The connection ended with `error`. With a response on its way, or an error from the response
    /// itself (its body, its head), a response did not reach the client: a warning and a count.
    /// Anything else (a client that closed, reset or stalled between requests) is routine.
    fn ended(&self, peer: std::net::SocketAddr, error: &hyper::Error) {
        if !self.sending.load(Ordering::Relaxed) && !error.is_user() {
            tracing::debug!(%peer, error = %error_chain(error), "connection ended with an error");
            return;
        }
        crate::app::metrics::process().observe_unwritten_response();
        let request_id = self.request_id.lock().expect("watch lock").take();
        let request_id = request_id
            .as_ref()
            .and_then(|id| id.to_str().ok())
            .unwrap_or("-");
        tracing::warn!(%peer, %request_id, error = %error_chain(error), "a response could not be written to the client");
    }
}

/// hyper's error with its cause (`connection error: Connection reset by peer (os error 104)`).
fn error_chain(error: &hyper::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) if !error.to_string().contains(&cause.to_string()) => {
            format!("{error}: {cause}")
        }
        _ => error.to_string(),
    }
}

/// A connection's socket that tells its [`Watch`] when everything hyper had to write is out.
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl Watched {
    /// A write that could not finish leaves the response on its way, whatever came before.
    fn note<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if !matches!(result, Poll::Ready(Ok(_))) {
            self.watch.sending.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    /// hyper flushes the socket once its own buffer is written out: nothing is on its way any more.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.watch.sending.store(false, Ordering::Relaxed);
        }
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
