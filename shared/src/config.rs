//! Configuration of a process: every environment key is a documented constant, and
//! [`Settings`] reads them all once, at start-up, through a lookup function
//! ([`Settings::from_env`] on a real process, [`Settings::from_lookup`] in tests). A value that
//! is set but unreadable fails start-up naming the key; a missing required one fails when the
//! port that needs it is built, naming the key.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::pii::{PII_KEY_ENV, PiiKey};

/// Directory that acts as the bucket and holds the local tables (`state/`). Set it to run a
/// function binary against local storage (`cargo lambda watch`, the local runner).
pub const DATA_DIR_ENV: &str = "RECON_DATA_DIR";

/// Largest partition input (bytes) `plan-partitions` routes to Lambda; larger ones take the
/// EMR step. Optional; default [`crate::close::plan::DEFAULT_LAMBDA_MAX_INPUT_BYTES`].
pub const LAMBDA_MAX_INPUT_BYTES_ENV: &str = "RECON_LAMBDA_MAX_INPUT_BYTES";

// Keys `template.yaml` sets on every function (the AWS adapters read them; the local runner
// does not need them). `scripts/check_infra.py` fails when the template sets a `RECON_*` key
// that is not declared here or beside the code that reads it.

/// Name of the deployment (`dev`, `prod`): the `Environment` dimension of the EMF metrics.
pub const ENVIRONMENT_ENV: &str = "RECON_ENVIRONMENT";

/// The bucket of design.md §2 (`landing/`, `curated/`, `index/`, `runs/` …).
pub const BUCKET_ENV: &str = "RECON_BUCKET";

/// DynamoDB table names (design.md §7).
pub const TRANSACTION_INDEX_TABLE_ENV: &str = "RECON_TRANSACTION_INDEX_TABLE";
/// The Manifests table: one item per delivered file (`source_id#business_date`, `file`) with
/// its status, checksum, counts and refusal reason.
pub const MANIFESTS_TABLE_ENV: &str = "RECON_MANIFESTS_TABLE";
/// The Runs table: one item per daily close partition (`business_date`, `run_id#partition`)
/// with its status, counts, timings and error.
pub const RUNS_TABLE_ENV: &str = "RECON_RUNS_TABLE";
/// The BreakActions table: the hash-chained events of breaks worked by people (design.md §12).
pub const BREAK_ACTIONS_TABLE_ENV: &str = "RECON_BREAK_ACTIONS_TABLE";
/// The Rules table: fee rules and matching tolerances (design.md §7).
pub const RULES_TABLE_ENV: &str = "RECON_RULES_TABLE";

/// Function `manifest-validator` invokes asynchronously (`InvocationType=Event`) with each
/// `NormalizeRequest`; failures after Lambda's retries land in the normalizer's on-failure
/// queue. Set on `manifest-validator` only.
pub const NORMALIZER_FUNCTION_ENV: &str = "RECON_NORMALIZER_FUNCTION";

// AWS adapters (feature `aws`; `crate::aws`).

/// Endpoint of every AWS service the adapters call, for a local server (moto in the tests,
/// LocalStack). Optional; unset on AWS, where the SDK resolves the regional endpoints.
pub const AWS_ENDPOINT_URL_ENV: &str = "RECON_AWS_ENDPOINT_URL";

/// Attempts per AWS call in the SDK's standard retry mode (first try included), 1 to 20.
/// Optional; default [`crate::aws::DEFAULT_MAX_ATTEMPTS`] when built with the `aws` feature.
pub const AWS_MAX_ATTEMPTS_ENV: &str = "RECON_AWS_MAX_ATTEMPTS";

/// Objects larger than this many bytes are uploaded to S3 in parts. Optional; default
/// 64 MiB.
pub const S3_MULTIPART_THRESHOLD_ENV: &str = "RECON_S3_MULTIPART_THRESHOLD";

/// Size of one multipart upload part in bytes (S3 needs at least 5 MiB but for the last
/// part). Optional; default 16 MiB.
pub const S3_PART_SIZE_ENV: &str = "RECON_S3_PART_SIZE";

/// The Secrets Manager secret (name or ARN) whose `SecretString` is the PII tokenization key:
/// on AWS the functions read it at start ([`crate::select::Backend::pii_key`]), so the key is
/// never in a function's configuration.
pub const PII_SECRET_ENV: &str = "RECON_PII_SECRET_ID";

/// ARN of the daily close state machine, for `recon ops` (not set on the functions).
pub const DAILY_CLOSE_ARN_ENV: &str = "RECON_DAILY_CLOSE_ARN";

/// The AWS region of the SDK's own environment (the Lambda runtime sets it), then its older
/// name; neither set: [`crate::aws::DEFAULT_REGION`] when built with the `aws` feature.
pub const AWS_REGION_ENV: &str = "AWS_REGION";
/// The older name of the SDK's region variable, read when [`AWS_REGION_ENV`] is unset.
pub const AWS_DEFAULT_REGION_ENV: &str = "AWS_DEFAULT_REGION";

/// Everything a process takes from its environment, read once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// [`ENVIRONMENT_ENV`]: the `Environment` dimension of the metrics; `local` when unset.
    pub environment: String,
    /// [`BUCKET_ENV`]: the AWS adapters over this bucket.
    pub bucket: Option<String>,
    /// [`DATA_DIR_ENV`]: the local adapters over this directory (when no bucket is set).
    pub data_dir: Option<PathBuf>,
    /// [`TRANSACTION_INDEX_TABLE_ENV`], [`MANIFESTS_TABLE_ENV`], [`RUNS_TABLE_ENV`].
    pub transaction_index_table: Option<String>,
    /// [`MANIFESTS_TABLE_ENV`]: the table of delivered files and their validation status.
    pub manifests_table: Option<String>,
    /// [`RUNS_TABLE_ENV`]: the table of daily close runs per partition.
    pub runs_table: Option<String>,
    /// [`BREAK_ACTIONS_TABLE_ENV`]: the events of breaks worked by people.
    pub break_actions_table: Option<String>,
    /// [`RULES_TABLE_ENV`]: the versions of fee rules, tolerances and calendars.
    pub rules_table: Option<String>,
    /// [`NORMALIZER_FUNCTION_ENV`] (`manifest-validator` on AWS).
    pub normalizer_function: Option<String>,
    /// [`DAILY_CLOSE_ARN_ENV`] (`recon ops`).
    pub daily_close_arn: Option<String>,
    /// [`LAMBDA_MAX_INPUT_BYTES_ENV`] (`plan-partitions`).
    pub lambda_max_input_bytes: Option<u64>,
    /// [`PII_KEY_ENV`], checked (at least 16 bytes) when set.
    pub pii_key: Option<PiiKey>,
    /// [`PII_SECRET_ENV`]: the Secrets Manager secret holding the key (AWS).
    pub pii_secret: Option<String>,
    /// [`AWS_ENDPOINT_URL_ENV`].
    pub aws_endpoint_url: Option<String>,
    /// [`AWS_REGION_ENV`], else [`AWS_DEFAULT_REGION_ENV`].
    pub aws_region: Option<String>,
    /// [`AWS_MAX_ATTEMPTS_ENV`], 1 to 20.
    pub aws_max_attempts: Option<u32>,
    /// [`S3_MULTIPART_THRESHOLD_ENV`] and [`S3_PART_SIZE_ENV`] (positive), in bytes.
    pub s3_multipart_threshold: Option<u64>,
    /// [`S3_PART_SIZE_ENV`]: bytes per multipart upload part (positive).
    pub s3_part_size: Option<usize>,
}

impl Settings {
    /// From the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// From `lookup` (the value of a key, `None` when unset). An empty or blank value counts
    /// as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let number = |key: &str, what: &str| -> Result<Option<u64>> {
            get(key)
                .map(|v| v.trim().parse::<u64>().map_err(|_| invalid(key, what)))
                .transpose()
        };
        let in_range = |key: &str, what: &str, ok: &dyn Fn(u64) -> bool| -> Result<Option<u64>> {
            match number(key, what)? {
                Some(n) if !ok(n) => Err(invalid(key, what)),
                n => Ok(n),
            }
        };
        let attempts = in_range(
            AWS_MAX_ATTEMPTS_ENV,
            "expected a number of attempts from 1 to 20",
            &|n| (1..=20).contains(&n),
        )?;
        let part_size = in_range(
            S3_PART_SIZE_ENV,
            "expected a positive part size in bytes",
            &|n| n > 0 && usize::try_from(n).is_ok(),
        )?;
        Ok(Self {
            environment: get(ENVIRONMENT_ENV).unwrap_or_else(|| "local".into()),
            bucket: get(BUCKET_ENV),
            data_dir: get(DATA_DIR_ENV).map(PathBuf::from),
            transaction_index_table: get(TRANSACTION_INDEX_TABLE_ENV),
            manifests_table: get(MANIFESTS_TABLE_ENV),
            runs_table: get(RUNS_TABLE_ENV),
            break_actions_table: get(BREAK_ACTIONS_TABLE_ENV),
            rules_table: get(RULES_TABLE_ENV),
            normalizer_function: get(NORMALIZER_FUNCTION_ENV),
            daily_close_arn: get(DAILY_CLOSE_ARN_ENV),
            lambda_max_input_bytes: number(
                LAMBDA_MAX_INPUT_BYTES_ENV,
                "expected a whole number of bytes",
            )?,
            pii_key: get(PII_KEY_ENV)
                .map(|v| PiiKey::new(v.as_bytes()))
                .transpose()?,
            pii_secret: get(PII_SECRET_ENV),
            aws_endpoint_url: get(AWS_ENDPOINT_URL_ENV),
            aws_region: get(AWS_REGION_ENV).or_else(|| get(AWS_DEFAULT_REGION_ENV)),
            aws_max_attempts: attempts.and_then(|n| u32::try_from(n).ok()),
            s3_multipart_threshold: number(
                S3_MULTIPART_THRESHOLD_ENV,
                "expected a whole number of bytes",
            )?,
            s3_part_size: part_size.and_then(|n| usize::try_from(n).ok()),
        })
    }

    /// A value the caller cannot do without: missing, it fails naming `key`.
    pub fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str> {
        value.as_deref().ok_or_else(|| Error::InvalidConfig {
            name: key.to_string(),
            reason: "required environment variable is not set".into(),
        })
    }

    /// The tokenization key ([`PII_KEY_ENV`]), required by the functions that see user ids
    /// when no secret names it ([`PII_SECRET_ENV`], read by [`crate::select::Backend::pii_key`]).
    pub fn pii_key(&self) -> Result<PiiKey> {
        self.pii_key.clone().ok_or_else(|| Error::InvalidConfig {
            name: PII_KEY_ENV.into(),
            reason: format!(
                "not set (on AWS, set {PII_SECRET_ENV} to the secret that holds the key)"
            ),
        })
    }
}

fn invalid(key: &str, reason: &str) -> Error {
    Error::InvalidConfig {
        name: key.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings> {
        Settings::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    fn rejected(vars: &[(&str, &str)]) -> String {
        match parse(vars) {
            Err(e @ Error::InvalidConfig { .. }) => e.to_string(),
            other => format!("not refused: {other:?}"),
        }
    }

    #[test]
    fn nothing_set_gives_the_defaults() -> Result<()> {
        let s = parse(&[])?;
        assert_eq!(s.environment, "local");
        assert!(s.bucket.is_none() && s.data_dir.is_none() && s.pii_key.is_none());
        assert!(s.aws_max_attempts.is_none() && s.s3_part_size.is_none());
        assert!(s.lambda_max_input_bytes.is_none());
        let missing = Settings::required(&s.runs_table, RUNS_TABLE_ENV);
        assert!(missing.is_err_and(|e| e.to_string().contains(RUNS_TABLE_ENV)));
        assert!(
            s.pii_key()
                .is_err_and(|e| e.to_string().contains(PII_KEY_ENV))
        );
        Ok(())
    }

    #[test]
    fn every_key_is_read() -> Result<()> {
        let s = parse(&[
            (ENVIRONMENT_ENV, "prod"),
            (BUCKET_ENV, "recon-prod"),
            (DATA_DIR_ENV, "/data"),
            (TRANSACTION_INDEX_TABLE_ENV, "ti"),
            (MANIFESTS_TABLE_ENV, "m"),
            (RUNS_TABLE_ENV, "r"),
            (NORMALIZER_FUNCTION_ENV, "recon-normalizer"),
            (DAILY_CLOSE_ARN_ENV, "arn:close"),
            (LAMBDA_MAX_INPUT_BYTES_ENV, " 1048576 "),
            (PII_KEY_ENV, "0123456789abcdef"),
            (AWS_ENDPOINT_URL_ENV, "http://127.0.0.1:5000"),
            (AWS_DEFAULT_REGION_ENV, "eu-west-1"),
            (AWS_MAX_ATTEMPTS_ENV, "3"),
            (S3_MULTIPART_THRESHOLD_ENV, "10"),
            (S3_PART_SIZE_ENV, "5242880"),
        ])?;
        assert_eq!(s.environment, "prod");
        assert_eq!(s.bucket.as_deref(), Some("recon-prod"));
        assert_eq!(s.data_dir, Some(PathBuf::from("/data")));
        assert_eq!(Settings::required(&s.transaction_index_table, "")?, "ti");
        assert_eq!(Settings::required(&s.manifests_table, "")?, "m");
        assert_eq!(Settings::required(&s.runs_table, "")?, "r");
        assert_eq!(s.normalizer_function.as_deref(), Some("recon-normalizer"));
        assert_eq!(s.daily_close_arn.as_deref(), Some("arn:close"));
        assert_eq!(s.lambda_max_input_bytes, Some(1_048_576));
        assert!(s.pii_key().is_ok());
        assert_eq!(s.aws_endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(s.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.aws_max_attempts, Some(3));
        assert_eq!(s.s3_multipart_threshold, Some(10));
        assert_eq!(s.s3_part_size, Some(5_242_880));
        // `AWS_REGION` wins over its older name; blank values count as unset.
        let s = parse(&[
            (AWS_REGION_ENV, "eu-central-1"),
            (AWS_DEFAULT_REGION_ENV, "eu-west-1"),
            (BUCKET_ENV, " "),
            (AWS_ENDPOINT_URL_ENV, ""),
        ])?;
        assert_eq!(s.aws_region.as_deref(), Some("eu-central-1"));
        assert!(s.bucket.is_none() && s.aws_endpoint_url.is_none());
        Ok(())
    }

    #[test]
    fn unreadable_values_fail_naming_the_key() {
        for (key, value, says) in [
            (AWS_MAX_ATTEMPTS_ENV, "three", "from 1 to 20"),
            (AWS_MAX_ATTEMPTS_ENV, "0", "from 1 to 20"),
            (AWS_MAX_ATTEMPTS_ENV, "21", "from 1 to 20"),
            (S3_PART_SIZE_ENV, "0", "positive part size"),
            (S3_PART_SIZE_ENV, "-5", "positive part size"),
            (S3_MULTIPART_THRESHOLD_ENV, "64MiB", "whole number"),
            (LAMBDA_MAX_INPUT_BYTES_ENV, "1e9", "whole number"),
            (PII_KEY_ENV, "short", "at least 16 bytes"),
        ] {
            let msg = rejected(&[(key, value)]);
            assert!(
                msg.contains(key) && msg.contains(says),
                "{key}={value}: {msg}"
            );
            assert!(
                !msg.contains("short") || key != PII_KEY_ENV,
                "the key is never shown"
            );
        }
    }
}
