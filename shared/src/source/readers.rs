//! CSV and JSON lines records as the canonical fields the mapping names.

use std::borrow::Cow;

use super::fields::{Fields, Whole};
use super::{ParseContext, SourceMapping};
use crate::error::{Error, Result};
use crate::reject::{FieldError, RejectReason, ferr};

/// Receives every CSV or JSON lines record of a file: its number, raw bytes and fields.
pub(super) trait OnRecord {
    fn record(&mut self, n: u64, raw: &[u8], fields: std::result::Result<Fields<'_>, FieldError>);
}

pub(super) fn read_csv(
    ctx: &ParseContext<'_>,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut impl OnRecord,
) -> Result<()> {
    let m = ctx.mapping;
    let file_err = |reason: String| Error::InvalidFile {
        file: ctx.file.to_string(),
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(m.delimiter as u8)
        .has_headers(m.header)
        .flexible(true)
        .from_reader(bytes);
    // Column index of each canonical field (None: not mapped).
    let mut index: Vec<Option<usize>> = vec![None; names.len()];
    let width;
    if m.header {
        let header = rdr
            .byte_headers()
            .map_err(|e| file_err(format!("unreadable header: {e}")))?
            .clone();
        width = header.len();
        for (i, name) in names.iter().enumerate() {
            let Some(col) = m.columns.get(*name) else {
                continue;
            };
            let pos = header.iter().position(|h| h.trim_ascii() == col.as_bytes());
            match pos {
                Some(p) => index[i] = Some(p),
                None if header.is_empty() => {}
                None => {
                    return Err(file_err(format!(
                        "header has no column `{col}` (for `{name}`); found {} column(s) split by `{}` — wrong delimiter or layout?",
                        header.len(),
                        m.delimiter
                    )));
                }
            }
        }
    } else {
        width = 0;
        for (i, name) in names.iter().enumerate() {
            index[i] = m.columns.get(*name).and_then(|c| c.parse().ok());
        }
    }
    let mut rec = csv::ByteRecord::new();
    let mut n = 0u64;
    loop {
        let start = rdr.position().byte() as usize;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                n += 1;
                let end = rdr.position().byte() as usize;
                let raw = bytes.get(start..end.max(start)).unwrap_or_default();
                sink.record(n, raw, Err(ferr(RejectReason::MalformedRow, e.to_string())));
                continue;
            }
        }
        n += 1;
        let end = (rdr.position().byte() as usize).min(bytes.len());
        let raw = bytes.get(start..end.max(start)).unwrap_or_default();
        let expected = if m.header {
            width
        } else {
            index.iter().flatten().max().map_or(0, |x| x + 1)
        };
        let fields = if (m.header && rec.len() != width) || (!m.header && rec.len() < expected) {
            Err(ferr(
                RejectReason::MalformedRow,
                format!("expected {expected} fields, found {}", rec.len()),
            ))
        } else {
            let mut values = Vec::with_capacity(names.len());
            let mut bad = None;
            for ix in &index {
                let v = match ix.and_then(|i| rec.get(i)) {
                    None => None,
                    Some(b) => match std::str::from_utf8(b) {
                        Ok(s) => Some(Cow::Borrowed(s)),
                        Err(_) => {
                            bad = Some(ferr(
                                RejectReason::InvalidUtf8,
                                "a field is not valid UTF-8",
                            ));
                            None
                        }
                    },
                };
                values.push(v);
            }
            match bad {
                Some(e) => Err(e),
                None => Ok(Fields {
                    values,
                    names,
                    whole: Whole::Csv {
                        record: &rec,
                        columns: &index,
                        delimiter: m.delimiter as u8,
                    },
                }),
            }
        };
        sink.record(n, raw, fields);
    }
    Ok(())
}

pub(super) fn read_jsonl(
    m: &SourceMapping,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut impl OnRecord,
) {
    use crate::exact_json::{JsonError, Object};
    // The mapping's path of each canonical field.
    let columns: Vec<Option<&str>> = names
        .iter()
        .map(|n| m.columns.get(*n).map(String::as_str))
        .collect();
    let mut n = 0u64;
    for line in bytes.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        n += 1;
        if names.is_empty() {
            sink.record(
                n,
                line,
                Err(ferr(RejectReason::MalformedRow, "counted only")),
            );
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            sink.record(
                n,
                line,
                Err(ferr(RejectReason::InvalidUtf8, "line is not valid UTF-8")),
            );
            continue;
        };
        // Values as written: numbers keep their digits (never through f64).
        let object = match Object::parse(text) {
            Ok(o) => o,
            Err(JsonError::DuplicateKey { path }) => {
                // Named when the mapping reads it; another key could be anything.
                let read = columns.iter().flatten().any(|c| {
                    *c == path
                        || c.strip_prefix(path.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                });
                let what = if read {
                    format!("key `{path}` appears twice")
                } else {
                    "a key the mapping does not read appears twice".to_string()
                };
                sink.record(
                    n,
                    line,
                    Err(ferr(
                        RejectReason::DuplicateKey,
                        format!("{what}: which value is meant is unknown; send each key once"),
                    )),
                );
                continue;
            }
            Err(e) => {
                sink.record(n, line, Err(ferr(RejectReason::InvalidJson, e.to_string())));
                continue;
            }
        };
        let values = columns
            .iter()
            .map(|path| path.and_then(|p| object.path(p)).and_then(|v| v.text()))
            .collect();
        sink.record(
            n,
            line,
            Ok(Fields {
                values,
                names,
                whole: Whole::Json {
                    object: &object,
                    columns: &columns,
                },
            }),
        );
    }
}
