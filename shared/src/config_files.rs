//! The configuration files of the bucket's `config/` (merchants, policies, fee rules,
//! tolerances, source mappings, FX tables): how they are read, and how a problem in one is
//! reported. A problem names the file, the line and what to do, and says what it affects:
//! a line about one bank fails that bank's partitions only (design.md §7, issue 13 item 2–3).

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::BankId;

/// What a configuration problem fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every partition: the problem cannot be tied to one bank (a missing fee rules file,
    /// out-of-range tolerances, a line whose bank cannot be read).
    All,
    /// The partitions of one bank.
    Bank(BankId),
    /// The partitions with statements delivered by one source (a mapping whose bank cannot
    /// be read).
    Source(String),
}

/// One problem of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Key of the file (`config/rules/fee_rules.jsonl`).
    pub file: String,
    /// 1-based line of the file; `None` for the file as a whole.
    pub line: Option<usize>,
    /// What is wrong with the file or line, without quoting values.
    pub reason: String,
    /// What the operator does about it.
    pub fix: String,
    /// Which partitions of the close the problem fails.
    pub scope: Scope,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.line {
            write!(f, "line {n}: ")?;
        }
        f.write_str(&self.reason)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

impl ConfigProblem {
    /// A problem of `file` (at `line`, or the whole file when `None`) failing `scope`.
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        reason: impl Into<String>,
        fix: impl Into<String>,
        scope: Scope,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            reason: reason.into(),
            fix: fix.into(),
            scope,
        }
    }

    /// The problem as the error a task fails with (`InvalidConfig`).
    pub fn error(&self) -> Error {
        Error::InvalidConfig {
            name: self.file.clone(),
            reason: self.to_string(),
        }
    }

    /// Whether the problem fails a partition of `bank` whose statement objects are
    /// `statement_keys`.
    pub fn affects<'k>(
        &self,
        bank: &BankId,
        mut statement_keys: impl Iterator<Item = &'k str>,
    ) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Bank(b) => b == bank,
            Scope::Source(s) => statement_keys.any(|k| crate::keys::is_from_source(k, s)),
        }
    }
}

/// The problems as one error: the only one as it is, several listed with their files.
pub fn problems_error<'p>(problems: impl IntoIterator<Item = &'p ConfigProblem>) -> Option<Error> {
    let problems: Vec<&ConfigProblem> = problems.into_iter().collect();
    match problems.as_slice() {
        [] => None,
        [one] => Some(one.error()),
        [first, ..] => Some(Error::InvalidConfig {
            name: first.file.clone(),
            reason: format!(
                "{} problems: {}",
                problems.len(),
                problems
                    .iter()
                    .map(|p| format!("`{}` {p}", p.file))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        }),
    }
}

/// A serde_json error without its position (a line of a JSON Lines file is always its
/// "line 1"): the message and the column.
pub fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &s[..i], e.column()),
        None => s,
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// One non-blank line of a JSON Lines file.
#[derive(Debug)]
pub enum JsonLine<T> {
    /// The line decodes.
    Ok {
        /// 1-based line number in the file.
        line: usize,
        /// The decoded line.
        value: T,
    },
    /// The line does not decode; `raw` is the line as JSON when it is JSON at all, to tell
    /// what the line was about (its bank, its merchant).
    Bad {
        /// 1-based line number in the file.
        line: usize,
        /// Why the line does not decode (see [`json_reason`]).
        reason: String,
        /// The line as untyped JSON, or `None` when it is not JSON.
        raw: Option<Value>,
    },
}

/// Decodes each non-blank line of a JSON Lines file, numbering lines as an editor does
/// (blank lines count). A UTF-8 byte order mark at the start is skipped.
pub fn jsonl_lines<T: DeserializeOwned>(bytes: &[u8]) -> Vec<JsonLine<T>> {
    let bytes = strip_bom(bytes);
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| match serde_json::from_slice(l) {
            Ok(value) => JsonLine::Ok { line: i + 1, value },
            Err(e) => JsonLine::Bad {
                line: i + 1,
                reason: json_reason(&e),
                raw: serde_json::from_slice(l).ok(),
            },
        })
        .collect()
}

/// Decodes a JSON Lines file whole: the first bad line fails it, naming the file and line.
pub fn jsonl<T: DeserializeOwned>(file: &str, bytes: &[u8], fix: &str) -> Result<Vec<T>> {
    jsonl_lines(bytes)
        .into_iter()
        .map(|l| match l {
            JsonLine::Ok { value, .. } => Ok(value),
            JsonLine::Bad { line, reason, .. } => {
                Err(ConfigProblem::new(file, Some(line), reason, fix, Scope::All).error())
            }
        })
        .collect()
}

/// The bank a JSON object names in `field`, when it is a valid bank id.
pub fn bank_field(raw: Option<&Value>, field: &str) -> Option<BankId> {
    raw?.get(field)?.as_str().and_then(|b| BankId::new(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_as_in_an_editor_and_bad_ones_keep_their_json() -> Result<()> {
        let text = "{\"a\":1}\n\n   \n{\"a\":\"x\",\"bank_id\":\"bank_02\"}\nnot json\n";
        #[derive(serde::Deserialize, Debug)]
        struct A {
            #[allow(dead_code)]
            a: i64,
        }
        let lines = jsonl_lines::<A>(text.as_bytes());
        assert_eq!(lines.len(), 3);
        assert!(matches!(lines[0], JsonLine::Ok { line: 1, .. }));
        let JsonLine::Bad { line, reason, raw } = &lines[1] else {
            return Err(Error::Invariant("line 4 decoded".into()));
        };
        assert_eq!(*line, 4);
        assert!(!reason.contains("at line"), "{reason}");
        assert_eq!(
            bank_field(raw.as_ref(), "bank_id"),
            Some(BankId::new("bank_02")?)
        );
        assert!(matches!(
            &lines[2],
            JsonLine::Bad {
                line: 5,
                raw: None,
                ..
            }
        ));
        let e = jsonl::<A>("config/x.jsonl", text.as_bytes(), "fix the line")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("config/x.jsonl") && e.contains("line 4:") && e.contains("fix the line"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn several_problems_are_one_error_listing_each() -> Result<()> {
        let bank = BankId::new("bank_01")?;
        let a = ConfigProblem::new("f1", Some(2), "bad", "fix it", Scope::Bank(bank.clone()));
        let b = ConfigProblem::new("f2", None, "missing", "add it", Scope::Source("s1".into()));
        assert!(a.affects(&bank, std::iter::empty()));
        assert!(!a.affects(&BankId::new("bank_02")?, std::iter::empty()));
        assert!(b.affects(
            &bank,
            ["curated/statements/business_date=2026-11-20/bank_id=bank_01/part-s1-2026-11-20.parquet"]
                .into_iter()
        ));
        assert!(!b.affects(&bank, ["x/part-s10-2026-11-20.parquet"].into_iter()));
        let e = problems_error([&a, &b])
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("2 problems")
                && e.contains("`f1` line 2: bad; fix it")
                && e.contains("`f2` missing; add it"),
            "{e}"
        );
        assert!(problems_error([]).is_none());
        Ok(())
    }
}
