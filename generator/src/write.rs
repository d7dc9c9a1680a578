//! Serialization of a generated day into the bucket layout (design.md §2): source files in each
//! bank's own style with their manifests, and config; the mappings, truth and topics are
//! written by [`crate::mapping`], [`crate::truth`] and [`crate::topics`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use recon_shared::Result;
use recon_shared::ids::{BusinessDate, SourceId};
use recon_shared::manifest::{MANIFEST_FILE, Manifest, ManifestFile, sha256_hex};
use serde_json::json;

use super::day::{Day, Line, Txn};
use super::formats::{self, Account};
use super::knobs::Knobs;
use super::mapping::{LEDGER_SOURCE, ledger_mapping, mapping_for};
use super::rng::Rng;
use super::text::{Rec, csv_field, fmt_minor, minor_str, rfc3339_ms, user_id};
use super::truth::truth_files;
use super::world::{Style, World};

/// Records per landing file.
pub const RECORDS_PER_FILE: usize = 250_000;

/// Files of the day: relative path -> bytes (sorted, so writing order is fixed).
pub type Tree = BTreeMap<String, Vec<u8>>;

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
    let date = l.posting_date.date();
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

/// One ledger extract row of `t`.
pub(crate) fn write_txn(out: &mut String, world: &World, day: &Day, t: &Txn) {
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

/// Records split into files of [`RECORDS_PER_FILE`] (one empty file when there are none).
fn file_chunks<T>(records: &[T]) -> Vec<&[T]> {
    if records.is_empty() {
        vec![&[]]
    } else {
        records.chunks(RECORDS_PER_FILE).collect()
    }
}

/// Files of a header and records (CSV, JSON lines), with their record counts.
pub(crate) fn plain_files<R: AsRef<str>>(head: &str, records: &[R]) -> Vec<(Vec<u8>, u64)> {
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

/// One bank's statement files for `date` in the bank's style, with their record counts;
/// MT940 and camt.053 balances open at `opening_minor`.
pub(crate) fn statement_files(
    world: &World,
    bank: usize,
    date: BusinessDate,
    generated_at: DateTime<Utc>,
    lines: &[&Line],
    opening_minor: i64,
) -> Vec<(Vec<u8>, u64)> {
    let b = &world.banks[bank];
    let records = bank_records(world, lines);
    let chunks = file_chunks(&records);
    let account = Account {
        bank_id: b.id.as_str(),
        currency: b.currency,
        date,
        opening_minor,
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
pub(crate) fn delivery(
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

/// `h:m` UTC on the day `days` after `date`.
pub(crate) fn at(date: BusinessDate, days: u64, h: u32, m: u32) -> DateTime<Utc> {
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

pub(crate) fn jsonl<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// The ledger extract's header line.
pub(crate) const LEDGER_HEADER: &str = "transaction_id,merchant_id,user_id,amount,currency,status,event_time,payment_method,original_transaction_id\n";

/// The files of `config/` but the calendars: source mappings, FX for each of `fx_dates` (the
/// world's one table), merchants, policies, fee rules, `tolerances`, users and the knobs.
pub(crate) fn config_files(
    tree: &mut Tree,
    world: &World,
    tolerances: &recon_shared::rules::Tolerances,
    knobs: Vec<(String, rust_decimal::Decimal)>,
    fx_dates: &[BusinessDate],
) -> Result<()> {
    let date = world.date;
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
    for d in fx_dates {
        tree.insert(format!("config/fx/{d}.csv"), world.fx.to_csv().into_bytes());
    }
    tree.insert("config/merchants.jsonl".into(), jsonl(&world.merchants)?);
    tree.insert("config/policies.jsonl".into(), jsonl(&world.policies)?);
    tree.insert(
        "config/rules/fee_rules.jsonl".into(),
        jsonl(&world.fee_rules)?,
    );
    tree.insert(
        "config/rules/tolerances.json".into(),
        serde_json::to_vec_pretty(tolerances)?,
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
    let knob_doc: BTreeMap<String, String> =
        knobs.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    tree.insert(
        "config/generator.json".into(),
        serde_json::to_vec_pretty(&knob_doc)?,
    );
    Ok(())
}

/// Everything but the topics.
pub fn landing_and_config(world: &World, day: &Day, knobs: &Knobs) -> Result<Tree> {
    let mut tree = Tree::new();
    let date = world.date;
    let prev = date.pred()?;
    config_files(
        &mut tree,
        world,
        &day.tolerances,
        knobs.describe_for(1),
        &[date, prev],
    )?;

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
        let head = LEDGER_HEADER;
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
            statement_files(
                world,
                bank,
                d,
                generated,
                &lines,
                formats::opening_balance_minor(bank, b.currency),
            ),
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
            statement_files(
                world,
                *bank,
                date,
                generated,
                &lines,
                formats::opening_balance_minor(*bank, b.currency),
            ),
        )?;
    }
    tree.extend(truth_files(world, day)?);
    Ok(tree)
}
