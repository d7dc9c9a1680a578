// Timings and rates (seconds, requests per second), never money.
#![allow(
    clippy::float_arithmetic,
    clippy::disallowed_types,
    clippy::disallowed_methods
)]

//! `recon bench breaks`: `POST /breaks/{id}/actions` under load on 127.0.0.1 — `recon serve`
//! in this process, `clients` keep-alive HTTP/1.1 connections each posting `requests`
//! comments one after the other (a closed loop, as wrk does), spread over the close's breaks
//! and, in a second round, all on one break (every writer contends for its next `seq`).
//! Prints throughput and the latency percentiles each round measured.

use std::path::Path;
use std::time::{Duration, Instant};

use recon_shared::close::breaks as work;
use recon_shared::ids::BusinessDate;
use recon_shared::local::{LocalBreakLog, LocalStore};
use recon_shared::{Error, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::outln;

/// One client: `requests` POSTs of comments on `ids` (round robin) over one connection;
/// the latency of each.
async fn client(
    addr: std::net::SocketAddr,
    ids: Vec<String>,
    date: BusinessDate,
    requests: usize,
    who: usize,
) -> Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::io(addr.to_string(), e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io("nodelay", e))?;
    let mut conn = BufReader::new(stream);
    let mut out = Vec::with_capacity(requests);
    for i in 0..requests {
        let id = &ids[(who + i) % ids.len()];
        let body = serde_json::json!({
            "business_date": date.to_string(),
            "action": "COMMENT",
            "text": format!("client {who} request {i}"),
        })
        .to_string();
        let req = format!(
            "POST /breaks/{id}/actions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        conn.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| Error::io("send", e))?;
        let (status, len) = read_head(&mut conn).await?;
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body)
            .await
            .map_err(|e| Error::io("receive", e))?;
        out.push(started.elapsed());
        if status != 201 {
            return Err(Error::Invariant(format!(
                "POST /breaks/{id}/actions answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
    Ok(out)
}

/// The status and `Content-Length` of a response head.
async fn read_head(conn: &mut BufReader<TcpStream>) -> Result<(u16, usize)> {
    let (mut status, mut len) = (0u16, 0usize);
    let mut line = String::new();
    loop {
        line.clear();
        let n = conn
            .read_line(&mut line)
            .await
            .map_err(|e| Error::io("receive", e))?;
        if n == 0 {
            return Err(Error::Invariant("the server closed the connection".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, len));
        }
        if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
            status = rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs both rounds on the closed world in `data` (its close of `date`).
pub async fn bench_breaks(
    data: &Path,
    date: BusinessDate,
    clients: usize,
    requests: usize,
) -> Result<()> {
    let store = LocalStore::new(data);
    let log = LocalBreakLog::new(data);
    let ids: Vec<String> = work::list(&store, &log, &work::FactsCache::default(), date, None)
        .await?
        .into_iter()
        .map(|v| v.facts.break_id)
        .collect();
    if ids.is_empty() {
        return Err(Error::Invariant(format!(
            "the close of {date} holds no break"
        )));
    }
    let listener = crate::serve::bind(0).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", e))?;
    let root = data.to_path_buf();
    let server =
        tokio::spawn(async move { crate::serve::serve_on(listener, &root, "bench").await });
    outln!(
        "POST /breaks/{{id}}/actions on 127.0.0.1: {clients} keep-alive clients x {requests} requests, recon serve in-process ({} breaks of {date})",
        ids.len()
    );
    outln!(
        "{:<22} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "round",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    for (round, spread) in [
        ("spread over breaks", true),
        ("one break, contended", false),
    ] {
        let targets: Vec<String> = if spread {
            ids.clone()
        } else {
            vec![ids[0].clone()]
        };
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            tasks.push(tokio::spawn(client(
                addr,
                targets.clone(),
                date,
                requests,
                c,
            )));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| Error::Invariant(e.to_string()))??);
        }
        let took = started.elapsed();
        all.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        outln!(
            "{:<22} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            round,
            all.len(),
            all.len() as f64 / took.as_secs_f64(),
            ms(percentile(&all, 0.50)),
            ms(percentile(&all, 0.99)),
            ms(percentile(&all, 1.0)),
        );
    }
    server.abort();
    let (breaks, events, broken) = work::verify_all(&log).await?;
    outln!(
        "{breaks} breaks, {events} events, {} broken chains",
        broken.len()
    );
    Ok(())
}
