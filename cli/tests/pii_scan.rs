//! No PII anywhere the pipeline writes: a generated day is seeded with e-mail addresses, card
//! numbers and user ids in every place that can carry them — the ledger's `user_id` (an
//! e-mail, one hidden behind CSV-escaped quotes, a card number), rejected ledger rows with the
//! user id repeated in another field, an unreadable row, Kafka transactions with `email`,
//! `card_number` and free text holding the user id (accepted and rejected), a user id that is
//! an e-mail, a numeric amount — then the whole local pipeline runs (`recon run` with
//! `RUST_LOG=debug`), and every output file and every log line is scanned for them.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{date, file_text, files_under, tmp};
use recon_shared::columnar::read_parquet;
use recon_shared::manifest::{MANIFEST_FILE, sha256_hex};
use recon_shared::source::{Reject, RejectReason};
use recon_shared::{Error, Result};
use serde_json::Value;

const EMAILS: &[&str] = &[
    "bob.smith@example.com",
    "bob\"smith@example.com",
    "carol@example.org",
    "dave.jones@example.net",
];
const CARDS: &[&str] = &["4111111111111111", "5500005555555559", "340000000000009"];
/// Raw user ids seeded beside the generator's own (`U` + 8 digits, like them).
const USERS: &[&str] = &["U77777771", "U77777772", "U77777773", "U77777774"];

/// Raw user ids of the generated day (`config/users.jsonl`) and the seeded ones.
fn user_ids(dir: &Path) -> Result<BTreeSet<String>> {
    let p = dir.join("config/users.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let mut out: BTreeSet<String> = USERS.iter().map(|u| u.to_string()).collect();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)?;
        if let Some(u) = v["user_id"].as_str() {
            out.insert(u.to_string());
        }
    }
    Ok(out)
}

/// Every seeded value and raw user id found in `text`.
fn leaks(text: &[u8], ids: &BTreeSet<String>) -> Vec<String> {
    let s = String::from_utf8_lossy(text);
    let mut out: Vec<String> = EMAILS
        .iter()
        .flat_map(|e| [e.to_string(), e.replace('"', "\"\"")])
        .chain(["smith@example.com".to_string()])
        .chain(CARDS.iter().map(|c| c.to_string()))
        .filter(|v| s.contains(v.as_str()))
        .collect();
    for (i, w) in text.windows(9).enumerate() {
        let boundary = i == 0 || !text[i - 1].is_ascii_alphanumeric();
        let end = text.get(i + 9).is_none_or(|b| !b.is_ascii_alphanumeric());
        if boundary && end && w[0] == b'U' && w[1..].iter().all(u8::is_ascii_digit) {
            let id = String::from_utf8_lossy(w).into_owned();
            if ids.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Appends PII-bearing rows to the ledger's first data file and re-states it in the manifest.
fn seed_ledger(data: &Path) -> Result<usize> {
    let dir = data.join(format!("landing/ledger/{}", date()?));
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut manifest: Value = serde_json::from_str(&read(&manifest_path)?)?;
    let name = manifest["files"][0]["name"]
        .as_str()
        .ok_or_else(|| Error::Invariant("a ledger manifest without files".into()))?
        .to_string();
    let path = dir.join(&name);
    let mut text = read(&path)?;
    let ts = "2026-11-20T10:00:00.000Z";
    let rows = [
        // An e-mail as user id: INVALID_ID; the reason must not quote it.
        format!(
            "TX-PII-1,M000001,{},10.00,USD,APPROVED,{ts},CARD,",
            EMAILS[0]
        ),
        // The same behind CSV-escaped quotes.
        format!("TX-PII-2,M000001,\"bob\"\"smith@example.com\",10.00,USD,APPROVED,{ts},CARD,"),
        // A card number as user id is a valid id: accepted, and tokenized.
        format!(
            "TX-PII-3,M000001,{},10.00,USD,APPROVED,{ts},CARD,",
            CARDS[0]
        ),
        // Rejected with a valid user id, repeated in another field.
        format!(
            "TX-PII-4,M000001,{},10.001,USD,APPROVED,{ts},CARD,",
            USERS[0]
        ),
        format!(
            "TX-PII-5,M000001,{u},10.00,USD,SETTLED,{ts},CARD,{u}",
            u = USERS[1]
        ),
        // A row that cannot be split into fields.
        format!("TX-PII-6,M000001,\"{},{}", EMAILS[2], CARDS[1]),
    ];
    for r in &rows {
        text.push_str(r);
        text.push('\n');
    }
    write(&path, &text)?;
    let entry = &mut manifest["files"][0];
    let count = entry["record_count"].as_u64().unwrap_or(0);
    entry["size_bytes"] = Value::from(text.len());
    entry["sha256"] = Value::from(sha256_hex(text.as_bytes()));
    // The unterminated quote swallows the rest of the file into one record.
    entry["record_count"] = Value::from(count + rows.len() as u64);
    write(&manifest_path, &serde_json::to_string_pretty(&manifest)?)?;
    Ok(rows.len())
}

/// Appends Kafka records carrying PII to the transactions topic (own offsets, so no generated
/// record is shadowed).
fn seed_topic(data: &Path) -> Result<()> {
    let path = data.join("topics/transactions_topic.jsonl");
    let mut text = read(&path)?;
    let first: Value = serde_json::from_str(text.lines().next().unwrap_or("{}"))?;
    let timestamp = first["timestamp"].as_i64().unwrap_or(1_795_132_800_000);
    let base = |id: &str, user: &str, status: &str| {
        format!(
            r#""transaction_id":"{id}","merchant_id":"M000001","user_id":"{user}","currency":"USD","status":"{status}","event_time":"2026-11-20T10:00:00.000Z","payment_method":"CARD""#
        )
    };
    let values = [
        // Accepted, with fields the schema does not know.
        format!(
            r#"{{{},"amount":"10.00","email":"{}","card_number":"{}","note":"customer {} called"}}"#,
            base("TX-KPII-1", USERS[2], "APPROVED"),
            EMAILS[3],
            CARDS[2],
            USERS[2]
        ),
        // Rejected (unknown status), the same extras, the user id in a canonical field too.
        format!(
            r#"{{{},"amount":"10.00","original_transaction_id":"{u}","email":"{}","card_number":"{}","note":"refund for {u}","customer":{{"user_id":"{u}","mail":"{}"}}}}"#,
            base("TX-KPII-2", USERS[3], "SETTLED"),
            EMAILS[0],
            CARDS[0],
            EMAILS[2],
            u = USERS[3]
        ),
        // An e-mail as user id.
        format!(
            r#"{{{},"amount":"10.00"}}"#,
            base("TX-KPII-3", EMAILS[3], "APPROVED")
        ),
        // A numeric amount (refused: amounts are strings), a card number beside it.
        format!(
            r#"{{{},"amount":99999999999999.99,"card_number":"{}"}}"#,
            base("TX-KPII-4", USERS[2], "APPROVED"),
            CARDS[1]
        ),
    ];
    for (i, v) in values.iter().enumerate() {
        let line = format!(
            r#"{{"topic":"transactions_topic","partition":0,"offset":{},"timestamp":{},"key":"TX-KPII-{}","value":{v}}}"#,
            900_000_000 + i,
            timestamp + i as i64,
            i + 1
        );
        text.push_str(&line);
        text.push('\n');
    }
    write(&path, &text)
}

#[test]
fn a_day_seeded_with_pii_leaves_none_in_any_output_or_log() -> Result<()> {
    let dir = tmp()?;
    let data = dir.path();
    common::day(data, 2000, 42)?;
    let ids = user_ids(data)?;
    let seeded = seed_ledger(data)?;
    seed_topic(data)?;
    // The inputs do hold the values: the scan below would see them.
    assert!(
        !leaks(
            read(&data.join("topics/transactions_topic.jsonl"))?.as_bytes(),
            &ids
        )
        .is_empty()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_recon"))
        .args(["run", "--data"])
        .arg(data)
        .env("RUST_LOG", "debug")
        .output()
        .map_err(|e| Error::io("recon run", e))?;
    let (stdout, stderr) = (out.stdout, out.stderr);
    assert!(
        out.status.success(),
        "recon run failed:\n{}\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    let log = String::from_utf8_lossy(&stderr);
    assert!(
        log.contains("delivery normalized") && log.contains("delivery validated"),
        "debug logs were captured: {}",
        log.chars().take(2000).collect::<String>()
    );

    // The seeds reached the pipeline: the ledger's rejects, the stream's rejections.
    let rkey = format!(
        "curated/rejects/business_date={}/source_id=ledger/part.parquet",
        date()?
    );
    let rejects: Vec<Reject> = read_parquet(bytes::Bytes::from(
        std::fs::read(data.join(&rkey)).map_err(|e| Error::io(&rkey, e))?,
    ))?;
    let reasons: Vec<RejectReason> = rejects.iter().map(|r| r.reason).collect();
    assert_eq!(rejects.len(), seeded - 1, "{rejects:?}");
    for want in [
        RejectReason::InvalidId,
        RejectReason::TooManyDecimals,
        RejectReason::InvalidEnum,
        RejectReason::MalformedRow,
    ] {
        assert!(reasons.contains(&want), "{want:?} in {reasons:?}");
    }
    let archive: String = files_under(&data.join("stream/archive"))
        .iter()
        .map(|f| read(f))
        .collect::<Result<Vec<_>>>()?
        .join("");
    for id in ["TX-KPII-1", "TX-KPII-2", "TX-KPII-3", "TX-KPII-4"] {
        assert!(archive.contains(id), "{id} archived");
    }
    assert_eq!(
        archive.matches("\"reason\"").count(),
        3,
        "three rejected records"
    );

    // Nothing seeded, and no raw user id, in any output or log.
    let inputs = ["landing", "topics", "config", "redelivery"];
    let mut scanned = 0;
    for f in files_under(data) {
        let rel = f
            .strip_prefix(data)
            .map_err(|e| Error::Invariant(e.to_string()))?;
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if top.as_deref().is_some_and(|t| inputs.contains(&t)) {
            continue;
        }
        let found = leaks(&file_text(&f)?, &ids);
        assert!(found.is_empty(), "{} holds {found:?}", rel.display());
        scanned += 1;
    }
    assert!(scanned > 20, "{scanned} files scanned");
    assert_eq!(leaks(&stdout, &ids), Vec::<String>::new(), "stdout");
    assert_eq!(leaks(&stderr, &ids), Vec::<String>::new(), "logs");
    Ok(())
}
