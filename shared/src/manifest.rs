//! Delivery manifests (design.md §3): what a source says it sent.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, SourceId};

/// Name of the manifest object that closes a delivery.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// The `_manifest.json` a source writes last into `landing/{source}/{date}/`: the files of
/// one delivery, with what each must hold. Its arrival starts the validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The source (bank or transaction feed) that delivered the files.
    pub source_id: SourceId,
    /// The business date the delivery is for.
    pub business_date: BusinessDate,
    /// 1 or higher; a higher version for the same source and date is a correction that
    /// supersedes the earlier delivery.
    pub version: u32,
    /// When the source produced the manifest (UTC).
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// The delivered files; at least one, each name once.
    pub files: Vec<ManifestFile>,
}

/// One delivered file as the manifest declares it; the validator checks the landed object
/// against every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// File name inside the delivery prefix (no separators, no `..`, not hidden).
    pub name: String,
    /// Exact size of the object in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the object's bytes, 64 hex digits.
    pub sha256: String,
    /// Number of records (data rows or statement lines) the file holds.
    pub record_count: u64,
}

impl Manifest {
    /// Parses and checks a manifest's own consistency (not yet its files).
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::InvalidManifest {
            key: key.to_string(),
            reason,
        };
        // A UTF-8 byte order mark (Windows tools write one) is allowed and skipped (RFC 8259
        // §8.1); a UTF-16 or UTF-32 mark means the wrong encoding, said as such.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
            return Err(bad(
                "it starts with a UTF-16 (or UTF-32) byte order mark: a manifest must be UTF-8 JSON"
                    .into(),
            ));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if m.version == 0 {
            return Err(bad("version must be 1 or higher".into()));
        }
        if m.files.is_empty() {
            return Err(bad("lists no files".into()));
        }
        let mut names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("lists `{}` twice", w[0])));
        }
        for f in &m.files {
            check_file_name(&f.name).map_err(bad)?;
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("sha256 of `{}` is not 64 hex digits", f.name)));
            }
        }
        Ok(m)
    }

    /// The manifest as pretty-printed JSON with a final newline, as sources write it.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }
}

/// A file name must stay inside its delivery prefix: no separators, no `..`, no hidden names.
pub fn check_file_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty()
        || name.len() > 200
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name == MANIFEST_FILE
    {
        return Err(format!(
            "file name `{}` escapes the delivery prefix or is not a plain file name",
            name.escape_default()
        ));
    }
    Ok(())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(name: &str, version: u32) -> String {
        format!(
            r#"{{"source_id":"bank_a","business_date":"2026-11-20","version":{version},
            "generated_at":"2026-11-21T01:10:00Z","files":[{{"name":"{name}","size_bytes":3,
            "sha256":"{}","record_count":1}}]}}"#,
            sha256_hex(b"abc")
        )
    }

    #[test]
    fn parses_the_design_example() -> Result<()> {
        let m = Manifest::parse("k", manifest_json("stmt_001.csv", 1).as_bytes())?;
        assert_eq!(m.files[0].record_count, 1);
        assert_eq!(Manifest::parse("k", &m.to_json()?)?, m);
        Ok(())
    }

    #[test]
    fn refuses_names_that_escape_and_bad_versions() {
        for name in [
            "../x.csv",
            "a/b.csv",
            ".hidden",
            "",
            "_manifest.json",
            "a\\\\b",
        ] {
            let r = Manifest::parse("k", manifest_json(name, 1).as_bytes());
            assert!(
                matches!(r, Err(Error::InvalidManifest { .. })),
                "{name} accepted"
            );
        }
        assert!(Manifest::parse("k", manifest_json("a.csv", 0).as_bytes()).is_err());
        assert!(Manifest::parse("k", b"{not json").is_err());
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped_and_utf16_named() -> Result<()> {
        let json = manifest_json("stmt_001.csv", 1);
        let with_bom = [&b"\xEF\xBB\xBF"[..], json.as_bytes()].concat();
        assert_eq!(
            Manifest::parse("k", &with_bom)?,
            Manifest::parse("k", json.as_bytes())?
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(json.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        match Manifest::parse("k", &utf16) {
            Err(Error::InvalidManifest { reason, .. }) => {
                assert!(reason.contains("UTF-16"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
