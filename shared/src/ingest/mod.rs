//! Ingestion: manifest validation (file level) and normalization (record level).
//!
//! `validate` proves a delivery complete and intact before anything reads its records; files
//! that fail go to `quarantine/` with a `{file}.reason.json` a person can read. `normalize`
//! turns the accepted files into curated Parquet, sends every record it cannot use to
//! `curated/rejects/` with a reason, removes duplicates, and checks
//! `records_in == accepted + rejected + duplicates` for every file.

mod fx;
mod normalize;
mod validate;

pub use fx::{DayFx, load_fx};
pub use normalize::{FileCounts, NormalizeOutcome, normalize};
pub use validate::{DeliveryStatus, Quarantined, ValidationOutcome, validate};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, SourceId};

/// Glue database of every curated and index table.
pub const DATABASE: &str = "recon";

/// What the validator hands to the normalizer: the accepted files of one delivery version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeRequest {
    /// The source that delivered the files.
    pub source_id: SourceId,
    /// The business date of the delivery.
    pub business_date: BusinessDate,
    /// The manifest version validated; a request for a superseded version does nothing.
    pub version: u32,
    /// File names in manifest order.
    pub files: Vec<String>,
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
