//! The contract of the ports, one test body per port, run against the local adapter and —
//! with the `aws` feature and a moto server (`scripts/with-moto.sh`) — against the AWS
//! adapter: S3, DynamoDB (Manifests, Runs), Glue. The TransactionIndex contract lives in
//! `stream_index.rs`, whose bodies run on both stores the same way.

use std::collections::BTreeMap;

use bytes::Bytes;
use recon_shared::breaks::{Action, Amounts, BreakEvent};
use recon_shared::ids::{BankId, BusinessDate, SourceId};
use recon_shared::local::{
    LocalBreakLog, LocalCatalog, LocalManifests, LocalRules, LocalRuns, LocalStore,
};
use recon_shared::manifest::sha256_hex;
use recon_shared::ports::{
    Appended, BreakLog, Catalog, FileRecord, FileStatus, ManifestTable, ObjectStore, Partition,
    RulesTable, RunRecord, RunStatus, RunsTable,
};
use recon_shared::rules::table::{RuleKind, RuleVersion};
use recon_shared::{Error, Result};

fn tmp() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| Error::io("tmp", e))
}

fn date(s: &str) -> Result<BusinessDate> {
    BusinessDate::parse(s)
}

// --- bodies ----------------------------------------------------------------------------------

fn rule_version(kind: RuleKind, id: &str, version: u32, body: Option<&str>) -> Result<RuleVersion> {
    Ok(RuleVersion {
        kind,
        id: id.into(),
        version,
        body: body.map(str::to_string),
        changed_by: "alice".into(),
        changed_at: chrono::DateTime::parse_from_rfc3339("2026-12-01T09:30:00Z")
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_utc(),
        reason: "pricing of December".into(),
    })
}

async fn rules_table_contract<T: RulesTable>(t: &T) -> Result<()> {
    assert!(t.versions().await?.is_empty());
    let v1 = rule_version(RuleKind::FeeRule, "F1", 1, Some(r#"{"rule_id":"F1"}"#))?;
    let v2 = rule_version(RuleKind::FeeRule, "F1", 2, None)?;
    let cal = rule_version(
        RuleKind::Calendar,
        "bank_01",
        1,
        Some(r#"{"bank_id":"bank_01"}"#),
    )?;
    assert_eq!(t.append(&v1).await?, Appended::Written);
    assert_eq!(t.append(&v2).await?, Appended::Written);
    assert_eq!(t.append(&cal).await?, Appended::Written);
    // A version is written once: a second writer of F1 v2 gets a conflict, the first stays.
    let mut other = v2.clone();
    other.changed_by = "bob".into();
    assert_eq!(t.append(&other).await?, Appended::Conflict);
    // The same number of another rule, or kind, is another key.
    let f2 = rule_version(RuleKind::FeeRule, "F2", 1, Some("{}"))?;
    assert_eq!(t.append(&f2).await?, Appended::Written);
    let mut got = t.versions().await?;
    got.sort_by_key(|v| (v.kind, v.id.clone(), v.version));
    assert_eq!(got, vec![v1, v2, f2, cal]);
    Ok(())
}

async fn object_store_contract<S: ObjectStore>(s: &S) -> Result<()> {
    s.put("a/b/c.txt", Bytes::from_static(b"hello")).await?;
    s.put("a/b/d.txt", Bytes::from_static(b"x")).await?;
    s.put("a/e.txt", Bytes::from_static(b"yy")).await?;
    s.put("a/b/sp ace+plus=1.txt", Bytes::from_static(b"odd"))
        .await?;
    assert_eq!(s.get("a/b/c.txt").await?, Bytes::from_static(b"hello"));
    let keys: Vec<String> = s.list("a/b/").await?.into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["a/b/c.txt", "a/b/d.txt", "a/b/sp ace+plus=1.txt"]);
    let all = s.list("a/").await?;
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.iter().find(|o| o.key == "a/e.txt").map(|o| o.size),
        Some(2)
    );
    assert_eq!(s.list("a/b/c").await?.len(), 1);
    assert!(s.list("nope/").await?.is_empty());
    // Replacing an object.
    s.put("a/b/d.txt", Bytes::from_static(b"xyz")).await?;
    assert_eq!(s.get("a/b/d.txt").await?, Bytes::from_static(b"xyz"));
    // Copies, also of keys that need encoding.
    s.copy("a/e.txt", "z/e.txt").await?;
    assert_eq!(s.get("z/e.txt").await?, Bytes::from_static(b"yy"));
    s.copy("a/b/sp ace+plus=1.txt", "z/s p.txt").await?;
    assert_eq!(s.get("z/s p.txt").await?, Bytes::from_static(b"odd"));
    assert!(matches!(
        s.copy("a/missing.txt", "z/m.txt").await,
        Err(Error::NotFound { .. })
    ));
    // Deleting twice is fine; a deleted object is NotFound.
    s.delete("a/e.txt").await?;
    s.delete("a/e.txt").await?;
    assert!(matches!(
        s.get("a/e.txt").await,
        Err(Error::NotFound { .. })
    ));
    // More keys than a listing page (the S3 adapter is built with pages of 2).
    for i in (0..7).rev() {
        s.put(&format!("p/{i:02}.bin"), Bytes::from(vec![0u8; i]))
            .await?;
    }
    let listed = s.list("p/").await?;
    assert_eq!(
        listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        (0..7).map(|i| format!("p/{i:02}.bin")).collect::<Vec<_>>()
    );
    assert_eq!(listed.iter().map(|o| o.size).sum::<u64>(), 21);
    // The SHA-256 of an object's bytes, also of a replaced and of a copied object.
    assert_eq!(s.sha256("a/b/c.txt").await?, sha256_hex(b"hello"));
    assert_eq!(s.sha256("a/b/d.txt").await?, sha256_hex(b"xyz"));
    assert_eq!(s.sha256("z/s p.txt").await?, sha256_hex(b"odd"));
    assert!(matches!(
        s.sha256("a/missing.txt").await,
        Err(Error::NotFound { .. })
    ));
    Ok(())
}

fn file_record(source: &str, day: &str, file: &str, version: u32) -> Result<FileRecord> {
    Ok(FileRecord {
        source_id: SourceId::new(source)?,
        business_date: date(day)?,
        file: file.into(),
        version,
        status: FileStatus::Accepted,
        sha256: "ab".repeat(32),
        size_bytes: 18_446_744_073_709_551_615,
        record_count: 1000,
        records_in: 0,
        accepted: 0,
        rejected: 0,
        duplicates: 0,
        reason_code: None,
        reason: None,
        outputs: Vec::new(),
    })
}

async fn manifests_contract<M: ManifestTable>(t: &M) -> Result<()> {
    let src = SourceId::new("bank_01")?;
    let d = date("2026-11-20")?;
    assert!(t.delivery(&src, d).await?.is_empty());
    let rows = vec![
        file_record("bank_01", "2026-11-20", "stmt_002.csv", 1)?,
        file_record("bank_01", "2026-11-20", "_manifest.json", 1)?,
        file_record("bank_01", "2026-11-20", "stmt_001.csv", 1)?,
        file_record("bank_01", "2026-11-19", "stmt_001.csv", 1)?,
        file_record("bank_02", "2026-11-20", "stmt_001.csv", 1)?,
    ];
    t.put(&rows).await?;
    let got = t.delivery(&src, d).await?;
    assert_eq!(
        got.iter().map(|r| r.file.as_str()).collect::<Vec<_>>(),
        ["_manifest.json", "stmt_001.csv", "stmt_002.csv"]
    );
    assert_eq!(got[1], rows[2]);
    // Replacing a row: every field comes back as written.
    let mut q = rows[0].clone();
    q.status = FileStatus::Quarantined;
    q.version = 2;
    q.reason_code = Some("SHA256_MISMATCH".into());
    q.reason = Some("the file's sha256 is not the manifest's".into());
    q.outputs =
        vec!["curated/statements/business_date=2026-11-20/bank_id=bank_01/part.parquet".into()];
    t.put(std::slice::from_ref(&q)).await?;
    let got = t.delivery(&src, d).await?;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], q);
    assert_eq!(t.delivery(&src, date("2026-11-19")?).await?.len(), 1);
    Ok(())
}

fn run_record(day: &str, run: &str, partition: &str, status: RunStatus) -> Result<RunRecord> {
    Ok(RunRecord {
        business_date: date(day)?,
        run_id: run.into(),
        partition: partition.into(),
        status,
        fingerprint: "f".repeat(64),
        counts: BTreeMap::from([("transactions".into(), 1234), ("lines".into(), 0)]),
        duration_ms: 17,
        error: None,
    })
}

async fn runs_contract<R: RunsTable>(t: &R) -> Result<()> {
    let d = date("2026-11-20")?;
    assert!(t.runs(d).await?.is_empty());
    let b = run_record(
        "2026-11-20",
        "close-2026-11-20-1",
        "bank_02",
        RunStatus::Running,
    )?;
    let a = run_record(
        "2026-11-20",
        "close-2026-11-20-1",
        "bank_01",
        RunStatus::Succeeded,
    )?;
    let c = run_record(
        "2026-11-20",
        "close-2026-11-20-1",
        "_close",
        RunStatus::Running,
    )?;
    let other = run_record(
        "2026-11-21",
        "close-2026-11-21-1",
        "bank_01",
        RunStatus::Skipped,
    )?;
    for r in [&b, &a, &c, &other] {
        t.put(r).await?;
    }
    let mut failed = b.clone();
    failed.status = RunStatus::Failed;
    failed.error = Some("States.TaskFailed: partition too large".into());
    t.put(&failed).await?;
    assert_eq!(t.runs(d).await?, vec![c, a, failed]);
    assert_eq!(t.runs(date("2026-11-21")?).await?, vec![other]);
    Ok(())
}

fn partition(database: &str, day: &str, bank: &str, location: &str) -> Partition {
    Partition {
        database: database.into(),
        table: "statements".into(),
        values: vec![
            ("business_date".into(), day.into()),
            ("bank_id".into(), bank.into()),
        ],
        location: location.into(),
    }
}

async fn catalog_contract<C: Catalog>(c: &C, database: &str) -> Result<()> {
    let loc = |d: &str, b: &str| format!("curated/statements/business_date={d}/bank_id={b}/");
    let mut want = Vec::new();
    for (d, b) in [
        ("2026-11-20", "bank_02"),
        ("2026-11-20", "bank_01"),
        ("2026-11-19", "bank_01"),
        ("2026-11-21", "bank_03"),
        ("2026-11-20", "bank_03"),
    ] {
        let p = partition(database, d, b, &loc(d, b));
        c.register_partition(&p).await?;
        want.push(p);
    }
    want.sort();
    assert_eq!(c.partitions(database, "statements").await?, want);
    // Registering again changes nothing; a new location replaces the old one.
    c.register_partition(&want[0]).await?;
    assert_eq!(c.partitions(database, "statements").await?, want);
    want[1].location = "curated/statements/moved/".into();
    c.register_partition(&want[1]).await?;
    assert_eq!(c.partitions(database, "statements").await?, want);
    assert!(c.partitions(database, "no_such_table").await?.is_empty());
    Ok(())
}

// --- local -----------------------------------------------------------------------------------

#[tokio::test]
async fn local_object_store_keeps_the_contract() -> Result<()> {
    let dir = tmp()?;
    object_store_contract(&LocalStore::new(dir.path())).await
}

#[tokio::test]
async fn local_manifests_keep_the_contract() -> Result<()> {
    let dir = tmp()?;
    manifests_contract(&LocalManifests::new(dir.path())).await
}

#[tokio::test]
async fn local_runs_keep_the_contract() -> Result<()> {
    let dir = tmp()?;
    runs_contract(&LocalRuns::new(dir.path())).await
}

#[tokio::test]
async fn local_catalog_keeps_the_contract() -> Result<()> {
    let dir = tmp()?;
    catalog_contract(&LocalCatalog::new(dir.path()), "recon").await
}

const BREAK: &str = "brk_00000000000000000abc";

fn comment(head: Option<&BreakEvent>, bank: &str, text: String, actor: &str) -> Result<BreakEvent> {
    BreakEvent::next(
        head,
        BREAK,
        BankId::new(bank)?,
        Action::Comment { text },
        actor,
        chrono::Utc::now(),
        (date("2026-11-20")?, Amounts::default()),
    )
}

async fn break_log_contract<L: BreakLog>(log: &L) -> Result<()> {
    assert!(log.history(BREAK, 0).await?.is_empty());
    let first = comment(None, "bank_01", "one".into(), "alice")?;
    assert_eq!(log.append(&first).await?, Appended::Written);
    // Another event with the same seq is refused, whatever its content.
    let rival = comment(None, "bank_01", "rival".into(), "bob")?;
    assert_eq!(log.append(&rival).await?, Appended::Conflict);
    let second = comment(Some(&first), "bank_01", "two".into(), "alice")?;
    assert_eq!(log.append(&second).await?, Appended::Written);
    assert_eq!(
        log.history(BREAK, 0).await?,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(log.history(BREAK, 1).await?, vec![second.clone()]);
    assert!(log.history(BREAK, 2).await?.is_empty());
    // Events read back are the events written, byte for byte: their hashes verify.
    assert_eq!(
        recon_shared::breaks::verify(&log.history(BREAK, 0).await?),
        Ok(())
    );
    let other = "brk_00000000000000000def";
    let elsewhere = BreakEvent::next(
        None,
        other,
        BankId::new("bank_02")?,
        Action::Assign {
            owner: "carol".into(),
        },
        "dave",
        chrono::Utc::now(),
        (date("2026-11-20")?, Amounts::default()),
    )?;
    assert_eq!(log.append(&elsewhere).await?, Appended::Written);
    let of = |events: Vec<BreakEvent>| {
        let mut ids: Vec<(String, u64)> = events.into_iter().map(|e| (e.break_id, e.seq)).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        of(log.events(Some(&BankId::new("bank_01")?)).await?),
        vec![(BREAK.to_string(), 1), (BREAK.to_string(), 2)]
    );
    assert_eq!(of(log.events(None).await?).len(), 3);
    assert!(log.events(Some(&BankId::new("bank_09")?)).await?.is_empty());
    Ok(())
}

/// `writers` writers, each appending `each` comments to one break, reading what the others
/// wrote on a conflict: every action is stored once, in one valid chain.
async fn concurrent_writers<L: BreakLog + Clone + 'static>(
    log: &L,
    writers: usize,
    each: usize,
) -> Result<u64> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut known: Vec<BreakEvent> = log.history(BREAK, 0).await?;
            let mut conflicts = 0u64;
            for i in 0..each {
                loop {
                    let e = comment(
                        known.last(),
                        "bank_01",
                        format!("w{w} #{i}"),
                        &format!("w{w}"),
                    )?;
                    match log.append(&e).await? {
                        Appended::Written => {
                            known.push(e);
                            break;
                        }
                        Appended::Conflict => {
                            conflicts += 1;
                            let after = known.last().map_or(0, |e| e.seq);
                            known.extend(log.history(BREAK, after).await?);
                        }
                    }
                }
            }
            Ok::<u64, Error>(conflicts)
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.map_err(|e| Error::Invariant(e.to_string()))??;
    }
    let events = log.history(BREAK, 0).await?;
    assert_eq!(events.len(), writers * each);
    assert_eq!(recon_shared::breaks::verify(&events), Ok(()));
    for w in 0..writers {
        let texts: Vec<String> = events
            .iter()
            .filter(|e| e.actor == format!("w{w}"))
            .filter_map(|e| match &e.action {
                Action::Comment { text } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            (0..each).map(|i| format!("w{w} #{i}")).collect::<Vec<_>>()
        );
    }
    Ok(conflicts)
}

#[tokio::test]
async fn local_break_log_keeps_the_contract() -> Result<()> {
    let dir = tmp()?;
    break_log_contract(&LocalBreakLog::new(dir.path())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_break_log_loses_nothing_under_eight_concurrent_writers() -> Result<()> {
    let dir = tmp()?;
    let conflicts = concurrent_writers(&LocalBreakLog::new(dir.path()), 8, 100).await?;
    eprintln!("local: 800 actions, {conflicts} conflicts retried");
    Ok(())
}

#[tokio::test]
async fn local_rules_table_keeps_the_contract() -> Result<()> {
    let dir = tmp()?;
    rules_table_contract(&LocalRules::new(dir.path())).await
}

// --- AWS (moto) ------------------------------------------------------------------------------

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use recon_shared::aws::dynamo::{
        DynamoBreakLog, DynamoManifests, DynamoRules, DynamoRuns, TableNames, create_tables,
    };
    use recon_shared::aws::glue::GlueCatalog;
    use recon_shared::aws::s3::{S3Store, UploadSettings};
    use recon_shared::aws::testing::{SerialMoto, moto, unique};
    use recon_shared::error::Refusal;

    async fn store(sdk: &aws_config::SdkConfig, upload: UploadSettings) -> Result<S3Store> {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        let s = S3Store::new(
            aws_sdk_s3::Client::from_conf(conf),
            unique("recon-test"),
            upload,
        );
        s.create_bucket().await?;
        Ok(s)
    }

    #[tokio::test]
    async fn s3_object_store_keeps_the_contract() -> Result<()> {
        let Some(sdk) = moto("s3_object_store_keeps_the_contract").await else {
            return Ok(());
        };
        let s = store(
            &sdk,
            UploadSettings {
                list_page_size: Some(2),
                ..UploadSettings::default()
            },
        )
        .await?;
        object_store_contract(&s).await
    }

    #[tokio::test]
    async fn large_objects_go_up_in_parts() -> Result<()> {
        let Some(sdk) = moto("large_objects_go_up_in_parts").await else {
            return Ok(());
        };
        const MIB: usize = 1024 * 1024;
        let s = store(
            &sdk,
            UploadSettings {
                multipart_threshold: (6 * MIB) as u64,
                part_size: 5 * MIB,
                list_page_size: None,
            },
        )
        .await?;
        let body: Vec<u8> = (0..11 * MIB + 123).map(|i| (i % 251) as u8).collect();
        s.put("big/object.bin", Bytes::from(body.clone())).await?;
        assert_eq!(s.get("big/object.bin").await?, Bytes::from(body.clone()));
        let head = s
            .client()
            .head_object()
            .bucket(s.bucket())
            .key("big/object.bin")
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("head: {e}")))?;
        // Its SHA-256 is recorded with it (a fingerprint needs no download), multipart or not.
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get(recon_shared::aws::s3::SHA256_METADATA))
                .map(String::as_str),
            Some(sha256_hex(&body).as_str())
        );
        assert_eq!(s.sha256("big/object.bin").await?, sha256_hex(&body));
        // An object someone else put, without it, is read and hashed.
        s.client()
            .put_object()
            .bucket(s.bucket())
            .key("foreign.bin")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"theirs"))
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("put: {e}")))?;
        assert_eq!(s.sha256("foreign.bin").await?, sha256_hex(b"theirs"));
        // A multipart object's ETag ends with its part count: 5 + 5 + 1 MiB.
        assert!(
            head.e_tag()
                .is_some_and(|t| t.trim_matches('"').ends_with("-3")),
            "{:?}",
            head.e_tag()
        );
        // Below the threshold: one PutObject.
        s.put("small.bin", Bytes::from(vec![7u8; MIB])).await?;
        let head = s
            .client()
            .head_object()
            .bucket(s.bucket())
            .key("small.bin")
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("head: {e}")))?;
        assert!(head.e_tag().is_some_and(|t| !t.contains('-')));
        Ok(())
    }

    async fn tables(sdk: &aws_config::SdkConfig) -> Result<(aws_sdk_dynamodb::Client, TableNames)> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let names = TableNames::prefixed(&unique("recon"));
        create_tables(&client, &names).await?;
        Ok((client, names))
    }

    #[tokio::test]
    async fn dynamodb_manifests_keep_the_contract() -> Result<()> {
        let Some(sdk) = moto("dynamodb_manifests_keep_the_contract").await else {
            return Ok(());
        };
        let (client, names) = tables(&sdk).await?;
        manifests_contract(&DynamoManifests::new(client, names.manifests)).await
    }

    #[tokio::test]
    async fn dynamodb_break_actions_keep_the_contract() -> Result<()> {
        let Some(sdk) = moto("dynamodb_break_actions_keep_the_contract").await else {
            return Ok(());
        };
        let (client, names) = tables(&sdk).await?;
        break_log_contract(&DynamoBreakLog::new(client, names.break_actions)).await
    }

    /// Against a moto of its own that serves one request at a time ([`SerialMoto`]: the
    /// shared one checks conditions without a lock, and loses one write in a few hundred here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn dynamodb_break_actions_lose_nothing_under_eight_concurrent_writers() -> Result<()> {
        let Some(moto) =
            SerialMoto::start("dynamodb_break_actions_lose_nothing_under_eight_concurrent_writers")
        else {
            return Ok(());
        };
        let (client, names) = tables(&moto.sdk().await).await?;
        let log = DynamoBreakLog::new(client, names.break_actions);
        let conflicts = concurrent_writers(&log, 8, 100).await?;
        eprintln!("moto: 800 actions, {conflicts} conflicts retried");
        Ok(())
    }

    #[tokio::test]
    async fn dynamodb_rules_table_keeps_the_contract() -> Result<()> {
        let Some(sdk) = moto("dynamodb_rules_table_keeps_the_contract").await else {
            return Ok(());
        };
        let (client, names) = tables(&sdk).await?;
        rules_table_contract(&DynamoRules::new(client, names.rules)).await
    }

    #[tokio::test]
    async fn dynamodb_runs_keep_the_contract() -> Result<()> {
        let Some(sdk) = moto("dynamodb_runs_keep_the_contract").await else {
            return Ok(());
        };
        let (client, names) = tables(&sdk).await?;
        runs_contract(&DynamoRuns::new(client, names.runs)).await
    }

    #[tokio::test]
    async fn glue_catalog_keeps_the_contract() -> Result<()> {
        let Some(sdk) = moto("glue_catalog_keeps_the_contract").await else {
            return Ok(());
        };
        let mut c = GlueCatalog::new(aws_sdk_glue::Client::new(&sdk), "recon-bucket");
        c.page_size = Some(2);
        let db = unique("recon").replace('-', "_");
        c.ensure_table(&db, "statements", &["business_date", "bank_id"])
            .await?;
        // Creating them again is fine.
        c.ensure_table(&db, "statements", &["business_date", "bank_id"])
            .await?;
        catalog_contract(&c, &db).await?;
        // Glue holds the S3 URI; partition columns must be the table's.
        let raw = aws_sdk_glue::Client::new(&sdk)
            .get_partitions()
            .database_name(&db)
            .table_name("statements")
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("get partitions: {e}")))?;
        assert!(raw.partitions().iter().all(|p| {
            p.storage_descriptor()
                .and_then(|s| s.location())
                .is_some_and(|l| l.starts_with("s3://recon-bucket/curated/statements/"))
        }));
        let mut wrong = partition(&db, "2026-11-20", "bank_01", "x/");
        wrong.values.reverse();
        assert!(matches!(
            c.register_partition(&wrong).await,
            Err(Error::InvalidConfig { .. })
        ));
        Ok(())
    }

    /// A bucket or table the deployment names but that does not exist is a configuration
    /// error (`InvalidConfig`), which the state machine does not retry.
    #[tokio::test]
    async fn a_missing_bucket_or_table_is_a_configuration_error() -> Result<()> {
        let Some(sdk) = moto("a_missing_bucket_or_table_is_a_configuration_error").await else {
            return Ok(());
        };
        let no_bucket = S3Store::from_conf(&sdk, unique("recon-absent"), UploadSettings::default());
        let no_table = DynamoRuns::new(aws_sdk_dynamodb::Client::new(&sdk), unique("absent"));
        let date = BusinessDate::parse("2026-11-20")?;
        for r in [
            no_bucket
                .put("runs/x.json", Bytes::from_static(b"{}"))
                .await,
            no_bucket.list("landing/").await.map(|_| ()),
            no_table.runs(date).await.map(|_| ()),
        ] {
            let Err(e) = r else {
                return Err(Error::Invariant("a missing resource answered".into()));
            };
            assert!(
                matches!(
                    e,
                    Error::Refused {
                        refusal: Refusal::MissingResource,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert_eq!(e.error_type(), "InvalidConfig");
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_pii_key_is_read_from_its_secret() -> Result<()> {
        let Some(sdk) = moto("the_pii_key_is_read_from_its_secret").await else {
            return Ok(());
        };
        let name = unique("recon/pii");
        let value = "0123456789abcdef0123456789abcdef";
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("create_secret: {e}")))?;
        let mut settings = recon_shared::config::Settings::from_lookup(|_| None)?;
        settings.pii_secret = Some(name.clone());
        let backend = recon_shared::select::Backend::aws(sdk.clone(), "unused", settings.clone());
        let user = recon_shared::ids::UserId::new("user-42")?;
        let key = backend.pii_key(&settings).await?;
        assert_eq!(
            key.tokenize(&user),
            recon_shared::pii::PiiKey::new(value.as_bytes())?.tokenize(&user),
            "the same key as the secret's text"
        );
        // A secret that is not there fails the start, naming it.
        settings.pii_secret = Some(format!("{name}-missing"));
        let e = backend
            .pii_key(&settings)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("GetSecretValue"), "{e}");
        Ok(())
    }

    /// A rotation (a new version of the secret) reaches a warm function once its key is older
    /// than the time-to-live; a read that fails keeps the last key.
    #[tokio::test]
    async fn a_rotated_pii_key_reaches_a_warm_function_after_its_ttl() -> Result<()> {
        let Some(sdk) = moto("a_rotated_pii_key_reaches_a_warm_function_after_its_ttl").await
        else {
            return Ok(());
        };
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        let name = unique("recon/pii");
        let (first, second) = ("0123456789abcdef-first-key", "fedcba9876543210-second-key");
        client
            .create_secret()
            .name(&name)
            .secret_string(first)
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("create_secret: {e}")))?;
        let mut settings = recon_shared::config::Settings::from_lookup(|_| None)?;
        settings.pii_secret = Some(name.clone());
        let backend = recon_shared::select::Backend::aws(sdk.clone(), "unused", settings.clone());
        let source = backend.pii_key_source(&settings, 1000, 0).await?;
        let key = |text: &str| recon_shared::pii::PiiKey::new(text.as_bytes());
        assert!(source.get(10).await? == key(first)?);
        client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(second)
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("put_secret_value: {e}")))?;
        assert!(source.get(999).await? == key(first)?, "within its TTL");
        assert!(source.get(1000).await? == key(second)?, "rotated");
        client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| Error::Invariant(format!("delete_secret: {e}")))?;
        assert!(
            source.get(5000).await? == key(second)?,
            "a failed read keeps the key"
        );
        Ok(())
    }
}
