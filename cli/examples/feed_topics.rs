//! Feeds `topics/*.jsonl` of a data directory into its local TransactionIndex, as `recon run`
//! does, and prints the counts: `cargo run --release -p recon-cli --example feed_topics -- DIR`.

use std::path::PathBuf;

fn main() -> recon_shared::Result<()> {
    let data = std::env::args().nth(1).map(PathBuf::from).ok_or_else(|| {
        recon_shared::Error::InvalidConfig {
            name: "DIR".into(),
            reason: "usage: feed_topics DIR".into(),
        }
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
    let report = rt.block_on(recon_runtime::stream_feed::feed_topics(&data))?;
    print!("{}", report.table());
    Ok(())
}
