//! One record's canonical fields as a CSV or JSON lines reader found them, and what a reject
//! shows of the record: PII and unmapped fields masked.

use std::borrow::Cow;

use super::SourceKind;
use crate::reject::{FieldError, RejectReason, ferr};

/// One record's canonical fields, indexed like the kind's field list.
pub(crate) struct Fields<'a> {
    pub(crate) values: Vec<Option<Cow<'a, str>>>,
    pub(crate) names: &'static [&'static str],
    /// The whole record as parsed, for a reject's masked `raw`.
    pub(crate) whole: Whole<'a>,
}

/// A parsed record with every field it holds, mapped or not.
pub(crate) enum Whole<'a> {
    /// A CSV record and the column of each canonical field.
    Csv {
        record: &'a csv::ByteRecord,
        columns: &'a [Option<usize>],
        delimiter: u8,
    },
    /// A JSON object and the mapping's column (path) of each canonical field.
    Json {
        object: &'a crate::exact_json::Object<'a>,
        columns: &'a [Option<&'a str>],
    },
}

/// Canonical fields that hold personal data: a reject masks their values in `raw` and never
/// quotes them in `detail`. Statement lines have none (banks do not see our users' ids).
pub const PII_FIELDS: &[&str] = &["user_id"];

/// What a reject's `raw` shows in place of a masked value.
pub const MASK: &str = "***";

impl<'a> Fields<'a> {
    pub(crate) fn opt(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values[i]
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn req(&self, name: &str) -> std::result::Result<&str, FieldError> {
        self.opt(name).ok_or_else(|| {
            ferr(
                RejectReason::MissingField,
                format!("`{name}` is empty or missing"),
            )
        })
    }
}

/// A reject's `raw`: statement records as delivered; a transactions record re-serialized from
/// its parsed fields with every PII field and every field the mapping does not read masked
/// (quoting or escaping in the file cannot hide a value from this), or, when the record could
/// not be split into fields, withheld whole with its size and SHA-256 (it may hold a user id).
pub(crate) fn masked_raw(kind: SourceKind, raw: &[u8], fields: Option<&Fields<'_>>) -> String {
    let masked = match (kind, fields) {
        (SourceKind::Statement, _) => None,
        (SourceKind::Transactions, Some(f)) => f.masked(),
        (SourceKind::Transactions, None) => Some(withheld(raw)),
    };
    masked.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(raw);
        text.trim_end_matches(['\r', '\n']).to_string()
    })
}

fn withheld(raw: &[u8]) -> String {
    format!(
        "[withheld: {} bytes that may hold PII, sha256 {}]",
        raw.len(),
        crate::manifest::sha256_hex(raw)
    )
}

impl Fields<'_> {
    /// Values of the PII fields present in this record.
    fn pii_values(&self) -> Vec<&str> {
        PII_FIELDS.iter().filter_map(|n| self.opt(n)).collect()
    }

    /// Whether a value may be kept in `raw`: the field is mapped, not PII, and does not
    /// contain a PII value of the record.
    fn keeps(&self, name: Option<&str>, value: &str, pii: &[&str]) -> bool {
        name.is_some_and(|n| !PII_FIELDS.contains(&n)) && !pii.iter().any(|p| value.contains(p))
    }

    /// The record re-serialized with its PII and unmapped fields masked.
    fn masked(&self) -> Option<String> {
        let pii = self.pii_values();
        match &self.whole {
            Whole::Csv {
                record,
                columns,
                delimiter,
            } => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(*delimiter)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                let out: Vec<Cow<'_, [u8]>> = record
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let name = columns
                            .iter()
                            .position(|c| *c == Some(i))
                            .and_then(|j| self.names.get(j).copied());
                        let text = String::from_utf8_lossy(v);
                        if self.keeps(name, &text, &pii) {
                            Cow::Borrowed(v)
                        } else {
                            Cow::Borrowed(MASK.as_bytes())
                        }
                    })
                    .collect();
                let text = w
                    .write_record(&out)
                    .ok()
                    .and_then(|()| w.into_inner().ok())
                    .map(|b| String::from_utf8_lossy(&b).trim_end().to_string());
                Some(text.unwrap_or_else(|| withheld(record.as_slice())))
            }
            Whole::Json { object, columns } => {
                let mut out = String::new();
                self.masked_json(object, "", columns, &pii, &mut out);
                Some(out)
            }
        }
    }

    fn masked_json(
        &self,
        object: &crate::exact_json::Object<'_>,
        prefix: &str,
        columns: &[Option<&str>],
        pii: &[&str],
        out: &mut String,
    ) {
        out.push('{');
        for (i, (key, member)) in object.members().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let path = format!("{prefix}{key}");
            out.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".into()));
            out.push(':');
            let name = columns
                .iter()
                .position(|c| *c == Some(path.as_str()))
                .and_then(|j| self.names.get(j).copied());
            let inner = format!("{path}.");
            match member.object() {
                Some(o) if columns.iter().flatten().any(|c| c.starts_with(&inner)) => {
                    self.masked_json(o, &inner, columns, pii, out);
                }
                _ if self.keeps(name, &member.text().unwrap_or_default(), pii) => {
                    out.push_str(member.json());
                }
                _ => {
                    out.push('"');
                    out.push_str(MASK);
                    out.push('"');
                }
            }
        }
        out.push('}');
    }
}

/// A detail that quotes a PII value of the record has it masked (the converters name fields and
/// rules; this holds whatever an error message might quote).
pub(crate) fn safe_detail(detail: String, fields: Option<&Fields<'_>>) -> String {
    let Some(f) = fields else { return detail };
    f.pii_values().iter().fold(
        detail,
        |d, v| if d.contains(v) { d.replace(v, MASK) } else { d },
    )
}
