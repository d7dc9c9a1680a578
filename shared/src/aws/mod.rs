//! AWS adapters of the ports (cargo feature `aws`): S3 ([`s3::S3Store`]), DynamoDB
//! ([`dynamo`]: Manifests, Runs, TransactionIndex), the Glue Data Catalog ([`glue::GlueCatalog`])
//! a small Step Functions client for the daily close ([`sfn::CloseClient`]) and the PII key
//! from Secrets Manager ([`secrets::pii_key`]).
//!
//! Clients are built once per process from one [`aws_config::SdkConfig`] ([`sdk_config`]): the
//! region and credentials of the default provider chain, standard-mode retries (throttling,
//! 5xx and transient network errors are retried with exponential backoff and jitter) and,
//! for local servers, an endpoint override ([`crate::config::AWS_ENDPOINT_URL_ENV`]).

/// The SDK crates, for code that builds clients without depending on them itself.
pub use {
    aws_config, aws_sdk_dynamodb, aws_sdk_glue, aws_sdk_s3, aws_sdk_secretsmanager, aws_sdk_sfn,
};

pub mod dynamo;
mod errors;
pub mod glue;
pub mod lambda;
pub mod s3;
pub mod secrets;
pub mod sfn;
pub mod testing;

pub use errors::{ErrorClass, Failure, classify};
pub(crate) use errors::{sdk_error, transient_error};

use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

use crate::config;
use crate::error::{Error, Result};

/// Region used when neither the environment nor a profile names one (the Lambda runtime always
/// sets `AWS_REGION`).
pub const DEFAULT_REGION: &str = "eu-central-1";
/// Attempts per SDK call (first try included) unless [`config::AWS_MAX_ATTEMPTS_ENV`] says.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How the SDK clients are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// Endpoint override for every service (moto, LocalStack); `None` on AWS.
    pub endpoint_url: Option<String>,
    /// Region; `None`: the default provider chain's. [`AwsSettings::from_settings`] always
    /// names one (the default chain finds none outside AWS without a profile).
    pub region: Option<String>,
    /// Standard-mode retry: attempts per call, first try included.
    pub max_attempts: u32,
    /// First retry delay (exponential, with jitter, up to `max_backoff`).
    pub initial_backoff: Duration,
    /// Longest delay between two retries.
    pub max_backoff: Duration,
    /// Fixed test credentials instead of the default chain (local servers only).
    pub test_credentials: bool,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            test_credentials: false,
        }
    }
}

impl AwsSettings {
    /// From the process's settings: [`config::AWS_ENDPOINT_URL_ENV`],
    /// [`config::AWS_MAX_ATTEMPTS_ENV`] and the region ([`config::AWS_REGION_ENV`], else
    /// [`DEFAULT_REGION`]).
    pub fn from_settings(settings: &config::Settings) -> Self {
        let d = Self::default();
        Self {
            endpoint_url: settings.aws_endpoint_url.clone(),
            region: Some(
                settings
                    .aws_region
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REGION.into()),
            ),
            max_attempts: settings.aws_max_attempts.unwrap_or(d.max_attempts),
            ..d
        }
    }

    /// Settings for a local server at `endpoint` (tests): test credentials, quick retries.
    pub fn local(endpoint: &str) -> Self {
        Self {
            endpoint_url: Some(endpoint.to_string()),
            region: Some(DEFAULT_REGION.into()),
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            test_credentials: true,
            ..Self::default()
        }
    }

    /// The SDK's standard-mode retry configuration of these settings.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }
}

/// The shared SDK configuration (load it once per process and build every client from it).
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(settings.retry_config());
    if let Some(r) = &settings.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if settings.test_credentials {
        loader = loader.test_credentials();
    }
    loader.load().await
}

/// Backoff of the adapters' own retry loops (unprocessed batch items), beside the SDK's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry round; it doubles each round.
    pub initial: Duration,
    /// Longest delay between two rounds.
    pub max: Duration,
    /// Rounds in a row that make no progress before giving up.
    pub max_stalled_rounds: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            max_stalled_rounds: 10,
        }
    }
}

impl Backoff {
    /// Delay before retry round `round` (0-based): initial·2^round, capped.
    pub fn delay(&self, round: u32) -> Duration {
        self.initial
            .checked_mul(1u32 << round.min(16))
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// Sends `items` in batches of at most `max_batch` with `send`, which answers the items the
/// service left unprocessed (DynamoDB `UnprocessedItems` / `UnprocessedKeys`); those are sent
/// again after a growing delay until none is left. Fails when `backoff.max_stalled_rounds`
/// rounds in a row leave everything unprocessed. Returns what the batches produced.
pub async fn drain_batches<T, R, F, Fut>(
    items: Vec<T>,
    max_batch: usize,
    backoff: Backoff,
    mut send: F,
) -> Result<Vec<R>>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(Vec<R>, Vec<T>)>>,
{
    let mut out = Vec::new();
    let mut pending: std::collections::VecDeque<T> = items.into();
    let mut stalled = 0u32;
    let mut round = 0u32;
    while !pending.is_empty() {
        let n = pending.len().min(max_batch.max(1));
        let batch: Vec<T> = pending.drain(..n).collect();
        let (done, unprocessed) = send(batch).await?;
        out.extend(done);
        if unprocessed.is_empty() {
            stalled = 0;
            round = 0;
            continue;
        }
        if unprocessed.len() == n {
            stalled += 1;
            if stalled >= backoff.max_stalled_rounds {
                return Err(Error::Remote {
                    service: "dynamodb",
                    operation: "batch",
                    message: format!(
                        "{} items still unprocessed after {stalled} rounds; the table is throttled",
                        unprocessed.len()
                    ),
                });
            }
        } else {
            stalled = 0;
        }
        // Unprocessed items go first in the next batch, after a pause.
        for item in unprocessed.into_iter().rev() {
            pending.push_front(item);
        }
        tokio::time::sleep(backoff.delay(round)).await;
        round = round.saturating_add(1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A fake service that leaves every other item unprocessed on its first calls.
    #[tokio::test]
    async fn unprocessed_items_are_sent_again_until_done() -> Result<()> {
        let calls: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());
        let backoff = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            max_stalled_rounds: 3,
        };
        let out = drain_batches((0..60).collect(), 25, backoff, |batch: Vec<u32>| {
            let n = {
                let mut c = calls
                    .lock()
                    .map_err(|_| Error::Invariant("poisoned".into()));
                match c.as_mut() {
                    Ok(c) => {
                        c.push(batch.clone());
                        c.len()
                    }
                    Err(_) => 0,
                }
            };
            async move {
                if n <= 3 {
                    let (odd, even): (Vec<u32>, Vec<u32>) =
                        batch.into_iter().partition(|x| x % 2 == 1);
                    Ok((even, odd))
                } else {
                    Ok((batch, Vec::new()))
                }
            }
        })
        .await?;
        let mut got = out.clone();
        got.sort_unstable();
        assert_eq!(got, (0..60).collect::<Vec<_>>(), "every item written once");
        let calls = calls
            .into_inner()
            .map_err(|_| Error::Invariant("poisoned".into()))?;
        assert!(calls.iter().all(|b| b.len() <= 25));
        // The first batch's odd items lead the second batch.
        assert_eq!(&calls[1][..3], &[1, 3, 5]);
        assert!(calls.len() >= 4);
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_that_never_goes_through_fails_after_the_stalled_rounds() {
        let backoff = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            max_stalled_rounds: 4,
        };
        let mut calls = 0;
        let r = drain_batches(vec![1u8, 2, 3], 25, backoff, |batch: Vec<u8>| {
            calls += 1;
            async move { Ok::<(Vec<u8>, Vec<u8>), Error>((Vec::new(), batch)) }
        })
        .await;
        assert!(matches!(r, Err(Error::Remote { .. })), "{r:?}");
        assert_eq!(calls, 4);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            max_stalled_rounds: 1,
        };
        let d: Vec<u128> = (0..5).map(|r| b.delay(r).as_millis()).collect();
        assert_eq!(d, [50, 100, 200, 300, 300]);
    }

    #[test]
    fn local_settings_retry_in_standard_mode_quickly() {
        let s = AwsSettings::local("http://127.0.0.1:1");
        let r = s.retry_config();
        assert_eq!(r.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(r.max_attempts(), DEFAULT_MAX_ATTEMPTS);
        assert_eq!(r.initial_backoff(), Duration::from_millis(5));
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert!(s.test_credentials);
    }
}
