//! Support for the tests that run the AWS adapters against a moto server on 127.0.0.1
//! (`scripts/with-moto.sh`, which `make test` and `.ci/run` always use).

use std::sync::atomic::{AtomicU32, Ordering};

use super::{AwsSettings, sdk_config};

/// Where the moto server answers (`http://127.0.0.1:{port}`); set by `scripts/with-moto.sh`.
pub const MOTO_ENDPOINT_ENV: &str = "RECON_TEST_MOTO_ENDPOINT";

/// The SDK configuration for the moto server, or `None` when no server was started: the
/// test is then skipped with a loud message — except under CI (`CI` set), where a missing
/// server fails the test, so the suite can never pass without running these tests.
pub async fn moto(test: &str) -> Option<aws_config::SdkConfig> {
    match std::env::var(MOTO_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.is_empty() => {
            Some(sdk_config(&AwsSettings::local(&endpoint)).await)
        }
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {MOTO_ENDPOINT_ENV} is not set under CI; run the suite through scripts/with-moto.sh"
            );
            eprintln!(
                "SKIPPED {test}: no moto server ({MOTO_ENDPOINT_ENV} unset). \
                 Run `scripts/with-moto.sh cargo nextest run --workspace --all-features` (or `make test`)."
            );
            None
        }
    }
}

/// A name no other test of this run uses: `{prefix}-{pid}-{n}-{nanos}`, lowercase (a valid
/// bucket, table, database or state machine name).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .to_ascii_lowercase()
}
