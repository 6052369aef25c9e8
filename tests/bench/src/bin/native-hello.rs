//! The native baseline of the side-by-side benchmark: `GET /hello/{name}` answered by a plain axum handler
//! with the JSON the `hello` plugin gives (`{"message":"hello, <name>"}`), on the same tokio runtime the
//! host builds (multi-thread, one worker per CPU it may run on). The handler costs next to nothing, so
//! this is the limit Plugin Host is measured against: the same HTTP stack without a plugin call.
//!
//! `native-hello [--listen ADDR]` (default `127.0.0.1:0`) prints `native-hello listening on http://ADDR`
//! on stdout once it accepts connections, as `plugin-host serve` does, and runs until killed.

use anyhow::{Context, Result};
use axum::{Json, Router, extract::Path, routing::get};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Native axum baseline: GET /hello/{name} -> {\"message\":\"hello, <name>\"}")]
struct Args {
    /// Address to listen on; port 0 lets the system choose.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The same runtime as `plugin-host serve` (host/src/cli.rs `runtime()`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(&args.listen))
}

async fn serve(listen: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("no local address")?;
    println!("native-hello listening on http://{addr}");
    axum::serve(listener, app()).await.context("server failed")
}

fn app() -> Router {
    Router::new().route("/hello/{name}", get(hello))
}

async fn hello(Path(name): Path<String>) -> Json<Value> {
    Json(json!({ "message": format!("hello, {name}") }))
}
