//! Record-level normalization of an accepted delivery into curated Parquet.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{DATABASE, NormalizeRequest};
use crate::columnar::write_parquet;
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, SourceId, UserId};
use crate::keys::{
    self, landing_prefix, rejects_key, source_config_key, statements_key, transactions_key,
};
use crate::manifest::MANIFEST_FILE;
use crate::pii::PiiKey;
use crate::ports::{Catalog, FileRecord, FileStatus, ManifestTable, ObjectStore, Partition};
use crate::records::{StatementLine, Transaction};
use crate::source::{
    ParseContext, Parsed, Reject, RejectReason, SourceKind, SourceMapping, parse_statements,
    parse_transactions,
};

/// What became of one file's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileCounts {
    /// Records read from the file (data rows or statement lines).
    pub records_in: u64,
    /// Records written to the curated table.
    pub accepted: u64,
    /// Records sent to `curated/rejects/` with a reason.
    pub rejected: u64,
    /// Identical repeats of a record already seen in the delivery, dropped.
    pub duplicates: u64,
}

impl FileCounts {
    /// `records_in == accepted + rejected + duplicates`, or an error naming the file.
    pub fn check(&self, file: &str) -> Result<()> {
        if self.records_in != self.accepted + self.rejected + self.duplicates {
            return Err(Error::Invariant(format!(
                "{file}: {} records in, but {} accepted + {} rejected + {} duplicates",
                self.records_in, self.accepted, self.rejected, self.duplicates
            )));
        }
        Ok(())
    }
}

/// What the normalization of one delivery version did: its counts per file and the curated
/// objects it wrote and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeOutcome {
    /// The source of the delivery.
    pub source_id: String,
    /// The business date of the delivery.
    pub business_date: BusinessDate,
    /// The manifest version normalized.
    pub version: u32,
    /// Whether the source delivers bank statements or ledger transactions.
    pub kind: SourceKind,
    /// Per file, in request order.
    pub files: Vec<(String, FileCounts)>,
    /// Curated objects written.
    pub outputs: Vec<String>,
    /// Outputs of an earlier version removed because this one no longer produces them.
    pub removed: Vec<String>,
    /// True when the request was for a version that is no longer current (nothing done).
    pub stale: bool,
}

impl NormalizeOutcome {
    /// The counts of every file added up.
    pub fn totals(&self) -> FileCounts {
        self.files
            .iter()
            .fold(FileCounts::default(), |a, (_, c)| FileCounts {
                records_in: a.records_in + c.records_in,
                accepted: a.accepted + c.accepted,
                rejected: a.rejected + c.rejected,
                duplicates: a.duplicates + c.duplicates,
            })
    }
}

/// A canonical record that can be deduplicated by its id.
trait Keyed: Clone + PartialEq {
    fn key(&self) -> String;
}

impl Keyed for StatementLine {
    fn key(&self) -> String {
        self.statement_id.to_string()
    }
}

impl Keyed for Transaction {
    fn key(&self) -> String {
        self.transaction_id.to_string()
    }
}

/// Removes duplicates across the files of a delivery, in file order: an identical repeat is a
/// duplicate; the same id with other content is rejected (`DUPLICATE_STATEMENT_ID` for a
/// statement line, `DUPLICATE_TRANSACTION_ID` for a ledger transaction).
fn dedupe<T: Keyed>(
    files: Vec<(String, Parsed<T>)>,
    kind: SourceKind,
    source: &SourceId,
) -> (Vec<T>, Vec<Reject>, Vec<(String, FileCounts)>) {
    let mut seen: HashMap<String, T> = HashMap::new();
    let mut kept = Vec::new();
    let mut rejects = Vec::new();
    let mut counts = Vec::new();
    for (name, parsed) in files {
        let mut c = FileCounts {
            records_in: parsed.records_in,
            rejected: parsed.rejects.len() as u64,
            ..Default::default()
        };
        rejects.extend(parsed.rejects);
        for (n, rec) in parsed.records {
            let key = rec.key();
            match seen.get(&key) {
                None => {
                    seen.insert(key, rec.clone());
                    kept.push(rec);
                    c.accepted += 1;
                }
                Some(prev) if *prev == rec => c.duplicates += 1,
                Some(_) => {
                    c.rejected += 1;
                    let (what, reason) = if kind == SourceKind::Statement {
                        ("statement_id", RejectReason::DuplicateStatementId)
                    } else {
                        ("transaction_id", RejectReason::DuplicateTransactionId)
                    };
                    rejects.push(Reject {
                        source_id: source.clone(),
                        file: name.clone(),
                        record: n,
                        reason,
                        detail: format!("{what} {key} was already delivered with other content"),
                        raw: String::new(),
                    });
                }
            }
        }
        counts.push((name, c));
    }
    (kept, rejects, counts)
}

fn partition_of(key: &str) -> Partition {
    let p = keys::curated_partition(key);
    Partition {
        database: DATABASE.into(),
        table: p.table,
        values: p.values,
        location: p.location,
    }
}

/// Merchant -> acquiring bank from `config/merchants.jsonl`, for splitting `txns` by bank.
/// Fails, naming the file and line, when the file is missing or a line the split needs is
/// bad: a line about a merchant of `txns`, or one whose merchant cannot be read. A bad line
/// about another merchant does not stop this delivery (the close reports it).
async fn acquirers<S: ObjectStore>(
    store: &S,
    txns: &[Transaction],
) -> Result<HashMap<crate::ids::MerchantId, BankId>> {
    use crate::config_files::{ConfigProblem, JsonLine, Scope, jsonl_lines};
    use crate::ports::get_opt;
    const KEY: &str = keys::MERCHANTS;
    let Some(bytes) = get_opt(store, KEY).await? else {
        return Err(ConfigProblem::new(
            KEY,
            None,
            "the merchant file is missing: payments cannot be split by acquiring bank",
            "deliver the merchant file, then run the ledger delivery again",
            Scope::All,
        )
        .error());
    };
    let mut out = HashMap::new();
    for l in jsonl_lines::<crate::records::Merchant>(&bytes) {
        match l {
            JsonLine::Ok { value, .. } => {
                if let Some(b) = value.acquirer_bank_id {
                    out.insert(value.merchant_id, b);
                }
            }
            JsonLine::Bad { line, reason, raw } => {
                let merchant = raw
                    .as_ref()
                    .and_then(|r| r.get("merchant_id"))
                    .and_then(serde_json::Value::as_str);
                if merchant.is_none_or(|m| txns.iter().any(|t| t.merchant_id.as_str() == m)) {
                    return Err(ConfigProblem::new(
                        KEY,
                        Some(line),
                        reason,
                        "correct the line of the merchant file, then run the ledger delivery again",
                        Scope::All,
                    )
                    .error());
                }
            }
        }
    }
    Ok(out)
}

/// Normalizes the accepted files of one delivery version. Idempotent: the same request gives
/// the same objects and table rows; a request for a superseded version does nothing.
pub async fn normalize<S: ObjectStore, M: ManifestTable, C: Catalog>(
    store: &S,
    table: &M,
    catalog: &C,
    pii: &PiiKey,
    req: &NormalizeRequest,
) -> Result<NormalizeOutcome> {
    let rows = table.delivery(&req.source_id, req.business_date).await?;
    let manifest_row = rows
        .iter()
        .find(|r| r.file == MANIFEST_FILE)
        .ok_or_else(|| {
            Error::Invariant(format!(
                "no validated delivery for {} {}",
                req.source_id, req.business_date
            ))
        })?;
    let mapping_key = source_config_key(req.source_id.as_str());
    let mapping = SourceMapping::from_file(&mapping_key, &store.get(&mapping_key).await?)?;
    let mut out = NormalizeOutcome {
        source_id: req.source_id.to_string(),
        business_date: req.business_date,
        version: req.version,
        kind: mapping.kind,
        files: Vec::new(),
        outputs: Vec::new(),
        removed: Vec::new(),
        stale: false,
    };
    if manifest_row.version != req.version || manifest_row.status == FileStatus::Quarantined {
        out.stale = true;
        tracing::info!(
            source_id = %req.source_id, business_date = %req.business_date, version = req.version,
            current_version = manifest_row.version, "normalize request stale, nothing written"
        );
        return Ok(out);
    }
    // A bad FX table fails only a delivery with amounts to convert (below).
    let day_fx = super::load_fx(store, req.business_date).await?;
    let fx = &day_fx.table;
    let prefix = landing_prefix(&req.source_id, req.business_date);
    let mut payloads = Vec::new();
    for name in &req.files {
        payloads.push((name.clone(), store.get(&format!("{prefix}{name}")).await?));
    }

    // The files of a delivery share everything in their parse context but their name.
    let ctx = |file| ParseContext {
        mapping: &mapping,
        fx,
        business_date: req.business_date,
        file,
    };
    let mut objects: BTreeMap<String, Bytes> = BTreeMap::new();
    let (mut rejects, counts) = match mapping.kind {
        SourceKind::Statement => {
            let mut parsed = Vec::new();
            for (name, bytes) in &payloads {
                parsed.push((name.clone(), parse_statements(&ctx(name), bytes)?));
            }
            let converts = |(_, p): &(String, Parsed<StatementLine>)| {
                p.rejects
                    .iter()
                    .any(|r| r.reason == RejectReason::FxRateMissing)
            };
            if parsed.iter().any(converts) {
                day_fx.needed()?;
            }
            let (lines, rejects, counts) = dedupe(parsed, mapping.kind, &req.source_id);
            // A statement belongs to its delivery (§11): its lines are reconciled in the close
            // of the delivery's date, whatever their own posting date (kept as data).
            let mut parts: BTreeMap<BankId, Vec<StatementLine>> = BTreeMap::new();
            for l in lines {
                parts.entry(l.bank_id.clone()).or_default().push(l);
            }
            for (bank, mut ls) in parts {
                ls.sort_by(|a, b| a.statement_id.cmp(&b.statement_id));
                let date = req.business_date;
                let key = statements_key(date, &bank, req.source_id.as_str(), req.business_date);
                objects.insert(key, Bytes::from(write_parquet(&ls)?));
            }
            (rejects, counts)
        }
        SourceKind::Transactions => {
            let mut parsed = Vec::new();
            for (name, bytes) in &payloads {
                let mut p = parse_transactions(&ctx(name), bytes)?;
                for (_, t) in &mut p.records {
                    t.user_id = UserId::new(pii.tokenize(&t.user_id))?;
                }
                parsed.push((name.clone(), p));
            }
            let (mut txns, rejects, counts) = dedupe(parsed, mapping.kind, &req.source_id);
            txns.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
            let acquirers = acquirers(store, &txns).await?;
            let mut by_bank: BTreeMap<Option<BankId>, Vec<Transaction>> = BTreeMap::new();
            for t in txns {
                by_bank
                    .entry(acquirers.get(&t.merchant_id).cloned())
                    .or_default()
                    .push(t);
            }
            for (bank, rows) in by_bank {
                objects.insert(
                    transactions_key(req.business_date, req.source_id.as_str(), bank.as_ref()),
                    Bytes::from(write_parquet(&rows)?),
                );
            }
            (rejects, counts)
        }
    };
    rejects.sort_by(|a, b| (&a.file, a.record).cmp(&(&b.file, b.record)));
    let rkey = rejects_key(req.business_date, req.source_id.as_str());
    if !rejects.is_empty() {
        objects.insert(rkey.clone(), Bytes::from(write_parquet(&rejects)?));
    }
    for (name, c) in &counts {
        c.check(name)?;
    }

    // Write every partition whole, then drop what an earlier run produced and this one did not.
    for (key, bytes) in &objects {
        store.put(key, bytes.clone()).await?;
    }
    let new: BTreeSet<&String> = objects.keys().collect();
    let mut stale_outputs: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.outputs.iter().cloned())
        .collect();
    if rejects.is_empty() {
        stale_outputs.insert(rkey);
    }
    for old in stale_outputs.iter().filter(|k| !new.contains(k)) {
        store.delete(old).await?;
        out.removed.push(old.clone());
    }
    for key in objects.keys() {
        catalog.register_partition(&partition_of(key)).await?;
    }

    // Record counts per file and the delivery's outputs.
    let mut updates: Vec<FileRecord> = Vec::new();
    for (name, c) in &counts {
        if let Some(r) = rows.iter().find(|r| &r.file == name) {
            updates.push(FileRecord {
                status: FileStatus::Normalized,
                records_in: c.records_in,
                accepted: c.accepted,
                rejected: c.rejected,
                duplicates: c.duplicates,
                ..r.clone()
            });
        }
    }
    for r in rows.iter().filter(|r| {
        r.file != MANIFEST_FILE && r.status == FileStatus::Superseded && !r.outputs.is_empty()
    }) {
        updates.push(FileRecord {
            outputs: Vec::new(),
            ..r.clone()
        });
    }
    let totals = counts
        .iter()
        .fold(FileCounts::default(), |a, (_, c)| FileCounts {
            records_in: a.records_in + c.records_in,
            accepted: a.accepted + c.accepted,
            rejected: a.rejected + c.rejected,
            duplicates: a.duplicates + c.duplicates,
        });
    updates.push(FileRecord {
        records_in: totals.records_in,
        accepted: totals.accepted,
        rejected: totals.rejected,
        duplicates: totals.duplicates,
        outputs: objects.keys().cloned().collect(),
        ..manifest_row.clone()
    });
    table.put(&updates).await?;
    tracing::info!(
        source_id = %req.source_id, business_date = %req.business_date, version = req.version,
        records_in = totals.records_in, accepted = totals.accepted, rejected = totals.rejected,
        duplicates = totals.duplicates, outputs = objects.len(), "delivery normalized"
    );
    out.files = counts;
    out.outputs = objects.into_keys().collect();
    Ok(out)
}
