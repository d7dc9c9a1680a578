//! `recon serve`: the query API (the `query-api` router) over HTTP/1.1 on 127.0.0.1.
//!
//! The bucket is the data directory; the TransactionIndex is opened read-only and follows the
//! indexer's writes, so `recon serve` can run beside `recon run`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use recon_shared::local::{LocalBreakLog, LocalStore};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::{Error, Result};
use tokio::net::TcpListener;

struct State {
    store: LocalStore,
    index: LocalTransactionIndex,
    breaks: LocalBreakLog,
    /// Who acts on breaks through this server (the person running it: `--actor`).
    actor: String,
}

async fn answer(req: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    // The body, up to the API's limit (a larger one is refused by the router).
    let limited = http_body_util::Limited::new(req.into_body(), query_api::MAX_BODY + 1);
    let body = match http_body_util::BodyExt::collect(limited).await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => vec![0; query_api::MAX_BODY + 1],
    };
    let r = query_api::Request {
        method,
        path,
        query,
        body,
        actor: Some(state.actor.clone()),
    };
    let out = query_api::route(&r, &state.store, &state.index, &state.breaks).await;
    let mut resp = Response::new(Full::new(Bytes::from(out.bytes())));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(out.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = out.allow {
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    }
    resp
}

/// Binds 127.0.0.1:`port` (0 picks a free port).
pub async fn bind(port: u16) -> Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::io(format!("127.0.0.1:{port}"), e))
}

/// Serves the API on a bound listener until the task is dropped; break actions are
/// `actor`'s.
pub async fn serve_on(listener: TcpListener, data: &Path, actor: &str) -> Result<()> {
    let state = Arc::new(State {
        store: LocalStore::new(data),
        index: LocalTransactionIndex::open_read_only(data)?,
        breaks: LocalBreakLog::new(data),
        actor: actor.to_string(),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("recon serve: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(req, state).await) }
            });
            // A client that goes away mid-request is not an error of the server.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `recon serve --data DIR --port P [--actor NAME]`.
pub async fn serve(data: &Path, port: u16, actor: &str) -> Result<()> {
    let listener = bind(port).await?;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    if let Some(a) = addr {
        crate::outln!("query API on http://{a} (data {})", data.display());
    }
    serve_on(listener, data, actor).await
}
