//! The whole pipeline on the AWS adapters (S3, DynamoDB, Glue on a moto server) against the
//! same pipeline on the local adapters: a generated day ingested (validator, normalizer),
//! its topics indexed, the daily close state machine executed, the query API asked. Index
//! Parquet bytes, run summaries, catalog partitions, Runs rows and API answers must be
//! identical. Also `recon ops` against moto's Step Functions.
#![cfg(feature = "aws")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use query_api::{Request, route};
use recon_runtime::asl::Outcome;
use recon_runtime::close::{PortTasks, execute};
use recon_runtime::stream_feed::{BATCH_SIZE, TopicReader, kafka_event, topic_files};
use recon_shared::aws::dynamo::{
    DynamoBreakLog, DynamoManifests, DynamoRules, DynamoRuns, DynamoTransactionIndex, TableNames,
    create_tables,
};
use recon_shared::aws::glue::GlueCatalog;
use recon_shared::aws::s3::{S3Store, UploadSettings};
use recon_shared::aws::sfn::CloseClient;
use recon_shared::aws::testing::{moto, unique};
use recon_shared::aws::{aws_sdk_dynamodb, aws_sdk_glue, aws_sdk_s3, aws_sdk_sfn};
use recon_shared::ids::BusinessDate;
use recon_shared::local::{
    LocalBreakLog, LocalCatalog, LocalManifests, LocalRules, LocalRuns, LocalStore,
};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::manifest::MANIFEST_FILE;
use recon_shared::ports::{Catalog, ManifestTable, ObjectStore, RunsTable, TransactionIndex};
use recon_shared::rules::table::Author;
use recon_shared::stream::StreamContext;
use recon_shared::{Error, Result};
use serde_json::Value;

/// What a pipeline run leaves that the comparison looks at.
#[derive(Debug, PartialEq)]
struct Outputs {
    /// Every object under `index/`, `curated/` and `runs/`, by key (Parquet compared as bytes).
    objects: BTreeMap<String, Bytes>,
    partitions: Vec<recon_shared::ports::Partition>,
    /// Runs rows without their timings.
    runs: Vec<Value>,
    /// Query API answers, by request.
    answers: BTreeMap<String, (u16, Value)>,
}

async fn pipeline<S, M, C, R, I, B, T>(
    tasks: &PortTasks<S, R, I, M, C, B, T>,
    data: &Path,
    date: BusinessDate,
) -> Result<Outputs>
where
    S: ObjectStore,
    M: ManifestTable,
    C: Catalog,
    R: RunsTable,
    I: TransactionIndex,
    B: recon_shared::ports::BreakLog,
    T: recon_shared::ports::RulesTable,
{
    let (store, index, manifests, catalog) =
        (&tasks.store, &tasks.index, &tasks.manifests, &tasks.catalog);
    let pii = recon_runtime::local::local_pii_key()?;
    // Ingestion: each manifest's S3 event to the validator, its requests to the normalizer.
    let landing = store.list("landing/").await?;
    for o in landing
        .iter()
        .filter(|o| o.key.ends_with(&format!("/{MANIFEST_FILE}")))
    {
        let event = manifest_validator::s3_put_event("recon-test", &o.key, o.size)?;
        let resp = manifest_validator::handle(event, store, manifests).await?;
        for req in resp.normalize {
            normalizer::handle(req, store, manifests, catalog, &pii).await?;
        }
    }
    // The topics, as MSK batches.
    let ctx = StreamContext::load(store, pii).await?;
    let mut reader = TopicReader::open(&topic_files(data)?)?;
    loop {
        let batch = reader.next_batch(BATCH_SIZE)?;
        if batch.is_empty() {
            break;
        }
        stream_indexer::handle(kafka_event(batch), store, index, &ctx).await?;
    }
    // The daily close state machine.
    let name = format!("close-{date}-1");
    let (outcome, _) = execute(tasks, &name, date).await?;
    if let Outcome::Failed(f) = outcome {
        return Err(Error::Invariant(format!(
            "close failed: {}: {}",
            f.error, f.cause
        )));
    }
    // The query API.
    let final_key = recon_shared::keys::final_key(date);
    let finals = store
        .list(final_key.rsplit_once('/').map_or("", |(d, _)| d))
        .await?;
    let rows: Vec<(String, String, String)> = match finals.first() {
        Some(o) => recon_shared::columnar::read_parquet::<recon_shared::close::FinalRow>(
            store.get(&o.key).await?,
        )?
        .into_iter()
        .filter(|r| !r.user_token.is_empty())
        .map(|r| {
            (
                r.transaction_id.to_string(),
                r.merchant_id.to_string(),
                r.user_token,
            )
        })
        .collect(),
        None => Vec::new(),
    };
    let mut paths = vec![
        format!("/runs/{date}"),
        format!("/mismatches?date={date}&limit=50"),
        "/transactions/TX-NOPE".to_string(),
    ];
    for (id, merchant, user) in rows.iter().take(5) {
        paths.push(format!("/transactions/{id}"));
        paths.push(format!(
            "/merchants/{merchant}/transactions?date={date}&limit=3"
        ));
        paths.push(format!("/merchants/{merchant}/kpis?date={date}"));
        paths.push(format!("/users/{user}/transactions?limit=2"));
    }
    let mut answers = BTreeMap::new();
    for p in paths {
        let (path, query) = p.split_once('?').unwrap_or((p.as_str(), ""));
        let mut resp = route(
            &Request {
                method: "GET".into(),
                path: path.into(),
                query: query.into(),
                body: Vec::new(),
                actor: None,
            },
            store,
            index,
            &tasks.breaks,
        )
        .await;
        // Follow one `next` cursor of each paged answer.
        if let Some(next) = resp.body.get("next").and_then(Value::as_str) {
            let more = route(
                &Request {
                    method: "GET".into(),
                    path: path.into(),
                    query: format!("{query}&next={next}"),
                    body: Vec::new(),
                    actor: None,
                },
                store,
                index,
                &tasks.breaks,
            )
            .await;
            answers.insert(
                format!("{p} (page 2)"),
                (more.status, common::untimed(more.body)),
            );
        }
        resp.body = common::untimed(resp.body);
        answers.insert(p, (resp.status, resp.body));
    }
    let mut objects = BTreeMap::new();
    for prefix in ["index/", "curated/", "quarantine/", "runs/"] {
        for o in store.list(prefix).await? {
            let mut bytes = store.get(&o.key).await?;
            if prefix == "runs/" {
                // Run summaries hold timings: compared without them.
                let v: Value = serde_json::from_slice(&bytes)?;
                bytes = Bytes::from(serde_json::to_vec(&common::untimed(v))?);
            }
            objects.insert(o.key.clone(), bytes);
        }
    }
    let mut partitions = Vec::new();
    // Curated partitions (the normalizer's) and index partitions (the close's).
    for table in [
        "statements",
        "transactions",
        "rejects",
        "batch_index",
        "mismatches",
        "final_index",
        "merchant_kpis",
        "anomalies",
    ] {
        partitions.extend(catalog.partitions("recon", table).await?);
    }
    let runs = tasks
        .runs
        .runs(date)
        .await?
        .into_iter()
        .map(|r| serde_json::to_value(r).map(common::untimed))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Outputs {
        objects,
        partitions,
        runs,
        answers,
    })
}

/// Uploads the bucket part of a generated day (not the local tables, not the truth).
async fn upload(dir: &Path, store: &S3Store) -> Result<usize> {
    let mut n = 0;
    for p in common::files_under(dir) {
        let rel = p
            .strip_prefix(dir)
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("landing/") || rel.starts_with("config/") {
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            store.put(&rel, Bytes::from(bytes)).await?;
            n += 1;
        }
    }
    Ok(n)
}

// Multi-threaded: the close's Map runs iterations on threads of their own while this one
// waits, and the SDK's pooled connections need their runtime's workers to keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_on_aws_adapters_gives_the_local_results() -> Result<()> {
    let Some(sdk) = moto("the_pipeline_on_aws_adapters_gives_the_local_results").await else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let date = common::date()?;
    let dir = common::tmp()?;
    common::day(dir.path(), 300, 9)?;

    // AWS: bucket with the day's deliveries and config, tables, catalog.
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    let bucket = unique("recon-e2e");
    let s3 = S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        bucket.clone(),
        UploadSettings {
            list_page_size: Some(50),
            ..UploadSettings::default()
        },
    );
    s3.create_bucket().await?;
    assert!(upload(dir.path(), &s3).await? > 10);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let names = TableNames::prefixed(&unique("e2e"));
    create_tables(&ddb, &names).await?;
    let glue = GlueCatalog::new(aws_sdk_glue::Client::new(&sdk), bucket);
    glue.ensure_table("recon", "statements", &["business_date", "bank_id"])
        .await?;
    glue.ensure_table("recon", "transactions", &["business_date"])
        .await?;
    glue.ensure_table("recon", "rejects", &["business_date", "source_id"])
        .await?;
    for (table, keys) in [
        ("batch_index", &["business_date", "bank_id"][..]),
        ("mismatches", &["business_date", "bank_id"][..]),
        ("final_index", &["business_date"][..]),
        ("merchant_kpis", &["business_date"][..]),
        ("anomalies", &["business_date"][..]),
    ] {
        glue.ensure_table("recon", table, keys).await?;
    }
    let mut index = DynamoTransactionIndex::new(ddb.clone(), names.transaction_index.clone());
    index.query_page_size = Some(25);
    let aws_tasks = PortTasks::with_ports(
        s3,
        DynamoRuns::new(ddb.clone(), names.runs.clone()),
        index,
        DynamoManifests::new(ddb.clone(), names.manifests.clone()),
        glue,
        (
            DynamoBreakLog::new(ddb.clone(), names.break_actions.clone()),
            DynamoRules::new(ddb.clone(), names.rules.clone()),
        ),
    );
    // The rules come from the Rules table: the plan writes them to the bucket's config/.
    let rules = recon_shared::close::rules::read_files(&LocalStore::new(dir.path())).await?;
    let author = Author::new("e2e", chrono::Utc::now(), "the world's rules")?;
    let imported = recon_shared::close::rules::import(&aws_tasks.rules, &rules, &author).await?;
    assert_eq!(imported.len(), rules.0.len());
    let aws = pipeline(&aws_tasks, dir.path(), date).await?;

    // Local, on the same directory.
    let local_tasks = PortTasks::with_ports(
        LocalStore::new(dir.path()),
        LocalRuns::new(dir.path()),
        LocalTransactionIndex::open(dir.path())?,
        LocalManifests::new(dir.path()),
        LocalCatalog::new(dir.path()),
        (LocalBreakLog::new(dir.path()), LocalRules::new(dir.path())),
    );
    recon_shared::close::rules::import(&local_tasks.rules, &rules, &author).await?;
    let local = pipeline(&local_tasks, dir.path(), date).await?;

    assert!(local.objects.keys().any(|k| k.starts_with("index/final/")));
    assert!(local.objects.keys().any(|k| k.starts_with("index/batch/")));
    assert!(!local.partitions.is_empty());
    assert!(local.answers.values().filter(|(s, _)| *s == 200).count() >= 10);
    assert_eq!(
        aws.objects.keys().collect::<Vec<_>>(),
        local.objects.keys().collect::<Vec<_>>()
    );
    for (k, v) in &local.objects {
        assert!(aws.objects.get(k) == Some(v), "{k} differs");
    }
    assert_eq!(aws.partitions, local.partitions);
    assert_eq!(aws.runs, local.runs);
    for (k, v) in &local.answers {
        assert_eq!(aws.answers.get(k), Some(v), "{k}");
    }
    assert_eq!(aws.answers.len(), local.answers.len());
    eprintln!(
        "e2e: {} objects, {} partitions, {} answers identical in {} ms",
        local.objects.len(),
        local.partitions.len(),
        local.answers.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}

// --- recon ops ---------------------------------------------------------------------------------

/// A close stand-in that runs on moto (no task states): the 19th fails, other dates succeed.
const DEFINITION: &str = r#"{
  "StartAt": "Check",
  "States": {
    "Check": {"Type": "Choice",
              "Choices": [{"Variable": "$.business_date", "StringEquals": "2026-11-19", "Next": "Fail"}],
              "Default": "Done"},
    "Fail": {"Type": "Fail", "Error": "States.TaskFailed", "Cause": "partition bank_02 failed"},
    "Done": {"Type": "Succeed"}
  }
}"#;

async fn settle(client: &CloseClient, arn: &str) -> Result<String> {
    for _ in 0..100 {
        let d = client.describe(arn).await?;
        if d.status != "RUNNING" {
            return Ok(d.status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(Error::Invariant(format!("{arn} still running")))
}

#[tokio::test]
async fn ops_start_list_describe_and_rerun() -> Result<()> {
    let Some(sdk) = moto("ops_start_list_describe_and_rerun").await else {
        return Ok(());
    };
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let created = sfn
        .create_state_machine()
        .name(unique("recon-close"))
        .definition(DEFINITION)
        .role_arn("arn:aws:iam::123456789012:role/recon-close")
        .send()
        .await
        .map_err(|e| Error::Invariant(format!("create state machine: {e}")))?;
    let mut client = CloseClient::new(sfn, created.state_machine_arn());
    client.page_size = Some(1);
    let d20 = BusinessDate::parse("2026-11-20")?;
    let d19 = BusinessDate::parse("2026-11-19")?;
    let (a1, started) = client.start_close(d20, None).await?;
    assert!(started && a1.ends_with(":close-2026-11-20-1"), "{a1}");
    assert_eq!(settle(&client, &a1).await?, "SUCCEEDED");
    // The same name again is not a second close; the next one is n = 2.
    let (again, started) = client.start_close(d20, Some(1)).await?;
    assert!(!started);
    assert_eq!(again, a1);
    let (a2, _) = client.start_close(d20, None).await?;
    assert!(a2.ends_with(":close-2026-11-20-2"), "{a2}");
    let (f1, _) = client.start_close(d19, None).await?;
    assert_eq!(settle(&client, &f1).await?, "FAILED");
    settle(&client, &a2).await?;
    // Listing pages through everything (pages of one); the status filter keeps the failure.
    let all = recon_cli::ops::executions(&client, None).await?;
    assert_eq!(all.len(), 3);
    let failed = recon_cli::ops::executions(&client, Some("failed")).await?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "close-2026-11-19-1");
    let table = recon_cli::ops::executions_table(&failed);
    assert!(
        table.contains("close-2026-11-19-1") && table.contains("FAILED"),
        "{table}"
    );
    let d = client.describe(&f1).await?;
    assert_eq!(d.status, "FAILED");
    assert_eq!(d.name, "close-2026-11-19-1");
    assert!(d.stop.is_some());
    assert!(d.error.is_some(), "{d:?}");
    assert!(
        recon_cli::ops::executions(&client, Some("BROKEN"))
            .await
            .is_err()
    );

    // Rerun of one partition on S3 + DynamoDB: the same summary as on the local ports.
    let dir = common::tmp()?;
    common::day(dir.path(), 200, 3)?;
    recon_runtime::ingest::ingest(&recon_runtime::ingest::RunConfig {
        data: dir.path().to_path_buf(),
        date: Some(d20),
    })
    .await?;
    let local_tasks = recon_runtime::close::LocalTasks::new(dir.path())?;
    let local_close = recon_runtime::close::close(&local_tasks, dir.path(), d20).await?;
    assert!(matches!(local_close.outcome, Outcome::Succeeded(_)));
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    let s3 = S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        unique("recon-rerun"),
        UploadSettings::default(),
    );
    s3.create_bucket().await?;
    // The partition's inputs as the normalizer left them, and the index as the close left it
    // (the break registry carries first-seen dates into the rerun).
    for p in common::files_under(dir.path()) {
        let rel = p
            .strip_prefix(dir.path())
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("curated/") || rel.starts_with("config/") || rel.starts_with("index/") {
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            s3.put(&rel, Bytes::from(b)).await?;
        }
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let names = TableNames::prefixed(&unique("rerun"));
    create_tables(&ddb, &names).await?;
    let runs = DynamoRuns::new(ddb, names.runs);
    let aws = recon_runtime::close::rerun_partition(
        &s3,
        &runs,
        d20,
        "bank_01",
        None,
        Some("ops-test".into()),
    )
    .await?;
    let local = recon_runtime::close::rerun_partition(
        &LocalStore::new(dir.path()),
        &LocalRuns::new(dir.path()),
        d20,
        "bank_01",
        None,
        Some("ops-test".into()),
    )
    .await?;
    assert!(aws.transactions > 0);
    let strip = |s: &recon_shared::close::PartitionSummary| -> Result<Value> {
        Ok(common::untimed(serde_json::to_value(s)?))
    };
    assert_eq!(strip(&aws)?, strip(&local)?);
    let key = format!("index/batch/business_date={d20}/bank_id=bank_01/part.parquet");
    let local_bytes = std::fs::read(dir.path().join(&key)).map_err(|e| Error::io(&key, e))?;
    assert_eq!(s3.get(&key).await?, Bytes::from(local_bytes));
    assert!(
        runs.runs(d20)
            .await?
            .iter()
            .any(|r| r.run_id == "ops-test" && r.partition == "bank_01")
    );
    Ok(())
}
