//! A small HTTP/1.1 load generator for bench/run.sh (wrk2 is not in Debian).
//!
//! `rate` mode (open loop, like wrk2): C keep-alive connections together
//! send R requests/s on a fixed schedule for D seconds. Request i of
//! connection k is due at t0 + (k + i·C)/R. When a connection is behind
//! schedule (its previous response arrived after the next request was due)
//! latency is measured from the time the request was *due*, so a server
//! that falls behind is charged for the queueing it causes (no
//! "coordinated omission", as in wrk2). When it is on schedule, latency is
//! measured from the actual send, so the ~1 ms granularity of the client's
//! timer is not charged to the server.
//!
//! `load` mode (closed loop): C connections send N requests as fast as the
//! server answers them; `{n}` in the body template is replaced by the
//! request number 0..N. Used to bulk-create secrets.
//!
//! Output: one JSON object on stdout. Plain HTTP over TCP only; every
//! response must carry Content-Length (axum sets it for these bodies).
// A benchmark tool: a broken set-up should stop the run at once.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "Fixed-rate / fixed-count HTTP/1.1 POST load generator")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Open loop: a fixed request rate, latency from the scheduled send time.
    Rate {
        /// Target URL, e.g. http://127.0.0.1:8200/get-secret-value
        #[arg(long)]
        url: String,
        /// Request body (sent as application/json).
        #[arg(long)]
        body: String,
        /// Requests per second, over all connections.
        #[arg(long)]
        rate: f64,
        /// Measured duration in seconds.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Seconds of load before measuring (results discarded).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Closed loop: N requests with C in flight; `{n}` in the body is replaced by 0..N.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        body_template: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

struct Target {
    addr: String,
    host: String,
    path: String,
}

fn parse_url(url: &str) -> Target {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported: {url}"));
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Target {
        addr: hostport.to_string(),
        host: hostport.to_string(),
        path: path.to_string(),
    }
}

/// One keep-alive HTTP/1.1 connection that sends a request and reads one response.
struct Conn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new() -> Self {
        Conn {
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Send `request` and return the response status; reconnects as needed.
    async fn roundtrip(&mut self, target: &Target, request: &[u8]) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&target.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let result = self.exchange(request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(request).await?;
        // Read until the end of the headers.
        let header_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(invalid)?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let mut content_length = None;
        let mut close = false;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        let len = content_length.ok_or_else(|| invalid("response without Content-Length"))?;
        while self.buf.len() < header_end + len {
            read_more(stream, &mut self.buf).await?;
        }
        self.buf.drain(..header_end + len);
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

fn invalid<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn build_request(target: &Target, body: &str) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nUser-Agent: coffer-bench-loadgen\r\nContent-Length: {}\r\n\r\n{}",
        target.path,
        target.host,
        body.len(),
        body
    )
    .into_bytes()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0 // µs → ms
}

#[derive(Default)]
struct ConnResult {
    latencies_us: Vec<u64>,
    ok: u64,
    errors: u64,
    /// Requests still unsent when the overrun limit was hit.
    dropped: u64,
    last_done: Option<Instant>,
}

async fn run_rate(
    url: String,
    body: String,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
) {
    assert!(rate > 0.0 && connections > 0);
    let target = Arc::new(parse_url(&url));
    let request = Arc::new(build_request(&target, &body));
    let interval = Duration::from_secs_f64(connections as f64 / rate); // per connection
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);
    // A server that cannot keep up is given this long to catch up; requests
    // still unsent then are reported as dropped.
    let give_up = end + Duration::from_secs(10);

    let mut tasks = Vec::new();
    for k in 0..connections {
        let (target, request) = (target.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new();
            let mut res = ConnResult::default();
            let mut due = start + Duration::from_secs_f64(k as f64 / rate);
            while due < end {
                if Instant::now() > give_up {
                    res.dropped +=
                        ((end - due).as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
                    break;
                }
                // If the previous response came back after this request was
                // due, the server made us late: charge it from `due`.
                // Otherwise wait for the timer, whose ~1 ms granularity is the
                // client's imprecision, and measure from the actual send.
                let origin = if Instant::now() >= due {
                    due
                } else {
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                };
                let outcome = conn.roundtrip(&target, &request).await;
                let done = Instant::now();
                if due >= measure_from {
                    res.last_done = Some(done);
                    match outcome {
                        Ok(status) if (200..300).contains(&status) => {
                            res.ok += 1;
                            res.latencies_us
                                .push(done.duration_since(origin).as_micros() as u64);
                        }
                        _ => res.errors += 1,
                    }
                }
                due += interval;
            }
            res
        }));
    }
    let mut all = Vec::new();
    let (mut ok, mut errors, mut dropped, mut last_done) = (0, 0, 0, measure_from);
    for t in tasks {
        let r = t.await.expect("connection task");
        all.extend(r.latencies_us);
        ok += r.ok;
        errors += r.errors;
        dropped += r.dropped;
        last_done = last_done.max(r.last_done.unwrap_or(measure_from));
    }
    all.sort_unstable();
    // Completed requests over the time it actually took to complete them
    // (longer than `duration` when the server fell behind).
    let elapsed = last_done
        .duration_since(measure_from)
        .as_secs_f64()
        .max(duration);
    println!(
        "{{\"mode\":\"rate\",\"target_rps\":{rate:.1},\"achieved_rps\":{:.1},\"duration_s\":{duration},\"connections\":{connections},\"ok\":{ok},\"errors\":{errors},\"dropped\":{dropped},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
        ok as f64 / elapsed,
        percentile(&all, 50.0),
        percentile(&all, 90.0),
        percentile(&all, 99.0),
        percentile(&all, 99.9),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
}

async fn run_load(url: String, template: String, count: u64, concurrency: usize) {
    let target = Arc::new(parse_url(&url));
    let template = Arc::new(template);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, template, next) = (target.clone(), template.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new();
            let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None::<String>);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let body = template.replace("{n}", &n.to_string());
                match conn
                    .roundtrip(&target, &build_request(&target, &body))
                    .await
                {
                    Ok(status) if (200..300).contains(&status) => ok += 1,
                    other => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{other:?}"));
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    for t in tasks {
        let (o, e, f) = t.await.expect("load task");
        ok += o;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"load\",\"count\":{count},\"ok\":{ok},\"errors\":{errors},\"seconds\":{secs:.2},\"rate_per_s\":{:.1},\"first_error\":{:?}}}",
        ok as f64 / secs,
        first_error.unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    match Args::parse().mode {
        Mode::Rate {
            url,
            body,
            rate,
            duration,
            warmup,
            connections,
        } => run_rate(url, body, rate, duration, warmup, connections).await,
        Mode::Load {
            url,
            body_template,
            count,
            concurrency,
        } => run_load(url, body_template, count, concurrency).await,
    }
}
