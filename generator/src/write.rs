//! Serialization of a generated day into the bucket layout (DESIGN §2): source files in each
//! bank's own style with their manifests and mappings, the Kafka topics, config and truth.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use recon_shared::ids::{BusinessDate, SourceId, StatementId, TransactionId, UserId};
use recon_shared::manifest::{MANIFEST_FILE, Manifest, ManifestFile, sha256_hex};
use recon_shared::money::Currency;
use recon_shared::records::{StatementLine, Transaction, TxnStatus};
use recon_shared::source::{AmountUnit, SignConvention, SourceFormat, SourceKind, SourceMapping};
use recon_shared::{Error, Result};
use rust_decimal::Decimal;
use serde_json::json;

use super::day::{Day, Line, Txn};
use super::formats::{self, Account};
use super::knobs::Knobs;
use super::rng::Rng;
use super::world::{Style, World};

/// Records per landing file.
pub const RECORDS_PER_FILE: usize = 250_000;
/// Partitions of each Kafka topic.
pub const TOPIC_PARTITIONS: u64 = 6;
/// Source id of the internal system-of-record extract.
pub const LEDGER_SOURCE: &str = "ledger";

/// Files of the day: relative path -> bytes (sorted, so writing order is fixed).
pub type Tree = BTreeMap<String, Vec<u8>>;

/// `minor` as a decimal string at `exponent` places with `sep` as decimal separator.
pub fn fmt_minor(out: &mut String, minor: i64, exponent: u32, sep: char) {
    if minor < 0 {
        out.push('-');
    }
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        let _ = write!(out, "{abs}");
        return;
    }
    let p = 10u64.pow(exponent);
    let _ = write!(
        out,
        "{}{sep}{:0width$}",
        abs / p,
        abs % p,
        width = exponent as usize
    );
}

fn minor_str(minor: i64, cur: Currency) -> String {
    let mut s = String::new();
    fmt_minor(&mut s, minor, cur.exponent(), '.');
    s
}

fn csv_field(out: &mut String, value: &str, delim: char) {
    if value.contains([delim, '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn rfc3339_ms(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339_ms(&mut s, ms);
    s
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` without going through a format-string interpreter (hot path).
fn push_rfc3339_ms(out: &mut String, ms: i64) {
    let dt = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let (d, t) = (dt.date_naive(), dt.time());
    use chrono::{Datelike, Timelike};
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        d.month(),
        d.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms.rem_euclid(1000)
    );
}

/// The mapping a bank's style needs (`config/sources/{bank}.json`).
pub fn mapping_for(world: &World, bank: usize) -> Result<SourceMapping> {
    let b = &world.banks[bank];
    let cols = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut m = SourceMapping {
        source_id: SourceId::new(b.id.as_str())?,
        kind: SourceKind::Statement,
        format: SourceFormat::Csv,
        delimiter: ',',
        header: true,
        decimal_separator: '.',
        amount_unit: AmountUnit::Major,
        sign_convention: SignConvention::Signed,
        timezone: b.timezone.to_string(),
        date_format: "%Y-%m-%d".into(),
        timestamp_format: None,
        default_currency: Some(b.currency),
        bank_id: Some(b.id.clone()),
        settlement_currency: Some(b.currency),
        columns: BTreeMap::new(),
    };
    match b.style {
        Style::CsvComma => {
            m.columns = cols(&[
                ("statement_id", "statement_id"),
                ("transaction_id", "transaction_ref"),
                ("posting_date", "value_date"),
                ("amount_posted", "amount"),
                ("currency", "ccy"),
                ("fee_charged", "fee"),
                ("merchant_id", "merchant_ref"),
                ("reference", "description"),
                ("record_type", "type"),
            ]);
        }
        Style::CsvSemicolon => {
            m.delimiter = ';';
            m.decimal_separator = ',';
            m.date_format = "%d.%m.%Y".into();
            m.columns = cols(&[
                ("statement_id", "Buchungs-ID"),
                ("transaction_id", "Transaktionsreferenz"),
                ("posting_date", "Buchungstag"),
                ("amount_posted", "Betrag"),
                ("currency", "Waehrung"),
                ("fee_charged", "Gebuehr"),
                ("merchant_id", "Haendler"),
                ("reference", "Verwendungszweck"),
                ("record_type", "Art"),
            ]);
        }
        Style::Jsonl => {
            m.format = SourceFormat::Jsonl;
            m.columns = cols(&[
                ("statement_id", "id"),
                ("transaction_id", "paymentRef"),
                ("posting_date", "postedAt"),
                ("amount_posted", "amount.value"),
                ("currency", "amount.currency"),
                ("fee_charged", "fee"),
                ("merchant_id", "merchant"),
                ("reference", "memo"),
                ("record_type", "kind"),
            ]);
        }
        // Fixed layouts: no columns; balances are checked against the settlement currency.
        Style::Mt940 => m.format = SourceFormat::Mt940,
        Style::Camt053 => m.format = SourceFormat::Camt053,
        Style::CsvPipeMinor => {
            m.delimiter = '|';
            m.date_format = "%Y%m%d".into();
            m.amount_unit = AmountUnit::Minor;
            m.sign_convention = SignConvention::DebitCreditColumn;
            m.columns = cols(&[
                ("statement_id", "ID"),
                ("transaction_id", "TXN"),
                ("posting_date", "DATE"),
                ("amount_posted", "AMOUNT_MINOR"),
                ("currency", "CUR"),
                ("fee_charged", "FEE_MINOR"),
                ("merchant_id", "MID"),
                ("reference", "REF"),
                ("record_type", "KIND"),
                ("direction", "DC"),
            ]);
        }
    }
    m.validate()?;
    Ok(m)
}

pub fn ledger_mapping() -> Result<SourceMapping> {
    let cols = [
        "transaction_id",
        "merchant_id",
        "user_id",
        "amount",
        "currency",
        "status",
        "event_time",
        "payment_method",
        "original_transaction_id",
    ];
    let m = SourceMapping {
        source_id: SourceId::new(LEDGER_SOURCE)?,
        kind: SourceKind::Transactions,
        format: SourceFormat::Csv,
        delimiter: ',',
        header: true,
        decimal_separator: '.',
        amount_unit: AmountUnit::Major,
        sign_convention: SignConvention::Signed,
        timezone: "UTC".into(),
        date_format: "%Y-%m-%d".into(),
        timestamp_format: None,
        default_currency: None,
        bank_id: None,
        settlement_currency: None,
        columns: cols
            .iter()
            .map(|c| (c.to_string(), c.to_string()))
            .collect(),
    };
    m.validate()?;
    Ok(m)
}

fn header(style: Style) -> &'static str {
    match style {
        Style::CsvComma => {
            "statement_id,transaction_ref,value_date,amount,ccy,fee,merchant_ref,description,type\n"
        }
        Style::CsvSemicolon => {
            "Buchungs-ID;Transaktionsreferenz;Buchungstag;Betrag;Waehrung;Gebuehr;Haendler;Verwendungszweck;Art\n"
        }
        Style::CsvPipeMinor => "ID|TXN|DATE|AMOUNT_MINOR|CUR|FEE_MINOR|MID|REF|KIND|DC\n",
        Style::Jsonl | Style::Mt940 | Style::Camt053 => "",
    }
}

/// Writes one statement record in the bank's style.
fn write_line(out: &mut String, world: &World, l: &Line) {
    let bank = &world.banks[l.bank];
    let settle = bank.currency;
    let (amount, cur) = l.original.unwrap_or((l.amount_minor, settle));
    let merchant = l
        .merchant
        .map(|m| world.merchants[m as usize].merchant_id.as_str())
        .unwrap_or("");
    let txn = l.txn_ref.as_deref().unwrap_or("");
    let date = l.business_date.date();
    let kind = l.record_type.as_str();
    match bank.style {
        Style::CsvComma | Style::CsvSemicolon => {
            let (d, sep) = if bank.style == Style::CsvComma {
                (',', '.')
            } else {
                (';', ',')
            };
            out.push_str(&l.statement_id);
            out.push(d);
            out.push_str(txn);
            out.push(d);
            if d == ',' {
                let _ = write!(out, "{}", date.format("%Y-%m-%d"));
            } else {
                let _ = write!(out, "{}", date.format("%d.%m.%Y"));
            }
            out.push(d);
            fmt_minor(out, amount, cur.exponent(), sep);
            out.push(d);
            out.push_str(cur.code());
            out.push(d);
            fmt_minor(out, l.fee_minor, settle.exponent(), sep);
            out.push(d);
            out.push_str(merchant);
            out.push(d);
            csv_field(out, &l.reference, d);
            out.push(d);
            out.push_str(kind);
            out.push('\n');
        }
        Style::CsvPipeMinor => {
            let _ = write!(
                out,
                "{}|{txn}|{}|{}|{}|{}|{merchant}|",
                l.statement_id,
                date.format("%Y%m%d"),
                amount.unsigned_abs(),
                cur.code(),
                l.fee_minor
            );
            csv_field(out, &l.reference, '|');
            let _ = writeln!(out, "|{kind}|{}", if amount < 0 { "D" } else { "C" });
        }
        Style::Jsonl => {
            let tz: Tz = bank.timezone.parse().unwrap_or(chrono_tz::UTC);
            let local = date.and_hms_opt(0, 0, 0).unwrap_or_default()
                + chrono::Duration::seconds(i64::from(l.posted_secs));
            let posted = tz
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.to_rfc3339())
                .unwrap_or_default();
            let v = json!({
                "id": l.statement_id,
                "paymentRef": l.txn_ref,
                "postedAt": posted,
                "amount": {"value": minor_str(amount, cur), "currency": cur.code()},
                "fee": minor_str(l.fee_minor, settle),
                "merchant": l.merchant.map(|m| world.merchants[m as usize].merchant_id.as_str()),
                "memo": l.reference,
                "kind": kind,
            });
            let _ = writeln!(out, "{v}");
        }
        Style::Mt940 => formats::mt940_entry(out, l, l.merchant.map(|_| merchant), settle),
        Style::Camt053 => {
            let m = l.merchant.map(|m| &world.merchants[m as usize]);
            let party = m.map(|m| (m.merchant_id.as_str(), m.merchant_name.as_str()));
            formats::camt_entry(out, l, party, settle);
        }
    }
}

/// The canonical record the normalizer must produce from a generated line.
pub fn canonical_line(world: &World, l: &Line) -> Result<StatementLine> {
    let settle = world.banks[l.bank].currency;
    let (original_amount, original_currency, fx_rate) = match l.original {
        Some((minor, cur)) => (
            Some(cur.from_minor(minor)),
            Some(cur),
            world.fx.rate(cur, settle).map(|r| r.normalize()),
        ),
        None => (None, None, None),
    };
    Ok(StatementLine {
        statement_id: StatementId::new(&l.statement_id)?,
        transaction_id: l.txn_ref.as_deref().map(TransactionId::new).transpose()?,
        bank_id: world.banks[l.bank].id.clone(),
        posting_date: l.business_date,
        amount_posted: settle.from_minor(l.amount_minor),
        currency: settle,
        fee_charged: settle.from_minor(l.fee_minor),
        merchant_id: l
            .merchant
            .map(|m| world.merchants[m as usize].merchant_id.clone()),
        reference: l.reference.clone(),
        record_type: Some(l.record_type),
        original_amount,
        original_currency,
        fx_rate,
    })
}

pub fn user_id(u: u32) -> String {
    format!("U{:08}", u + 1)
}

/// The canonical record of a generated transaction.
pub fn canonical_txn(world: &World, day: &Day, t: &Txn) -> Result<Transaction> {
    Ok(Transaction {
        transaction_id: TransactionId::new(&t.id)?,
        merchant_id: world.merchants[t.merchant as usize].merchant_id.clone(),
        user_id: UserId::new(user_id(t.user))?,
        amount: t.currency.from_minor(t.amount_minor),
        currency: t.currency,
        status: t.status,
        event_time: DateTime::from_timestamp_millis(t.event_ms)
            .ok_or_else(|| Error::Invariant("event time".into()))?,
        payment_method: t.method,
        original_transaction_id: t
            .original
            .map(|o| TransactionId::new(&day.txns[o as usize].id))
            .transpose()?,
    })
}

fn write_txn(out: &mut String, world: &World, day: &Day, t: &Txn) {
    let orig = t
        .original
        .map(|o| day.txns[o as usize].id.as_str())
        .unwrap_or("");
    let _ = write!(
        out,
        "{},{},{},",
        t.id,
        world.merchants[t.merchant as usize].merchant_id,
        user_id(t.user)
    );
    fmt_minor(out, t.amount_minor, t.currency.exponent(), '.');
    let _ = writeln!(
        out,
        ",{},{},{},{},{orig}",
        t.currency,
        t.status,
        rfc3339_ms(t.event_ms),
        t.method
    );
}

/// One statement record as written, with its signed amount in minor units of the settlement
/// currency (the MT940 and camt.053 framing adds them up into balances).
pub struct Rec {
    pub text: String,
    pub amount_minor: i64,
}

impl AsRef<str> for Rec {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Records split into files of [`RECORDS_PER_FILE`] (one empty file when there are none).
fn file_chunks<T>(records: &[T]) -> Vec<&[T]> {
    if records.is_empty() {
        vec![&[]]
    } else {
        records.chunks(RECORDS_PER_FILE).collect()
    }
}

/// Files of a header and records (CSV, JSON lines), with their record counts.
fn plain_files<R: AsRef<str>>(head: &str, records: &[R]) -> Vec<(Vec<u8>, u64)> {
    file_chunks(records)
        .into_iter()
        .map(|chunk| {
            let size = chunk.iter().map(|r| r.as_ref().len()).sum::<usize>();
            let mut body = String::with_capacity(head.len() + size);
            body.push_str(head);
            for r in chunk {
                body.push_str(r.as_ref());
            }
            (body.into_bytes(), chunk.len() as u64)
        })
        .collect()
}

/// One bank's statement files for `date` in the bank's style, with their record counts.
fn statement_files(
    world: &World,
    bank: usize,
    date: BusinessDate,
    generated_at: DateTime<Utc>,
    lines: &[&Line],
) -> Vec<(Vec<u8>, u64)> {
    let b = &world.banks[bank];
    let records = bank_records(world, lines);
    let chunks = file_chunks(&records);
    let account = Account {
        bank_id: b.id.as_str(),
        currency: b.currency,
        date,
        opening_minor: formats::opening_balance_minor(bank, b.currency),
        created: generated_at,
    };
    let bodies = match b.style {
        Style::Mt940 => formats::mt940_files(&account, &chunks),
        Style::Camt053 => formats::camt_files(&account, &chunks),
        style => return plain_files(header(style), &records),
    };
    bodies
        .into_iter()
        .zip(chunks.iter().map(|c| c.len() as u64))
        .collect()
}

/// Adds the files of one delivery (bytes and record count each) with their manifest.
#[allow(clippy::too_many_arguments)]
fn delivery(
    tree: &mut Tree,
    prefix: &str,
    source: &str,
    date: BusinessDate,
    version: u32,
    generated_at: DateTime<Utc>,
    file_stem: &str,
    ext: &str,
    bodies: Vec<(Vec<u8>, u64)>,
) -> Result<()> {
    let mut files = Vec::new();
    for (i, (bytes, record_count)) in bodies.into_iter().enumerate() {
        let name = format!("{file_stem}_{:04}.{ext}", i + 1);
        files.push(ManifestFile {
            name: name.clone(),
            size_bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            record_count,
        });
        tree.insert(format!("{prefix}{source}/{date}/{name}"), bytes);
    }
    let manifest = Manifest {
        source_id: SourceId::new(source)?,
        business_date: date,
        version,
        generated_at,
        files,
    };
    tree.insert(
        format!("{prefix}{source}/{date}/{MANIFEST_FILE}"),
        manifest.to_json()?,
    );
    Ok(())
}

fn at(date: BusinessDate, days: u64, h: u32, m: u32) -> DateTime<Utc> {
    (date.date() + chrono::Days::new(days))
        .and_hms_opt(h, m, 0)
        .unwrap_or_default()
        .and_utc()
}

/// Statement records of one bank and date in file order (duplicated records repeated).
fn bank_records(world: &World, lines: &[&Line]) -> Vec<Rec> {
    let mut out = Vec::with_capacity(lines.len() + 16);
    for l in lines {
        let mut text = String::with_capacity(128);
        write_line(&mut text, world, l);
        let amount_minor = l.amount_minor;
        if l.dup_record {
            out.push(Rec {
                text: text.clone(),
                amount_minor,
            });
        }
        out.push(Rec { text, amount_minor });
    }
    out
}

fn jsonl<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Everything but the topics.
pub fn landing_and_config(world: &World, day: &Day, knobs: &Knobs) -> Result<Tree> {
    let mut tree = Tree::new();
    let date = world.date;
    let prev = date.pred()?;
    // Config.
    for (i, _) in world.banks.iter().enumerate() {
        let m = mapping_for(world, i)?;
        tree.insert(
            format!("config/sources/{}.json", m.source_id),
            serde_json::to_vec_pretty(&m)?,
        );
    }
    tree.insert(
        format!("config/sources/{LEDGER_SOURCE}.json"),
        serde_json::to_vec_pretty(&ledger_mapping()?)?,
    );
    tree.insert(
        format!("config/fx/{date}.csv"),
        world.fx.to_csv().into_bytes(),
    );
    tree.insert(
        format!("config/fx/{prev}.csv"),
        world.fx.to_csv().into_bytes(),
    );
    tree.insert("config/merchants.jsonl".into(), jsonl(&world.merchants)?);
    tree.insert("config/policies.jsonl".into(), jsonl(&world.policies)?);
    tree.insert(
        "config/rules/fee_rules.jsonl".into(),
        jsonl(&world.fee_rules)?,
    );
    tree.insert(
        "config/rules/tolerances.json".into(),
        serde_json::to_vec_pretty(&day.tolerances)?,
    );
    let mut users = Vec::with_capacity(world.users);
    let mut urng = Rng::new(u64::from(
        date.date()
            .format("%Y%m%d")
            .to_string()
            .parse::<u32>()
            .unwrap_or(0),
    ));
    for u in 0..world.users {
        users.push(json!({
            "user_id": user_id(u as u32),
            "home_country": *urng.pick(&["US", "DE", "GB", "FR", "JP", "CH", "CA", "NL"]),
            "kyc_status": if urng.chance(9000) { "VERIFIED" } else { "PENDING" },
            "segment": *urng.pick(&["consumer", "consumer", "consumer", "business"]),
        }));
    }
    tree.insert("config/users.jsonl".into(), jsonl(&users)?);
    let knob_doc: BTreeMap<String, String> = knobs
        .describe()
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    tree.insert(
        "config/generator.json".into(),
        serde_json::to_vec_pretty(&knob_doc)?,
    );

    // Ledger extracts (today and the late file's day).
    for d in [date, prev] {
        let rows: Vec<String> = day
            .txns
            .iter()
            .filter(|t| t.business_date == d)
            .map(|t| {
                let mut s = String::with_capacity(128);
                write_txn(&mut s, world, day, t);
                s
            })
            .collect();
        let head = "transaction_id,merchant_id,user_id,amount,currency,status,event_time,payment_method,original_transaction_id\n";
        delivery(
            &mut tree,
            "landing/",
            LEDGER_SOURCE,
            d,
            1,
            at(d, 1, 0, 30),
            "transactions",
            "csv",
            plain_files(head, &rows),
        )?;
    }

    // Statements per bank and date.
    let mut by_bank: BTreeMap<(usize, BusinessDate), Vec<&Line>> = BTreeMap::new();
    for l in &day.lines {
        by_bank
            .entry((l.bank, l.business_date))
            .or_default()
            .push(l);
    }
    for ((bank, d), mut lines) in by_bank {
        lines.sort_by_key(|l| l.seq);
        let b = &world.banks[bank];
        let corrected = day.correction.as_ref().is_some_and(|(cb, _)| *cb == bank) && d == date;
        let (version, stem, generated) = match (corrected, d == prev) {
            (true, _) => (2, "statements_v2", at(d, 1, 6, 0)),
            (false, true) => (1, "statements", at(date, 1, 3, 0)),
            (false, false) => (1, "statements", at(d, 1, 1, 10)),
        };
        delivery(
            &mut tree,
            "landing/",
            b.id.as_str(),
            d,
            version,
            generated,
            stem,
            b.style.extension(),
            statement_files(world, bank, d, generated, &lines),
        )?;
    }
    if let Some((bank, v1)) = &day.correction {
        let b = &world.banks[*bank];
        let lines: Vec<&Line> = v1.iter().collect();
        let generated = at(date, 1, 1, 10);
        delivery(
            &mut tree,
            "redelivery/v1/landing/",
            b.id.as_str(),
            date,
            1,
            generated,
            "statements_v1",
            b.style.extension(),
            statement_files(world, *bank, date, generated, &lines),
        )?;
    }
    write_truth(&mut tree, world, day)?;
    Ok(tree)
}

fn truth_money(minor: Option<i64>, cur: Currency) -> String {
    minor.map(|m| minor_str(m, cur)).unwrap_or_default()
}

fn write_truth(tree: &mut Tree, world: &World, day: &Day) -> Result<()> {
    let mut tx = String::from(
        "business_date,transaction_id,bank_id,case,reconciled_status,mismatch_type,match_rule,statement_ids,discrepancy,fee_variance,currency\n",
    );
    let mut by_case: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for t in &day.txns {
        let truth = t
            .truth
            .as_ref()
            .ok_or_else(|| Error::Invariant(format!("no truth for {}", t.id)))?;
        let cur = world.banks[t.bank].currency;
        let mut ids: Vec<&str> = truth
            .counterparts
            .iter()
            .map(|l| day.lines[*l as usize].statement_id.as_str())
            .collect();
        ids.sort_unstable();
        let _ = writeln!(
            tx,
            "{},{},{},{},{},{},{},{},{},{},{}",
            t.business_date,
            t.id,
            world.banks[t.bank].id,
            t.case.as_str(),
            truth.status,
            truth.mismatch,
            truth.rule,
            ids.join("|"),
            truth_money(truth.discrepancy, cur),
            truth_money(truth.fee_variance, cur),
            cur
        );
        *by_case.entry(t.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("transactions.{}", truth.status))
            .or_default() += 1;
    }
    let mut ln = String::from(
        "business_date,statement_id,bank_id,case,reconciled_status,mismatch_type,match_rule,transaction_ids,discrepancy,currency,duplicate_records\n",
    );
    let mut lines: Vec<&Line> = day.lines.iter().collect();
    lines.sort_by_key(|l| (l.business_date, l.bank, l.seq));
    let mut line_cases: BTreeMap<&str, u64> = BTreeMap::new();
    let mut dup_records = 0u64;
    for l in lines {
        let truth = l
            .truth
            .as_ref()
            .ok_or_else(|| Error::Invariant(format!("no truth for {}", l.statement_id)))?;
        let cur = world.banks[l.bank].currency;
        let mut ids: Vec<&str> = truth
            .counterparts
            .iter()
            .map(|t| day.txns[*t as usize].id.as_str())
            .collect();
        ids.sort_unstable();
        let _ = writeln!(
            ln,
            "{},{},{},{},{},{},{},{},{},{},{}",
            l.business_date,
            l.statement_id,
            world.banks[l.bank].id,
            l.case.as_str(),
            truth.status,
            truth.mismatch,
            truth.rule,
            ids.join("|"),
            truth_money(truth.discrepancy, cur),
            cur,
            u8::from(l.dup_record)
        );
        *line_cases.entry(l.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("statement_lines.{}", truth.status))
            .or_default() += 1;
        dup_records += u64::from(l.dup_record);
    }
    let summary = json!({
        "business_date": world.date.to_string(),
        "transactions": day.txns.len(),
        "statement_lines": day.lines.len(),
        "exact_duplicate_records": dup_records,
        "declined_stream_only": day.declined.len(),
        "transaction_cases": by_case,
        "statement_line_cases": line_cases,
        "by_status": by_status,
    });
    tree.insert("truth/transactions.csv".into(), tx.into_bytes());
    tree.insert("truth/statement_lines.csv".into(), ln.into_bytes());
    tree.insert(
        "truth/summary.json".into(),
        serde_json::to_vec_pretty(&summary)?,
    );
    Ok(())
}

fn partition_of(key: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % TOPIC_PARTITIONS
}

struct Event {
    arrival_ms: i64,
    key: String,
    value: String,
}

/// Orders events by arrival, numbers offsets per partition, and adds redeliveries.
fn topic_file(topic: &str, mut events: Vec<Event>, knobs: &Knobs, rng: &mut Rng) -> Vec<u8> {
    events.sort_by(|a, b| (a.arrival_ms, &a.key, &a.value).cmp(&(b.arrival_ms, &b.key, &b.value)));
    let mut offsets = [0u64; TOPIC_PARTITIONS as usize];
    let mut out = String::with_capacity(
        events.iter().map(|e| e.value.len() + 120).sum::<usize>() * 102 / 100,
    );
    // Records to deliver again: position (in records) -> byte ranges already written.
    let mut pending: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let p = partition_of(&e.key);
        let offset = offsets[p as usize];
        offsets[p as usize] += 1;
        let start = out.len();
        let _ = writeln!(
            out,
            "{{\"topic\":\"{topic}\",\"partition\":{p},\"offset\":{offset},\"timestamp\":{},\"key\":\"{}\",\"value\":{}}}",
            e.arrival_ms, e.key, e.value
        );
        if rng.chance(knobs.redelivery) {
            pending
                .entry(i + 1 + rng.below(500) as usize)
                .or_default()
                .push((start, out.len()));
        }
        if let Some(again) = pending.remove(&i) {
            for (a, b) in again {
                out.extend_from_within(a..b);
            }
        }
    }
    for (_, again) in pending {
        for (a, b) in again {
            out.extend_from_within(a..b);
        }
    }
    out.into_bytes()
}

fn arrival(rng: &mut Rng, knobs: &Knobs, at_ms: i64) -> i64 {
    let mut a = at_ms + rng.range(50, 2000);
    if rng.chance(knobs.out_of_order) {
        a += rng.range(60_000, 900_000);
    }
    a
}

fn txn_value(world: &World, day: &Day, t: &Txn, status: TxnStatus, event_ms: i64) -> String {
    // Ids are validated ASCII without quotes, so no JSON escaping is needed.
    let mut v = String::with_capacity(256);
    let _ = write!(
        v,
        "{{\"transaction_id\":\"{}\",\"merchant_id\":\"{}\",\"user_id\":\"{}\",\"amount\":\"",
        t.id,
        world.merchants[t.merchant as usize].merchant_id,
        user_id(t.user)
    );
    fmt_minor(&mut v, t.amount_minor, t.currency.exponent(), '.');
    let _ = write!(
        v,
        "\",\"currency\":\"{}\",\"status\":\"{}\",\"event_time\":\"",
        t.currency, status
    );
    push_rfc3339_ms(&mut v, event_ms);
    let _ = write!(v, "\",\"payment_method\":\"{}\"", t.method);
    if let Some(o) = t.original {
        let _ = write!(
            v,
            ",\"original_transaction_id\":\"{}\"",
            day.txns[o as usize].id
        );
    }
    v.push('}');
    v
}

/// `topics/transactions_topic.jsonl` and `topics/fraud_signals_topic.jsonl`.
pub fn topics(world: &World, day: &Day, knobs: &Knobs, rng: &mut Rng) -> Result<Tree> {
    let date = world.date;
    let streamed = day
        .txns
        .iter()
        .filter(|t| t.business_date == date)
        .chain(day.declined.iter());
    let mut events = Vec::new();
    let mut signals = Vec::new();
    let dc = date.to_string().replace('-', "");
    let mut n_signals = 0usize;
    for t in streamed {
        let mut push = |rng: &mut Rng, status: TxnStatus, at: i64| {
            events.push(Event {
                arrival_ms: arrival(rng, knobs, at),
                key: t.id.clone(),
                value: txn_value(world, day, t, status, at),
            });
        };
        match t.status {
            TxnStatus::Approved if rng.chance(knobs.pending_first) => {
                let at = t.event_ms - rng.range(1_000, 30_000);
                push(rng, TxnStatus::Pending, at);
                push(rng, TxnStatus::Approved, t.event_ms);
            }
            TxnStatus::Chargeback => {
                push(rng, TxnStatus::Approved, t.event_ms);
                let at = t.event_ms + rng.range(3_600_000, 6 * 3_600_000);
                push(rng, TxnStatus::Chargeback, at);
            }
            s => push(rng, s, t.event_ms),
        }
        if rng.chance(knobs.fraud_coverage) {
            n_signals += 1;
            let high = rng.chance(400);
            let score = if high {
                rng.range(8001, 9999)
            } else {
                rng.range(0, 6000)
            };
            let inferred = t.event_ms + rng.range(100, 1500);
            signals.push((t.id.clone(), score, inferred, n_signals, high));
        }
    }
    let fr = u64::from(knobs.fraud_reference.max(1));
    let orphans = (n_signals as u64 * (10_000 - fr.min(10_000)) / fr) as usize;
    let midnight = date
        .date()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or_default();
    for i in 0..orphans {
        n_signals += 1;
        let score = rng.range(0, 9999);
        signals.push((
            format!("TX-{dc}-F{:08}", i + 1),
            score,
            midnight + rng.range(0, 86_399_000),
            n_signals,
            score > 8000,
        ));
    }
    let mut sig_events = Vec::with_capacity(signals.len());
    for (txn, score, inferred, n, high) in signals {
        let mut v = json!({
            "fraud_signal_id": format!("FS-{dc}-{n:09}"),
            "transaction_id": txn,
            "fraud_score": Decimal::new(score, 4).to_string(),
            "model_version": "fraud-gbm-2026.11.2",
            "inference_time": rfc3339_ms(inferred),
        });
        if high {
            v["reason_code"] = json!(*rng.pick(&["VELOCITY", "DEVICE_MISMATCH", "GEO_ANOMALY"]));
        }
        let sent = inferred + rng.range(0, 1000);
        sig_events.push(Event {
            arrival_ms: arrival(rng, knobs, sent),
            key: txn,
            value: v.to_string(),
        });
    }
    let mut tree = Tree::new();
    tree.insert(
        "topics/transactions_topic.jsonl".into(),
        topic_file("transactions_topic", events, knobs, rng),
    );
    tree.insert(
        "topics/fraud_signals_topic.jsonl".into(),
        topic_file("fraud_signals_topic", sig_events, knobs, rng),
    );
    Ok(tree)
}
