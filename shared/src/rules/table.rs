//! The Rules table (design.md §7, docs/rules.md): fee rules, the matching tolerances and the
//! banks' calendars as data operators change without a deploy. Every change is a new
//! **version** of one rule, never an overwrite: the item names who changed it, when and why,
//! and the versions of a rule are its audit trail. A rule's current form is its latest
//! version; a version without a body retires the rule. Fee rules carry their own effective
//! dates (`effective_from`, `effective_to`), so a change can be booked ahead of the day it
//! takes effect.
//!
//! The close never reads the table: the plan renders the current rules into the files of
//! `config/rules/` and `config/calendars/` ([`RuleFiles`]) before it fingerprints anything, so
//! partitions, the Spark job and the API read what they always read, and a change reaches the
//! next close. A partition's fingerprint holds only the rules it can use (its bank's fee
//! rules in force on its date, its bank's calendar, the tolerances), so a change re-reconciles
//! exactly the partitions it affects.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar::Calendar;
use crate::error::{Error, Result};
use crate::ids::BankId;
use crate::keys;
use crate::records::{FeeRule, string_enum};
use crate::rules::Tolerances;

string_enum!(
    /// What a rule of the Rules table is: the table's partition key `rule_type`.
    RuleKind, "rule_type" {
        FeeRule => "FEE_RULE", Tolerances => "TOLERANCES", Calendar => "CALENDAR",
    }
);

/// The id of the one set of tolerances.
pub const TOLERANCES_ID: &str = "default";

/// Longest reason or actor kept with a version.
const MAX_TEXT: usize = 500;

/// A rule of the table: its kind and id (the fee rule's `rule_id`, [`TOLERANCES_ID`], the
/// calendar's bank).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleKey {
    /// The kind of rule.
    pub kind: RuleKind,
    /// Its id within the kind.
    pub id: String,
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

/// One version of one rule: an item of the Rules table (PK `rule_type`, SK
/// `{id}#{version:06}`), written once and never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleVersion {
    /// The kind of rule.
    pub kind: RuleKind,
    /// The rule's id within its kind.
    pub id: String,
    /// 1 for the rule's first version, then one more for each change.
    pub version: u32,
    /// The rule as canonical JSON (one line); `None`: this version retires the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Who made the change (the operator's name or the importing principal).
    pub changed_by: String,
    /// When the change was stored.
    pub changed_at: DateTime<Utc>,
    /// Why, as the operator gave it.
    pub reason: String,
}

impl RuleVersion {
    /// The rule this is a version of.
    pub fn key(&self) -> RuleKey {
        RuleKey {
            kind: self.kind,
            id: self.id.clone(),
        }
    }

    /// The table's sort key: `{id}#{version:06}` (versions of a rule sort in order).
    pub fn sort_key(&self) -> String {
        format!("{}#{:06}", self.id, self.version)
    }
}

/// The rules in force: each rule's canonical JSON by its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet(pub BTreeMap<RuleKey, String>);

impl RuleSet {
    /// The rule set of parsed rules (what the files of `config/` hold).
    pub fn of(
        fee_rules: &[FeeRule],
        tolerances: Option<&Tolerances>,
        calendars: &BTreeMap<BankId, Calendar>,
    ) -> Result<Self> {
        let mut out = BTreeMap::new();
        for r in fee_rules {
            let key = RuleKey {
                kind: RuleKind::FeeRule,
                id: r.rule_id.to_string(),
            };
            if out.insert(key, serde_json::to_string(r)?).is_some() {
                return Err(Error::InvalidConfig {
                    name: keys::FEE_RULES.into(),
                    reason: format!("rule `{}` is given twice", r.rule_id),
                });
            }
        }
        if let Some(t) = tolerances {
            out.insert(
                RuleKey {
                    kind: RuleKind::Tolerances,
                    id: TOLERANCES_ID.into(),
                },
                serde_json::to_string(t)?,
            );
        }
        for (bank, c) in calendars {
            out.insert(
                RuleKey {
                    kind: RuleKind::Calendar,
                    id: bank.to_string(),
                },
                serde_json::to_string(c)?,
            );
        }
        Ok(Self(out))
    }

    /// The current rules of a table's versions: each rule's latest version, retired rules left
    /// out.
    pub fn current(versions: &[RuleVersion]) -> Self {
        let mut latest: BTreeMap<RuleKey, &RuleVersion> = BTreeMap::new();
        for v in versions {
            let slot = latest.entry(v.key()).or_insert(v);
            if v.version > slot.version {
                *slot = v;
            }
        }
        Self(
            latest
                .into_iter()
                .filter_map(|(k, v)| v.body.clone().map(|b| (k, b)))
                .collect(),
        )
    }

    /// A digest of the rules (the rules version the plan reports).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (k, body) in &self.0 {
            h.update(format!("{k}\n{body}\n").as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The rules as the files of `config/` the close reads: fee rules one line each by id, the
    /// tolerances and each calendar as pretty JSON. The same rules give the same bytes.
    pub fn files(&self) -> Result<RuleFiles> {
        let mut out = RuleFiles::default();
        for (k, body) in &self.0 {
            let bad = |e: serde_json::Error| Error::InvalidConfig {
                name: format!("Rules table item {k}"),
                reason: format!("the stored rule does not parse: {e}"),
            };
            match k.kind {
                RuleKind::FeeRule => {
                    let rule: FeeRule = serde_json::from_str(body).map_err(bad)?;
                    out.fee_rules.extend(serde_json::to_vec(&rule)?);
                    out.fee_rules.push(b'\n');
                }
                RuleKind::Tolerances => {
                    let t: Tolerances = serde_json::from_str(body).map_err(bad)?;
                    out.tolerances = Some(pretty(&t)?);
                }
                RuleKind::Calendar => {
                    let c: Calendar = serde_json::from_str(body).map_err(bad)?;
                    if c.bank_id.as_str() != k.id {
                        return Err(Error::InvalidConfig {
                            name: format!("Rules table item {k}"),
                            reason: format!("the calendar is of bank `{}`", c.bank_id),
                        });
                    }
                    out.calendars.insert(c.bank_id.clone(), pretty(&c)?);
                }
            }
        }
        Ok(out)
    }
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v)?;
    b.push(b'\n');
    Ok(b)
}

/// The files of `config/` a rule set is written as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFiles {
    /// `config/rules/fee_rules.jsonl` (empty when no rule charges a fee).
    pub fee_rules: Vec<u8>,
    /// `config/rules/tolerances.json`; `None`: the defaults (no file).
    pub tolerances: Option<Vec<u8>>,
    /// `config/calendars/{bank}.json` of each bank with a calendar.
    pub calendars: BTreeMap<BankId, Vec<u8>>,
}

impl RuleFiles {
    /// Every file by key, `None` for a file that must not exist.
    pub fn by_key(&self) -> Vec<(String, Option<&[u8]>)> {
        let mut out = vec![
            (keys::FEE_RULES.to_string(), Some(self.fee_rules.as_slice())),
            (keys::TOLERANCES.to_string(), self.tolerances.as_deref()),
        ];
        out.extend(
            self.calendars
                .iter()
                .map(|(b, bytes)| (keys::calendar_key(b), Some(bytes.as_slice()))),
        );
        out
    }
}

/// One rule that differs between two rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleChange {
    /// The rule.
    pub key: RuleKey,
    /// Its form in the first set (`None`: not there).
    pub before: Option<String>,
    /// Its form in the second set (`None`: retired).
    pub after: Option<String>,
}

impl RuleChange {
    /// `added`, `changed` or `retired`.
    pub fn verb(&self) -> &'static str {
        match (&self.before, &self.after) {
            (None, _) => "added",
            (Some(_), Some(_)) => "changed",
            (Some(_), None) => "retired",
        }
    }
}

impl fmt::Display for RuleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb(), self.key)?;
        if let Some(b) = &self.before {
            write!(f, "\n  - {b}")?;
        }
        if let Some(a) = &self.after {
            write!(f, "\n  + {a}")?;
        }
        Ok(())
    }
}

/// What changes from `from` to `to`, by rule key.
pub fn changes(from: &RuleSet, to: &RuleSet) -> Vec<RuleChange> {
    let mut keys: Vec<&RuleKey> = from.0.keys().chain(to.0.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (before, after) = (from.0.get(k), to.0.get(k));
            (before != after).then(|| RuleChange {
                key: k.clone(),
                before: before.cloned(),
                after: after.cloned(),
            })
        })
        .collect()
}

/// Who changes the rules, when and why: stamped on every version a change writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Who (not empty).
    pub changed_by: String,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// Why (not empty: an audit without a reason is no audit).
    pub reason: String,
}

impl Author {
    /// An author, refused when the name or the reason is empty or longer than 500 characters.
    pub fn new(changed_by: &str, changed_at: DateTime<Utc>, reason: &str) -> Result<Self> {
        for (field, v) in [("changed_by", changed_by), ("reason", reason)] {
            let n = v.trim().chars().count();
            if n == 0 || n > MAX_TEXT {
                return Err(Error::InvalidConfig {
                    name: "the rules change".into(),
                    reason: format!(
                        "`{field}` must be 1 to {MAX_TEXT} characters: say who changes the rules and why"
                    ),
                });
            }
        }
        Ok(Self {
            changed_by: changed_by.trim().to_string(),
            changed_at,
            reason: reason.trim().to_string(),
        })
    }
}

/// The versions that make `changes` of a table whose versions are `existing`: each rule's
/// next version number, its new body (none to retire it), and the author.
pub fn next_versions(
    existing: &[RuleVersion],
    changes: &[RuleChange],
    author: &Author,
) -> Vec<RuleVersion> {
    let mut last: BTreeMap<RuleKey, u32> = BTreeMap::new();
    for v in existing {
        let n = last.entry(v.key()).or_default();
        *n = (*n).max(v.version);
    }
    changes
        .iter()
        .map(|c| RuleVersion {
            kind: c.key.kind,
            id: c.key.id.clone(),
            version: last.get(&c.key).copied().unwrap_or(0) + 1,
            body: c.after.clone(),
            changed_by: author.changed_by.clone(),
            changed_at: author.changed_at,
            reason: author.reason.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32) -> Result<DateTime<Utc>> {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| Error::Invariant("bad time".into()))
    }

    fn fee(id: &str, percent: &str) -> Result<FeeRule> {
        Ok(serde_json::from_str(&format!(
            r#"{{"rule_id": "{id}", "bank_id": "bank_01", "percent": "{percent}", "fixed": "0.10",
                "currency": "EUR", "effective_from": "2026-01-01"}}"#
        ))?)
    }

    #[test]
    fn a_table_folds_to_its_latest_versions_and_retired_rules_leave() -> Result<()> {
        let author = Author::new("alice", at(9)?, "new EUR pricing")?;
        let first = RuleSet::of(
            &[fee("F1", "1.5")?, fee("F2", "2")?],
            Some(&Tolerances::default()),
            &BTreeMap::new(),
        )?;
        let v1 = next_versions(&[], &changes(&RuleSet::default(), &first), &author);
        assert_eq!(v1.len(), 3);
        assert!(v1.iter().all(|v| v.version == 1));
        assert_eq!(RuleSet::current(&v1), first);

        // F1 changes, F2 is retired, F3 is added.
        let second = RuleSet::of(
            &[fee("F1", "1.6")?, fee("F3", "0.5")?],
            Some(&Tolerances::default()),
            &BTreeMap::new(),
        )?;
        let diff = changes(&RuleSet::current(&v1), &second);
        let verbs: Vec<(&str, &str)> = diff.iter().map(|c| (c.verb(), c.key.id.as_str())).collect();
        assert_eq!(
            verbs,
            [("changed", "F1"), ("retired", "F2"), ("added", "F3")]
        );
        let bob = Author::new("bob", at(10)?, "F2 ends")?;
        let v2 = next_versions(&v1, &diff, &bob);
        assert_eq!(
            v2.iter()
                .map(|v| (v.id.as_str(), v.version))
                .collect::<Vec<_>>(),
            [("F1", 2), ("F2", 2), ("F3", 1)]
        );
        let all: Vec<RuleVersion> = v1.iter().chain(&v2).cloned().collect();
        assert_eq!(RuleSet::current(&all), second);
        // A retired rule comes back as its next version.
        let back = changes(&RuleSet::current(&all), &first);
        let v3 = next_versions(&all, &back, &bob);
        assert!(
            v3.iter()
                .any(|v| v.id == "F2" && v.version == 3 && v.body.is_some())
        );
        Ok(())
    }

    #[test]
    fn files_are_canonical_and_round_trip() -> Result<()> {
        let mut cals = BTreeMap::new();
        let bank = BankId::new("bank_01")?;
        cals.insert(bank.clone(), Calendar::every_day(bank.clone()));
        let set = RuleSet::of(&[fee("F2", "2")?, fee("F1", "1.5")?], None, &cals)?;
        let files = set.files()?;
        let text = String::from_utf8_lossy(&files.fee_rules).into_owned();
        let ids: Vec<&str> = text
            .lines()
            .map(|l| if l.contains("\"F1\"") { "F1" } else { "F2" })
            .collect();
        assert_eq!(ids, ["F1", "F2"]);
        assert_eq!(files.tolerances, None);
        assert_eq!(files.calendars.len(), 1);
        assert_eq!(set.files()?, files);
        assert_eq!(
            files
                .by_key()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            [
                keys::FEE_RULES,
                keys::TOLERANCES,
                "config/calendars/bank_01.json"
            ]
        );
        Ok(())
    }

    #[test]
    fn a_rule_given_twice_and_an_anonymous_change_are_refused() -> Result<()> {
        assert!(RuleSet::of(&[fee("F1", "1")?, fee("F1", "2")?], None, &BTreeMap::new()).is_err());
        assert!(Author::new(" ", at(9)?, "why").is_err());
        assert!(Author::new("alice", at(9)?, "").is_err());
        Ok(())
    }
}
