//! Ingestion: manifest validation (file level) and normalization (record level).
//!
//! `validate` proves a delivery complete and intact before anything reads its records; files
//! that fail go to `quarantine/` with a `{file}.reason.json` a person can read. `normalize`
//! turns the accepted files into curated Parquet, sends every record it cannot use to
//! `curated/rejects/` with a reason, removes duplicates, and checks
//! `records_in == accepted + rejected + duplicates` for every file.

mod normalize;
mod validate;

pub use normalize::{FileCounts, NormalizeOutcome, normalize, transactions_bank, transactions_key};
pub use validate::{DeliveryStatus, Quarantined, ValidationOutcome, validate};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, SourceId};
use crate::manifest::MANIFEST_FILE;

/// Glue database of every curated and index table.
pub const DATABASE: &str = "recon";

/// What the validator hands to the normalizer: the accepted files of one delivery version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeRequest {
    pub source_id: SourceId,
    pub business_date: BusinessDate,
    pub version: u32,
    /// File names in manifest order.
    pub files: Vec<String>,
}

/// `landing/{source}/{date}/`
pub fn landing_prefix(source: &SourceId, date: BusinessDate) -> String {
    format!("landing/{source}/{date}/")
}

/// `quarantine/{source}/{date}/`
pub fn quarantine_prefix(source: &SourceId, date: BusinessDate) -> String {
    format!("quarantine/{source}/{date}/")
}

pub fn source_config_key(source: &SourceId) -> String {
    format!("config/sources/{source}.json")
}

pub fn fx_key(date: BusinessDate) -> String {
    format!("config/fx/{date}.csv")
}

/// Parses `landing/{source}/{date}/_manifest.json` into its source and date.
pub fn parse_manifest_key(key: &str) -> Result<(SourceId, BusinessDate)> {
    let bad = |reason: &str| Error::InvalidManifest {
        key: key.chars().take(200).collect(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["landing", source, date, file] if *file == MANIFEST_FILE => Ok((
            SourceId::new(*source).map_err(|e| bad(&e.to_string()))?,
            BusinessDate::parse(date).map_err(|e| bad(&e.to_string()))?,
        )),
        _ => Err(bad(
            "not a key of the form landing/{source_id}/{business_date}/_manifest.json",
        )),
    }
}

/// Decodes an S3 event key (`+` for space, `%XX` escapes).
pub fn decode_s3_key(raw: &str) -> Result<String> {
    crate::percent::decode(raw, true).map_err(|e| Error::InvalidManifest {
        key: raw.chars().take(200).collect(),
        reason: match e {
            crate::percent::DecodeError::BadEscape => "bad percent escape in event key",
            crate::percent::DecodeError::NotUtf8 => "event key is not UTF-8",
        }
        .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_are_strict() -> Result<()> {
        let (s, d) = parse_manifest_key("landing/bank_01/2026-11-20/_manifest.json")?;
        assert_eq!(
            (s.as_str(), d.to_string().as_str()),
            ("bank_01", "2026-11-20")
        );
        for bad in [
            "landing/bank_01/2026-11-20/file.csv",
            "landing/bank_01/_manifest.json",
            "landing/../2026-11-20/_manifest.json",
            "landing/bank_01/2026-13-20/_manifest.json",
            "other/bank_01/2026-11-20/_manifest.json",
            "landing/bank_01/2026-11-20/x/_manifest.json",
        ] {
            assert!(parse_manifest_key(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn s3_keys_are_decoded() -> Result<()> {
        assert_eq!(
            decode_s3_key("landing/a+b/%5Fmanifest.json")?,
            "landing/a b/_manifest.json"
        );
        assert!(decode_s3_key("x%zz").is_err());
        assert!(decode_s3_key("x%").is_err());
        Ok(())
    }
}
