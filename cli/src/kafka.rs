//! `recon publish` and `recon stream`: a generated day to a Kafka-protocol broker, and the
//! broker's records into the index through a consumer group (docs/kafka.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use recon_runtime::kafka::{Connection, StreamOptions, indexer, parse_property};
use recon_runtime::run::Problems;
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

use crate::commands::KafkaArgs;
use crate::{out, outln};

fn connection(args: &KafkaArgs) -> Result<Connection> {
    let mut c = Connection::new(&args.brokers);
    for p in &args.properties {
        c.properties
            .push(parse_property(p).map_err(|reason| Error::InvalidConfig {
                name: "--kafka-config".into(),
                reason,
            })?);
    }
    Ok(c)
}

/// `recon publish`: records the broker did not take are problems (exit 3).
pub async fn publish(data: &Path, args: &KafkaArgs, json: bool) -> Result<Problems> {
    let report = recon_runtime::kafka::publish(data, &connection(args)?).await?;
    if json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        out!("{}", report.table());
    }
    Ok(if report.failed > 0 {
        vec![format!(
            "{} of {} records were not delivered to {} (first: {}): publish again; the index \
             absorbs the records already sent",
            report.failed,
            report.sent_total(),
            report.brokers,
            report.errors.first().map_or("", String::as_str)
        )]
    } else {
        Vec::new()
    })
}

/// Raises `stop` on SIGINT or SIGTERM.
fn stop_on_signal(stop: Arc<AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT", e))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!(
            "recon stream: stopping (finishing the batch in hand, committing, leaving the group)"
        );
        stop.store(true, Ordering::SeqCst);
    });
    Ok(())
}

/// `recon stream`: consumes until a signal (or idle), then compacts a local index.
pub async fn stream(
    data: Option<PathBuf>,
    args: &KafkaArgs,
    opts: StreamOptions,
    json: bool,
) -> Result<()> {
    let conn = connection(args)?;
    let backend = Backend::from_data_or_env(data).await?;
    let handler = indexer(&backend).await?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(stop.clone())?;
    let report = tokio::task::spawn_blocking(move || {
        recon_runtime::kafka::stream(&conn, &opts, &handler, &stop)
    })
    .await
    .map_err(|e| Error::Invariant(format!("the consumer stopped abnormally: {e}")))??;
    // The function (and its hold on a local index) is gone: fold the log into a snapshot.
    #[allow(irrefutable_let_patterns)] // the only backend of a build without `aws`
    if let Backend::Local(dir) = &backend {
        LocalTransactionIndex::open(dir)?.compact()?;
    }
    if json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        out!("{}", report.table());
    }
    Ok(())
}
