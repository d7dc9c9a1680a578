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
    pub source_id: SourceId,
    pub business_date: BusinessDate,
    pub version: u32,
    /// File names in manifest order.
    pub files: Vec<String>,
}

/// Decodes an S3 event key (`+` for space, `%XX` escapes).
pub fn decode_s3_key(raw: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::InvalidManifest {
                        key: raw.chars().take(200).collect(),
                        reason: "bad percent escape in event key".into(),
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::InvalidManifest {
        key: raw.chars().take(200).collect(),
        reason: "event key is not UTF-8".into(),
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
