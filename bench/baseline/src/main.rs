//! A do-nothing HTTP server for benchmarks: the same framework and runtime
//! as Coffer (axum on a multi-threaded tokio runtime) answering every
//! request with a fixed JSON body of a chosen size, and doing nothing else
//! (no JSON parsing, no auth, no storage, no audit). It is the ceiling that
//! Coffer's request rate is compared against.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Answer any request with a fixed JSON body")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8399")]
    listen: SocketAddr,
    /// Size in bytes of the JSON response body (at least 2: `{}`).
    #[arg(long, default_value_t = 64)]
    body_size: usize,
}

/// `{"pad":"xxxx…"}` padded to exactly `size` bytes (`{}` if too small).
fn fixed_body(size: usize) -> String {
    const FRAME: usize = r#"{"pad":""}"#.len();
    if size < FRAME {
        return "{}".to_string();
    }
    format!(r#"{{"pad":"{}"}}"#, "x".repeat(size - FRAME))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let body = Bytes::from(fixed_body(args.body_size));
    let app = Router::new().fallback(move |request_body: Bytes| {
        let body = body.clone();
        async move {
            // Read the whole request body, as a real handler would, then drop it.
            drop(request_body);
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "coffer-bench-baseline listening on http://{} (body {} bytes)",
        listener.local_addr()?,
        args.body_size
    );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::fixed_body;

    #[test]
    fn body_has_requested_size() {
        for size in [10, 11, 64, 300] {
            assert_eq!(fixed_body(size).len(), size);
        }
        assert_eq!(fixed_body(3), "{}");
    }
}
