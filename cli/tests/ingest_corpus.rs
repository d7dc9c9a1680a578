//! The bad-input corpus (`tests/corpus/ingest_cases.json`): every case runs through the real
//! validator and normalizer handlers on local adapters. No case may panic; each must produce
//! exactly its expected reasons, and counts must be conserved file by file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use recon_runtime::local::{LOCAL_BUCKET, local_pii_key};
use recon_shared::columnar::read_parquet;
use recon_shared::ids::{BusinessDate, SourceId};
use recon_shared::ingest::DeliveryStatus;
use recon_shared::local::{LocalCatalog, LocalManifests, LocalStore};
use recon_shared::manifest::{MANIFEST_FILE, sha256_hex};
use recon_shared::ports::{FileStatus, ManifestTable, ObjectStore};
use recon_shared::records::Transaction;
use recon_shared::source::{Reject, SourceMapping, count_records};
use recon_shared::{Error, Result};
use serde_json::{Value, json};

const DATE: &str = "2026-11-20";
const PREFIX: &str = "landing/corp/2026-11-20/";
/// Content of the file outside the bucket that link cases point at.
const SECRET: &str = "SECRET-OUTSIDE-THE-BUCKET\n";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

fn base_mapping(name: &str) -> Option<(Value, &'static str)> {
    let statement = |fmt: &str, cols: Value| {
        json!({"source_id": "corp", "kind": "statement", "format": fmt, "bank_id": "bank_x",
               "default_currency": "USD", "settlement_currency": "USD", "columns": cols})
    };
    let csv_cols = json!({"statement_id": "statement_id", "transaction_id": "transaction_id",
        "posting_date": "posting_date", "amount_posted": "amount", "currency": "currency", "fee_charged": "fee",
        "merchant_id": "merchant_id", "reference": "reference", "record_type": "type"});
    Some(match name {
        "csv" => (
            statement("csv", csv_cols),
            "statement_id,transaction_id,posting_date,amount,currency,fee,merchant_id,reference,type",
        ),
        "eu" => {
            let mut m = statement(
                "csv",
                json!({"statement_id": "Buchungs-ID", "transaction_id": "Referenz",
                "posting_date": "Buchungstag", "amount_posted": "Betrag", "currency": "Waehrung", "fee_charged": "Gebuehr",
                "merchant_id": "Haendler", "reference": "Zweck", "record_type": "Art"}),
            );
            m["delimiter"] = json!(";");
            m["decimal_separator"] = json!(",");
            m["date_format"] = json!("%d.%m.%Y");
            m["timezone"] = json!("Europe/Berlin");
            m["default_currency"] = json!("EUR");
            m["settlement_currency"] = json!("EUR");
            (m, "")
        }
        "minor" => {
            let mut m = statement(
                "csv",
                json!({"statement_id": "ID", "transaction_id": "TXN", "posting_date": "DATE",
                "amount_posted": "AMOUNT_MINOR", "currency": "CUR", "fee_charged": "FEE_MINOR", "merchant_id": "MID",
                "reference": "REF", "record_type": "KIND", "direction": "DC"}),
            );
            m["delimiter"] = json!("|");
            m["date_format"] = json!("%Y%m%d");
            m["amount_unit"] = json!("minor");
            m["sign_convention"] = json!("debit_credit_column");
            (m, "")
        }
        "jsonl" => {
            let mut m = statement(
                "jsonl",
                json!({"statement_id": "id", "posting_date": "posted",
                "amount_posted": "amount", "currency": "ccy"}),
            );
            m["timezone"] = json!("America/New_York");
            (m, "")
        }
        "ledger" => (
            json!({"source_id": "corp", "kind": "transactions", "format": "csv", "columns": {
                "transaction_id": "transaction_id", "merchant_id": "merchant_id", "user_id": "user_id", "amount": "amount",
                "currency": "currency", "status": "status", "event_time": "event_time", "payment_method": "payment_method",
                "original_transaction_id": "original_transaction_id"}}),
            "transaction_id,merchant_id,user_id,amount,currency,status,event_time,payment_method,original_transaction_id",
        ),
        "mt940" => (
            json!({"source_id": "corp", "kind": "statement", "format": "mt940", "bank_id": "bank_05",
                   "default_currency": "EUR", "settlement_currency": "EUR", "timezone": "Europe/Paris", "columns": {}}),
            "",
        ),
        "camt053" => (
            json!({"source_id": "corp", "kind": "statement", "format": "camt053", "bank_id": "bank_06",
                   "default_currency": "JPY", "settlement_currency": "JPY", "timezone": "Asia/Tokyo", "columns": {}}),
            "",
        ),
        _ => return None,
    })
}

fn merge(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// Case text: a leading `H`/`L` line becomes the mapping's header, `\xHH` becomes a raw byte,
/// `@name` loads a fixture file.
fn file_bytes(spec: &str, header: &str, raw: bool) -> Result<Vec<u8>> {
    if let Some(name) = spec.strip_prefix('@') {
        let p = corpus_dir().join(name);
        return std::fs::read(&p).map_err(|e| Error::io(p, e));
    }
    let mut text = spec.to_string();
    if !raw {
        for marker in ["H", "L"] {
            for bom in ["", "\u{feff}"] {
                let head = format!("{bom}{marker}");
                if let Some(rest) = text
                    .strip_prefix(&head)
                    .filter(|r| r.starts_with('\n') || r.starts_with("\r\n"))
                {
                    text = format!("{bom}{header}{rest}");
                }
            }
        }
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'\\' && b.get(i + 1) == Some(&b'x'))
            .then(|| b.get(i + 2..i + 4))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(out)
}

fn fail(case: &str, msg: String) -> Error {
    Error::Invariant(format!("case `{case}`: {msg}"))
}

async fn run_case(case: &Value) -> Result<()> {
    let name = case["name"].as_str().unwrap_or("?");
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let store = LocalStore::new(dir.path());
    let table = LocalManifests::new(dir.path());
    let catalog = LocalCatalog::new(dir.path());
    let raw = case["raw_files"].as_bool().unwrap_or(false);

    let mapping = match &case["mapping"] {
        Value::Null if case.get("mapping").is_some() => None,
        v => {
            let (mut m, header) = base_mapping(v.as_str().unwrap_or("csv"))
                .ok_or_else(|| fail(name, "unknown base mapping".into()))?;
            merge(&mut m, &case["mapping_patch"]);
            Some((m, header))
        }
    };
    if let Some((m, _)) = &mapping {
        store
            .put(
                "config/sources/corp.json",
                Bytes::from(serde_json::to_vec(m)?),
            )
            .await?;
    }
    // Configuration: the day's FX table and the merchant file, unless the case brings its own
    // (`"config": {key: text}`, `null` for no such file).
    let mut config = BTreeMap::from([
        (
            format!("config/fx/{DATE}.csv"),
            Value::from("base,quote,rate\nEUR,USD,1.0800000000\nUSD,EUR,0.9259259259\n"),
        ),
        (
            "config/merchants.jsonl".to_string(),
            Value::from(
                r#"{"merchant_id":"M1","merchant_name":"m","category":"travel","risk_level":"LOW","onboarding_date":"2024-01-01","country":"US","acquirer_bank_id":"bank_x"}"#,
            ),
        ),
    ]);
    if let Some(c) = case["config"].as_object() {
        config.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (key, text) in &config {
        if let Some(t) = text.as_str() {
            store
                .put(key, Bytes::from(file_bytes(t, "", true)?))
                .await?;
        }
    }
    // A case may bring a mapping that cannot be used (the validator must say so).
    let parsed_mapping = mapping
        .as_ref()
        .and_then(|(m, _)| serde_json::to_vec(m).ok())
        .and_then(|b| SourceMapping::from_json(&b).ok());

    let mut entries = Vec::new();
    let files = case["files"].as_object().cloned().unwrap_or_default();
    for (fname, spec) in &files {
        let header = mapping.as_ref().map_or("", |(_, h)| *h);
        let bytes = file_bytes(spec.as_str().unwrap_or_default(), header, raw)?;
        let count = parsed_mapping
            .as_ref()
            .and_then(|m| count_records(m, fname, &bytes).ok())
            .unwrap_or(0);
        entries.push(json!({"name": fname, "size_bytes": bytes.len(), "sha256": sha256_hex(&bytes), "record_count": count}));
        store
            .put(&format!("{PREFIX}{fname}"), Bytes::from(bytes))
            .await?;
    }
    // Links and FIFOs in the delivery folder (the local bucket must never follow or open them).
    // A link target `outside` is a file outside the bucket, `outside_dir` a folder holding one;
    // their content must reach no output.
    let outside = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let secret_file = outside.path().join("secret.csv");
    std::fs::write(&secret_file, SECRET).map_err(|e| Error::io(&secret_file, e))?;
    let landing = dir.path().join(PREFIX);
    std::fs::create_dir_all(&landing).map_err(|e| Error::io(&landing, e))?;
    for (fname, target) in case["symlinks"].as_object().cloned().unwrap_or_default() {
        let target = match target.as_str().unwrap_or_default() {
            "outside" => secret_file.clone(),
            "outside_dir" => outside.path().to_path_buf(),
            other => PathBuf::from(other),
        };
        let link = landing.join(&fname);
        std::os::unix::fs::symlink(&target, &link).map_err(|e| Error::io(&link, e))?;
    }
    for fname in case["fifos"].as_array().cloned().unwrap_or_default() {
        let fifo = landing.join(fname.as_str().unwrap_or_default());
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map_err(|e| Error::io(&fifo, e))?;
        if !made.success() {
            return Err(fail(name, format!("mkfifo {}", fifo.display())));
        }
    }
    for e in &mut entries {
        let fname = e["name"].as_str().unwrap_or_default().to_string();
        if let Some(p) = case["manifest_patch"].get(&fname) {
            merge(e, p);
        }
        if let Some(n) = case["manifest_rename"].get(&fname) {
            e["name"] = n.clone();
        }
    }
    let drop: Vec<&str> = case["manifest_drop"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    entries.retain(|e| !drop.contains(&e["name"].as_str().unwrap_or_default()));
    entries.extend(case["manifest_add"].as_array().cloned().unwrap_or_default());
    let mut manifest = json!({"source_id": "corp", "business_date": DATE, "version": 1,
                              "generated_at": "2026-11-21T01:10:00Z", "files": entries});
    merge(&mut manifest, &case["manifest_top"]);
    let mut manifest_bytes = match case["raw_manifest"].as_str() {
        Some(t) => t.as_bytes().to_vec(),
        None => serde_json::to_vec_pretty(&manifest)?,
    };
    match case["manifest_encoding"].as_str() {
        Some("utf-8-bom") => manifest_bytes = [&b"\xEF\xBB\xBF"[..], &manifest_bytes].concat(),
        Some("utf-16le-bom") => {
            let text = String::from_utf8_lossy(&manifest_bytes).into_owned();
            manifest_bytes = [0xFF, 0xFE]
                .into_iter()
                .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
                .collect();
        }
        _ => {}
    }
    let key = format!("{PREFIX}{MANIFEST_FILE}");
    store.put(&key, Bytes::from(manifest_bytes.clone())).await?;

    // Validate, normalize.
    let event = manifest_validator::s3_put_event(LOCAL_BUCKET, &key, manifest_bytes.len() as u64)?;
    let resp = manifest_validator::handle(event.clone(), &store, &table).await?;
    let outcome = resp
        .outcomes
        .first()
        .ok_or_else(|| fail(name, "no outcome".into()))?;
    let expect = &case["expect"];
    let want_status: DeliveryStatus = serde_json::from_value(expect["delivery"].clone())?;
    if outcome.status != want_status {
        return Err(fail(
            name,
            format!(
                "delivery {:?}, expected {want_status:?}; quarantined {:?}",
                outcome.status, outcome.quarantined
            ),
        ));
    }
    let got_q: BTreeMap<String, String> = outcome
        .quarantined
        .iter()
        .map(|q| (q.file.clone(), q.reason_code.clone()))
        .collect();
    let want_q: BTreeMap<String, String> =
        serde_json::from_value(expect.get("quarantine").cloned().unwrap_or(json!({})))?;
    if got_q != want_q {
        return Err(fail(
            name,
            format!("quarantined {got_q:?}, expected {want_q:?}"),
        ));
    }
    for q in &outcome.quarantined {
        let reason: Value = serde_json::from_slice(
            &store
                .get(&format!("quarantine/corp/{DATE}/{}.reason.json", q.file))
                .await?,
        )?;
        if reason["reason_code"] != json!(q.reason_code)
            || reason["reason"].as_str().is_none_or(str::is_empty)
        {
            return Err(fail(name, format!("reason.json of {} is {reason}", q.file)));
        }
        if let Some(s) = expect["reason_contains"].as_str()
            && !q.reason.to_lowercase().contains(&s.to_lowercase())
        {
            return Err(fail(name, format!("reason `{}` lacks `{s}`", q.reason)));
        }
        if q.file != MANIFEST_FILE && store.get(&format!("{PREFIX}{}", q.file)).await.is_ok() {
            return Err(fail(name, format!("{} is still in landing/", q.file)));
        }
    }
    let pii = local_pii_key()?;
    let (mut accepted, mut duplicates) = (0, 0);
    let want_error: Vec<&str> = expect["normalize_error"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for req in &resp.normalize {
        let out = match normalizer::handle(req.clone(), &store, &table, &catalog, &pii).await {
            // A configuration problem the delivery needs: it fails whole, naming the file.
            Err(e) if !want_error.is_empty() => {
                let text = e.to_string();
                if e.error_type() != "InvalidConfig" || want_error.iter().any(|w| !text.contains(w))
                {
                    return Err(fail(
                        name,
                        format!("normalizer failed with `{text}`, expected {want_error:?}"),
                    ));
                }
                if store
                    .list(&format!("curated/transactions/business_date={DATE}/"))
                    .await?
                    .into_iter()
                    .chain(store.list("curated/statements/").await?)
                    .next()
                    .is_some()
                {
                    return Err(fail(
                        name,
                        "a failed normalization wrote curated data".into(),
                    ));
                }
                return Ok(());
            }
            r => r?,
        };
        let t = out.totals();
        accepted += t.accepted;
        duplicates += t.duplicates;
    }
    if !want_error.is_empty() {
        return Err(fail(
            name,
            format!("normalized, expected the error {want_error:?}"),
        ));
    }
    let mut rejects: BTreeMap<String, u64> = BTreeMap::new();
    let rkey = format!("curated/rejects/business_date={DATE}/source_id=corp/part.parquet");
    let reject_rows: Vec<Reject> = match store.get(&rkey).await {
        Ok(b) => read_parquet(b)?,
        Err(Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    for r in &reject_rows {
        *rejects.entry(r.reason.as_str().to_string()).or_default() += 1;
        if r.detail.is_empty() {
            return Err(fail(name, "a reject without detail".into()));
        }
    }
    let want_r: BTreeMap<String, u64> =
        serde_json::from_value(expect.get("rejects").cloned().unwrap_or(json!({})))?;
    if rejects != want_r {
        return Err(fail(
            name,
            format!("rejects {rejects:?}, expected {want_r:?}"),
        ));
    }
    if let Some(a) = expect["accepted"].as_u64()
        && accepted != a
    {
        return Err(fail(name, format!("accepted {accepted}, expected {a}")));
    }
    if duplicates != expect["duplicates"].as_u64().unwrap_or(0) {
        return Err(fail(name, format!("duplicates {duplicates}")));
    }
    // Conservation, file by file, against what the manifest announced.
    let rows = table
        .delivery(&SourceId::new("corp")?, BusinessDate::parse(DATE)?)
        .await?;
    for r in rows.iter().filter(|r| r.status == FileStatus::Normalized) {
        if r.records_in != r.accepted + r.rejected + r.duplicates || r.records_in != r.record_count
        {
            return Err(fail(
                name,
                format!("{}: counts do not add up: {r:?}", r.file),
            ));
        }
    }
    // No raw user id survives in curated data or rejects, nor any value the case names as
    // `absent` (e-mail addresses, card numbers, user ids) in a reject's raw record or detail.
    let absent: Vec<&str> = expect["absent"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for r in &reject_rows {
        if r.raw.contains(",U1,") || r.raw.contains(",U2,") {
            return Err(fail(name, format!("raw user id in a reject: {}", r.raw)));
        }
        if let Some(s) = absent
            .iter()
            .find(|s| r.raw.contains(**s) || r.detail.contains(**s))
        {
            return Err(fail(name, format!("`{s}` in a reject: {r:?}")));
        }
    }
    if let Ok(b) = store
        .get(&format!(
            "curated/transactions/business_date={DATE}/part-corp.parquet"
        ))
        .await
    {
        for t in read_parquet::<Transaction>(b)? {
            if !recon_shared::pii::is_token(t.user_id.as_str()) {
                return Err(fail(name, "curated transaction with a raw user id".into()));
            }
        }
    }
    // The same event again changes nothing.
    let before = snapshot(dir.path())?;
    // Nothing outside the bucket was read into it.
    for (path, bytes) in regular_files(dir.path())? {
        if bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
            return Err(fail(
                name,
                format!("{} holds a file from outside the bucket", path.display()),
            ));
        }
    }
    let again = manifest_validator::handle(event, &store, &table).await?;
    let unchanged = again
        .outcomes
        .iter()
        .all(|o| o.status == DeliveryStatus::Unchanged || want_status == DeliveryStatus::Rejected);
    if !unchanged
        || !again.normalize.is_empty()
        || (want_status != DeliveryStatus::Rejected && snapshot(dir.path())? != before)
    {
        return Err(fail(
            name,
            "a second delivery of the same event changed state".into(),
        ));
    }
    Ok(())
}

/// Every regular file under `dir` with its bytes; links and special files are listed by the
/// entry's own type, never followed or opened.
fn regular_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let p = e.path();
            let ft = e.file_type().map_err(|e| Error::io(&p, e))?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                out.push((p, b));
            } else {
                out.push((p, format!("not a regular file: {ft:?}").into_bytes()));
            }
        }
    }
    Ok(out)
}

fn snapshot(dir: &Path) -> Result<BTreeMap<String, String>> {
    Ok(regular_files(dir)?
        .into_iter()
        .map(|(p, b)| (p.to_string_lossy().into_owned(), sha256_hex(&b)))
        .collect())
}

#[tokio::test]
async fn every_corpus_case_gives_its_reason_and_conserves_counts() -> Result<()> {
    let path = corpus_dir().join("ingest_cases.json");
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| Error::io(&path, e))?)?;
    assert!(
        cases.len() >= 40,
        "the corpus must hold at least 40 cases, has {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run_case(case).await {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(())
}
