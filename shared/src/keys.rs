//! Every key of the bucket (design.md §2), formatted and parsed in this one place.
//!
//! | prefix | what | written by |
//! |---|---|---|
//! | `landing/{source}/{date}/` | deliveries and their `_manifest.json` | sources |
//! | `quarantine/{source}/{date}/` | refused files and their `{file}.reason.json` | the validator |
//! | `config/` | source mappings, FX tables, dimensions, rules, policies | operators |
//! | `curated/{table}/business_date={date}/…` | statements, transactions, rejects | the normalizer |
//! | `index/{batch,mismatches,breaks}/business_date={date}/bank_id={bank}/` | per bank | the partition close |
//! | `index/{final,kpis}/business_date={date}/part.parquet` | per date | the final aggregation |
//! | `index/open/bank_id={bank}/business_date={date}/` | open items a close carries forward | the partition close |
//! | `runs/{date}/{execution}.json` | close summaries | the final aggregation |
//! | `stream/archive/topic={topic}/date={date}/…` | raw stream records kept for replay | the stream indexer |
//!
//! Ids cannot hold `/` or `=` ([`crate::ids`]), so every key parses back unambiguously.

use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, SourceId};
use crate::manifest::MANIFEST_FILE;

/// Every delivery lands under this prefix.
pub const LANDING: &str = "landing/";
/// Source mappings, one `{source_id}.json` each.
pub const SOURCES: &str = "config/sources/";
/// The merchant dimension.
pub const MERCHANTS: &str = "config/merchants.jsonl";
/// Active policies (stream enrichment).
pub const POLICIES: &str = "config/policies.jsonl";
/// Compliance rules (stream enrichment); optional.
pub const COMPLIANCE: &str = "config/compliance.json";
/// Fee rules of the reconciliation.
pub const FEE_RULES: &str = "config/rules/fee_rules.jsonl";
/// Matching tolerances of the reconciliation.
pub const TOLERANCES: &str = "config/rules/tolerances.json";
/// Bank business calendars, one `{bank_id}.json` each.
pub const CALENDARS: &str = "config/calendars/";
/// Open items each close carries forward, per bank (`bank_id={bank}/business_date={date}/`).
pub const OPEN: &str = "index/open/";
/// Raw stream records kept for replay.
pub const ARCHIVE: &str = "stream/archive/";

/// Transactions of merchants without an acquiring bank go to this bank segment.
const UNASSIGNED: &str = "unassigned";

/// `landing/{source}/{date}/`
pub fn landing_prefix(source: &SourceId, date: BusinessDate) -> String {
    format!("{LANDING}{source}/{date}/")
}

/// `landing/{source}/{date}/_manifest.json`
pub fn manifest_key(source: &SourceId, date: BusinessDate) -> String {
    format!("{LANDING}{source}/{date}/{MANIFEST_FILE}")
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

/// Whether `key` names a delivery's manifest (any `…/_manifest.json`).
pub fn is_manifest_key(key: &str) -> bool {
    key.rsplit_once('/')
        .is_some_and(|(_, file)| file == MANIFEST_FILE)
}

/// `quarantine/{source}/{date}/`
pub fn quarantine_prefix(source: &SourceId, date: BusinessDate) -> String {
    format!("quarantine/{source}/{date}/")
}

/// The reason a person reads beside a quarantined file: `{quarantine prefix}{file}.reason.json`.
pub fn quarantine_reason_key(quarantine_prefix: &str, file: &str) -> String {
    format!("{quarantine_prefix}{file}.reason.json")
}

/// `config/sources/{source}.json`
pub fn source_config_key(source: &str) -> String {
    format!("{SOURCES}{source}.json")
}

/// The bank of a calendar key `config/calendars/{bank}.json`.
pub fn calendar_bank(key: &str) -> Option<&str> {
    key.strip_prefix(CALENDARS)?.strip_suffix(".json")
}

/// `config/calendars/{bank}.json`
pub fn calendar_key(bank: &BankId) -> String {
    format!("{CALENDARS}{bank}.json")
}

/// `index/open/bank_id={bank}/`: every close's open items of a bank.
pub fn open_bank_prefix(bank: &BankId) -> String {
    format!("{OPEN}bank_id={bank}/")
}

/// `index/open/bank_id={bank}/business_date={date}/{file}`: what the close of `date` left
/// open for the bank's next close (`transactions.parquet`, `lines.parquet`, and
/// `state.json`, written last).
pub fn open_key(bank: &BankId, date: BusinessDate, file: &str) -> String {
    format!("{}business_date={date}/{file}", open_bank_prefix(bank))
}

/// `spark/summary/business_date={date}/bank_id={bank}/summary.json`: the partition summary
/// of the Spark job's last run of a partition, where the close reads it back (EMR answers a
/// step with the step's description only).
pub fn spark_summary_key(date: BusinessDate, bank: &BankId) -> String {
    format!("spark/summary/business_date={date}/bank_id={bank}/summary.json")
}

/// `spark/stage/business_date={date}/bank_id={bank}/{run_id}/groups={groups}/`: where a Spark
/// job stages its plan and its groups' rows; one place per run and group count, so a retried
/// task or job overwrites what the same inputs gave before.
pub fn spark_stage_prefix(date: BusinessDate, bank: &BankId, run_id: &str, groups: u32) -> String {
    format!("spark/stage/business_date={date}/bank_id={bank}/{run_id}/groups={groups}/")
}

/// A staged file under a [`spark_stage_prefix`]: the plan's (`group` none) or a group's.
pub fn spark_stage_key(stage: &str, group: Option<u32>, file: &str) -> String {
    match group {
        Some(g) => format!("{stage}group={g:05}/{file}"),
        None => format!("{stage}{file}"),
    }
}

/// `index/routes/`: the transactions each close hands from one bank's partition to another's.
pub const ROUTES: &str = "index/routes/";

/// `index/routes/bank_id={bank}/business_date={date}/routes.json`: the transactions the close
/// of `date` takes in from other banks' partitions and hands over to them (§11: a known id
/// settled by another acquirer).
pub fn routes_key(bank: &BankId, date: BusinessDate) -> String {
    format!("{ROUTES}bank_id={bank}/business_date={date}/routes.json")
}

/// The close date of an open-items key of a bank.
pub fn open_date(key: &str) -> Option<BusinessDate> {
    key.split('/')
        .find_map(|p| p.strip_prefix("business_date="))
        .and_then(|d| BusinessDate::parse(d).ok())
}

/// `config/fx/{date}.csv`
pub fn fx_key(date: BusinessDate) -> String {
    format!("config/fx/{date}.csv")
}

/// `curated/{table}/`: the location of a curated table.
pub fn curated_table_prefix(table: &str) -> String {
    format!("curated/{table}/")
}

/// `curated/statements/business_date={date}/`
pub fn statements_date_prefix(date: BusinessDate) -> String {
    format!("curated/statements/business_date={date}/")
}

/// `curated/statements/business_date={date}/bank_id={bank}/`
pub fn statements_prefix(date: BusinessDate, bank: &BankId) -> String {
    format!("{}bank_id={bank}/", statements_date_prefix(date))
}

/// The curated statements of one bank and date from one delivery of a source.
pub fn statements_key(
    date: BusinessDate,
    bank: &BankId,
    source: &str,
    delivery: BusinessDate,
) -> String {
    format!(
        "{}part-{source}-{delivery}.parquet",
        statements_prefix(date, bank)
    )
}

/// The bank of a curated statements key (its `bank_id=` segment).
pub fn statements_bank(key: &str) -> Option<&str> {
    key.split('/').find_map(|p| p.strip_prefix("bank_id="))
}

/// `curated/transactions/business_date={date}/`
pub fn transactions_prefix(date: BusinessDate) -> String {
    format!("curated/transactions/business_date={date}/")
}

/// Transactions are split by acquiring bank inside their date partition, so a bank's
/// reconciliation reads only its own file (`unassigned` for merchants with no acquirer).
pub fn transactions_key(date: BusinessDate, source: &str, bank: Option<&BankId>) -> String {
    let bank = bank.map_or(UNASSIGNED, BankId::as_str);
    format!("{}part-{source}-{bank}.parquet", transactions_prefix(date))
}

/// The bank a curated transactions object belongs to, from its key.
pub fn transactions_bank(key: &str) -> Option<&str> {
    key.rsplit_once('-')
        .and_then(|(_, b)| b.strip_suffix(".parquet"))
        .filter(|b| *b != UNASSIGNED)
}

/// The rejected records of one source and date.
pub fn rejects_key(date: BusinessDate, source: &str) -> String {
    format!("curated/rejects/business_date={date}/source_id={source}/part.parquet")
}

/// Whether a statements key was written from a delivery of `source`.
pub fn is_from_source(statements_key: &str, source: &str) -> bool {
    statements_key.contains(&format!("/part-{source}-"))
}

/// The partition a curated object lies in: its table, its `column=value` segments in order,
/// and its location (the key's directory, `/`-terminated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedPartition {
    /// The curated table (`statements`, `transactions`, `rejects`): the segment after `curated/`.
    pub table: String,
    /// The Hive-style `column=value` segments of the key, in path order (e.g. `business_date`, `bank_id`).
    pub values: Vec<(String, String)>,
    /// The object's directory, `/`-terminated: the partition location a catalog registers.
    pub location: String,
}

/// Parses `curated/{table}/{column=value}/…/{file}`.
pub fn curated_partition(key: &str) -> CuratedPartition {
    let dir = key.rsplit_once('/').map_or(key, |(d, _)| d);
    let mut parts = dir.split('/');
    let _curated = parts.next();
    let table = parts.next().unwrap_or_default().to_string();
    let values = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CuratedPartition {
        table,
        values,
        location: format!("{dir}/"),
    }
}

/// `index/batch/business_date={date}/`
pub fn batch_date_prefix(date: BusinessDate) -> String {
    format!("index/batch/business_date={date}/")
}

/// The batch index of one bank and date.
pub fn batch_key(date: BusinessDate, bank: &BankId) -> String {
    format!("{}bank_id={bank}/part.parquet", batch_date_prefix(date))
}

/// `index/batch` and everything under it.
pub const BATCH_INDEX: &str = "index/batch";

/// `index/mismatches/business_date={date}/`, or one bank's folder under it.
pub fn mismatches_prefix(date: BusinessDate, bank: Option<&BankId>) -> String {
    match bank {
        Some(b) => format!("index/mismatches/business_date={date}/bank_id={b}/"),
        None => format!("index/mismatches/business_date={date}/"),
    }
}

/// The mismatches of one bank and date.
pub fn mismatches_key(date: BusinessDate, bank: &BankId) -> String {
    format!("{}part.parquet", mismatches_prefix(date, Some(bank)))
}

/// The break registry of one bank and date.
pub fn registry_key(date: BusinessDate, bank: &BankId) -> String {
    format!("index/breaks/business_date={date}/bank_id={bank}/registry.json")
}

/// `index/decisions/`: what people decided about each bank's breaks (design.md §12).
pub const DECISIONS: &str = "index/decisions/";

/// `index/decisions/bank_id={bank}/decisions.json`: the resolutions and manual matches in
/// force for a bank's breaks, written by the plan from the BreakActions events and read by
/// every close of the bank.
pub fn decisions_key(bank: &BankId) -> String {
    format!("{DECISIONS}bank_id={bank}/decisions.json")
}

/// The final index of one date.
pub fn final_key(date: BusinessDate) -> String {
    format!("index/final/business_date={date}/part.parquet")
}

/// The merchant KPIs of one date.
pub fn kpis_key(date: BusinessDate) -> String {
    format!("index/kpis/business_date={date}/part.parquet")
}

/// `index/metrics/`: each close's figures per bank and merchant (design.md §14).
pub const METRICS: &str = "index/metrics/";

/// The figures of the banks of one date: `index/metrics/business_date={date}/banks.json`.
pub fn bank_figures_key(date: BusinessDate) -> String {
    format!("{METRICS}business_date={date}/banks.json")
}

/// The figures of the merchants of one date.
pub fn merchant_figures_key(date: BusinessDate) -> String {
    format!("{METRICS}business_date={date}/merchants.json")
}

/// The business date of a key under [`METRICS`].
pub fn metrics_date(key: &str) -> Option<BusinessDate> {
    let rest = key.strip_prefix(METRICS)?.strip_prefix("business_date=")?;
    BusinessDate::parse(rest.split('/').next()?).ok()
}

/// The anomaly flags of one close: `index/anomalies/business_date={date}/part.parquet`.
pub fn anomalies_key(date: BusinessDate) -> String {
    format!("index/anomalies/business_date={date}/part.parquet")
}

/// The report page of one close: `reports/business_date={date}/report.html`.
pub fn report_key(date: BusinessDate) -> String {
    format!("reports/business_date={date}/report.html")
}

/// What the report page shows, as JSON: `reports/business_date={date}/report.json`.
pub fn report_data_key(date: BusinessDate) -> String {
    format!("reports/business_date={date}/report.json")
}

/// `runs/{date}/`
pub fn runs_prefix(date: BusinessDate) -> String {
    format!("runs/{date}/")
}

/// The summary of one close: `runs/{date}/{execution}.json`.
pub fn run_summary_key(date: BusinessDate, execution: &str) -> String {
    format!("{}{execution}.json", runs_prefix(date))
}

/// The topic as a path segment (Kafka topic names are `[A-Za-z0-9._-]`, at most 249 long).
pub fn topic_segment(topic: &str) -> &str {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && !topic.starts_with('.')
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { topic } else { "_invalid" }
}

/// The UTC date of a record timestamp as an archive path segment (`_invalid` when out of range).
pub fn date_segment(timestamp_ms: i64) -> String {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(timestamp_ms)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()))
        .filter(|d| d.len() == 10)
        .unwrap_or_else(|| "_invalid".into())
}

/// The object key of one group of the stream archive: its first and last `(partition,
/// offset)` and a digest of every coordinate it holds.
pub fn archive_key(topic: &str, date: &str, coordinates: &[(i32, i64)]) -> String {
    let (Some((p0, o0)), Some((p1, o1))) = (coordinates.first(), coordinates.last()) else {
        return format!(
            "{ARCHIVE}topic={}/date={date}/empty.jsonl",
            topic_segment(topic)
        );
    };
    let listed: String = coordinates
        .iter()
        .map(|(p, o)| format!("{p}:{o},"))
        .collect();
    let digest = crate::manifest::sha256_hex(listed.as_bytes());
    format!(
        "{ARCHIVE}topic={}/date={date}/p{p0:04}-{o0:019}_p{p1:04}-{o1:019}_{}.jsonl",
        topic_segment(topic),
        digest.get(..16).unwrap_or(&digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> Result<BusinessDate> {
        BusinessDate::parse("2026-11-20")
    }

    #[test]
    fn manifest_keys_round_trip() -> Result<()> {
        let s = SourceId::new("bank_01")?;
        let key = manifest_key(&s, date()?);
        assert_eq!(key, "landing/bank_01/2026-11-20/_manifest.json");
        assert!(key.starts_with(&landing_prefix(&s, date()?)));
        assert!(is_manifest_key(&key) && !is_manifest_key("landing/bank_01/x_manifest.json"));
        assert_eq!(parse_manifest_key(&key)?, (s, date()?));
        for bad in [
            "landing/bank_01/2026-11-20/file.csv",
            "landing/bank_01/_manifest.json",
            "landing/../2026-11-20/_manifest.json",
            "landing/bank_01/2026-13-20/_manifest.json",
            "landing/bank_01/2026-11-20/x/_manifest.json",
        ] {
            assert!(parse_manifest_key(bad).is_err(), "{bad} accepted");
        }
        Ok(())
    }

    #[test]
    fn curated_keys_round_trip() -> Result<()> {
        let (d, bank) = (date()?, BankId::new("bank_04")?);
        let st = statements_key(d, &bank, "src_x", d);
        assert_eq!(
            st,
            "curated/statements/business_date=2026-11-20/bank_id=bank_04/part-src_x-2026-11-20.parquet"
        );
        assert!(st.starts_with(&statements_prefix(d, &bank)));
        assert!(st.starts_with(&statements_date_prefix(d)));
        assert_eq!(statements_bank(&st), Some("bank_04"));
        assert!(is_from_source(&st, "src_x") && !is_from_source(&st, "src"));
        assert_eq!(
            curated_partition(&st),
            CuratedPartition {
                table: "statements".into(),
                values: vec![
                    ("business_date".into(), "2026-11-20".into()),
                    ("bank_id".into(), "bank_04".into())
                ],
                location: statements_prefix(d, &bank),
            }
        );
        let tx = transactions_key(d, "ledger", Some(&bank));
        assert!(tx.starts_with(&transactions_prefix(d)));
        assert_eq!(transactions_bank(&tx), Some("bank_04"));
        assert_eq!(
            transactions_bank(&transactions_key(d, "ledger", None)),
            None
        );
        let rj = rejects_key(d, "ledger");
        assert_eq!(curated_partition(&rj).table, "rejects");
        assert!(rj.starts_with(&curated_table_prefix("rejects")));
        Ok(())
    }

    #[test]
    fn index_and_run_keys_sit_under_their_prefixes() -> Result<()> {
        let (d, bank) = (date()?, BankId::new("bank_01")?);
        assert!(batch_key(d, &bank).starts_with(&batch_date_prefix(d)));
        assert!(batch_key(d, &bank).starts_with(BATCH_INDEX));
        assert!(mismatches_key(d, &bank).starts_with(&mismatches_prefix(d, Some(&bank))));
        assert!(mismatches_prefix(d, Some(&bank)).starts_with(&mismatches_prefix(d, None)));
        assert_eq!(
            registry_key(d, &bank),
            "index/breaks/business_date=2026-11-20/bank_id=bank_01/registry.json"
        );
        assert_eq!(
            final_key(d),
            "index/final/business_date=2026-11-20/part.parquet"
        );
        assert_eq!(
            kpis_key(d),
            "index/kpis/business_date=2026-11-20/part.parquet"
        );
        let run = run_summary_key(d, "close-2026-11-20");
        assert_eq!(run, "runs/2026-11-20/close-2026-11-20.json");
        assert!(run.starts_with(&runs_prefix(d)));
        let q = quarantine_prefix(&SourceId::new("bank_01")?, d);
        assert_eq!(
            quarantine_reason_key(&q, "a.csv"),
            "quarantine/bank_01/2026-11-20/a.csv.reason.json"
        );
        assert_eq!(source_config_key("bank_01"), "config/sources/bank_01.json");
        assert!(source_config_key("bank_01").starts_with(SOURCES));
        assert_eq!(fx_key(d), "config/fx/2026-11-20.csv");
        Ok(())
    }

    #[test]
    fn archive_keys_name_their_coordinates() {
        let k = archive_key("transactions_topic", "2026-11-20", &[(0, 5), (1, 9)]);
        assert!(k.starts_with("stream/archive/topic=transactions_topic/date=2026-11-20/"));
        assert!(k.contains("p0000-0000000000000000005_p0001-0000000000000000009_"));
        assert_ne!(
            k,
            archive_key(
                "transactions_topic",
                "2026-11-20",
                &[(0, 5), (0, 7), (1, 9)]
            )
        );
        assert!(archive_key("../x", "2026-11-20", &[]).contains("topic=_invalid/"));
    }
}
