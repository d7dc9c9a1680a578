//! Retries of the AWS adapters against a scripted HTTP server on 127.0.0.1: throttling and
//! 5xx answers are retried by the SDK (standard mode) and the call succeeds; a service that
//! keeps failing fails after the configured attempts; the answers that no retry can change
//! (access denied, a missing table or bucket, validation, a failed condition) are classified
//! and not retried. Also the Step Functions redrive call,
//! which moto does not implement. No moto needed: the server is in the test.
#![cfg(feature = "aws")]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use recon_shared::aws::dynamo::DynamoRuns;
use recon_shared::aws::s3::{S3Store, UploadSettings};
use recon_shared::aws::sfn::CloseClient;
use recon_shared::aws::{AwsSettings, sdk_config};
use recon_shared::error::Refusal;
use recon_shared::ids::BusinessDate;
use recon_shared::ports::{ObjectStore, RunsTable};
use recon_shared::{Error, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One scripted answer: status, headers, body.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
    Answer {
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.into(),
    }
}

/// What the server saw: request line and the `x-amz-target` header, per request.
type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// Serves the answers in order (the last one repeats) on 127.0.0.1; bounded: it stops after
/// 50 requests.
async fn server(answers: Vec<Answer>) -> Result<(String, Seen)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::io("bind", e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("addr", e))?;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        while served < 50 {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let answers = answers.clone();
            let log = log.clone();
            let start = served;
            served += 1;
            tokio::spawn(async move {
                let _ = serve(sock, answers, log, start).await;
            });
        }
    });
    Ok((format!("http://{addr}"), seen))
}

async fn serve(
    sock: tokio::net::TcpStream,
    answers: Vec<Answer>,
    log: Seen,
    _conn: usize,
) -> std::io::Result<()> {
    let mut r = BufReader::new(sock);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let request_line = line.trim_end().to_string();
        let (mut len, mut target) = (0usize, None);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                } else if k == "x-amz-target" {
                    target = Some(v);
                }
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        let n = {
            let mut seen = log.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            seen.push((
                request_line,
                target,
                String::from_utf8_lossy(&body).into_owned(),
            ));
            seen.len()
        };
        let a = answers
            .get(n - 1)
            .or(answers.last())
            .cloned()
            .ok_or_else(|| std::io::Error::other("no answers"))?;
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            a.status,
            a.body.len()
        );
        for (k, v) in &a.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&a.body);
        r.get_mut().write_all(out.as_bytes()).await?;
    }
}

/// An S3 error answer (REST-XML).
fn s3_answer(status: u16, code: &str, message: &str) -> Answer {
    answer(
        status,
        &[("content-type", "application/xml")],
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ),
    )
}

/// How many requests the server has seen.
fn requests(seen: &Seen) -> Result<usize> {
    Ok(seen
        .lock()
        .map_err(|_| Error::Invariant("poisoned".into()))?
        .len())
}

/// The error of a call that must fail, checked to carry `error_type`.
fn failed<T: std::fmt::Debug>(r: Result<T>, error_type: &str) -> Result<Error> {
    match r {
        Err(e) if e.error_type() == error_type => Ok(e),
        other => Err(Error::Invariant(format!(
            "expected an error of type {error_type}, got {other:?}"
        ))),
    }
}

async fn sdk(endpoint: &str, attempts: u32) -> aws_config::SdkConfig {
    let mut s = AwsSettings::local(endpoint);
    s.max_attempts = attempts;
    sdk_config(&s).await
}

const JSON: (&str, &str) = ("content-type", "application/x-amz-json-1.0");

#[tokio::test]
async fn dynamodb_throttling_and_5xx_are_retried_until_the_call_succeeds() -> Result<()> {
    let (endpoint, seen) = server(vec![
        answer(
            400,
            &[JSON],
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
        ),
        answer(503, &[JSON], r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}"#),
        answer(
            400,
            &[JSON],
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#,
        ),
        answer(
            200,
            &[JSON],
            r#"{"Count":1,"ScannedCount":1,"Items":[{"business_date":{"S":"2026-11-20"},"sk":{"S":"close-2026-11-20-1#bank_01"},"run_id":{"S":"close-2026-11-20-1"},"partition":{"S":"bank_01"},"status":{"S":"SUCCEEDED"},"fingerprint":{"S":"f"},"counts":{"M":{"transactions":{"N":"12"}}},"duration_ms":{"N":"5"},"error":{"NULL":true}}]}"#,
        ),
    ])
    .await?;
    let runs = DynamoRuns::new(
        aws_sdk_dynamodb::Client::new(&sdk(&endpoint, 5).await),
        "Runs",
    );
    let got = runs.runs(BusinessDate::parse("2026-11-20")?).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].counts.get("transactions"), Some(&12));
    let seen = seen
        .lock()
        .map_err(|_| Error::Invariant("poisoned".into()))?;
    assert_eq!(seen.len(), 4, "three failures, then the answer");
    assert!(
        seen.iter()
            .all(|(_, t, _)| t.as_deref() == Some("DynamoDB_20120810.Query"))
    );
    Ok(())
}

#[tokio::test]
async fn a_service_that_keeps_failing_fails_after_the_configured_attempts() -> Result<()> {
    let (endpoint, seen) = server(vec![answer(
        503,
        &[JSON],
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"down"}"#,
    )])
    .await?;
    let runs = DynamoRuns::new(
        aws_sdk_dynamodb::Client::new(&sdk(&endpoint, 3).await),
        "Runs",
    );
    let e = failed(
        runs.runs(BusinessDate::parse("2026-11-20")?).await,
        "Retryable",
    )?;
    assert!(matches!(e, Error::Remote { .. }), "{e:?}");
    assert_eq!(requests(&seen)?, 3);
    Ok(())
}

#[tokio::test]
async fn s3_slow_down_is_retried() -> Result<()> {
    let (endpoint, seen) = server(vec![
        s3_answer(503, "SlowDown", "Please reduce your request rate."),
        s3_answer(500, "InternalError", "oops"),
        answer(
            200,
            &[("content-type", "application/octet-stream")],
            "hello",
        ),
    ])
    .await?;
    let conf = aws_sdk_s3::config::Builder::from(&sdk(&endpoint, 5).await)
        .force_path_style(true)
        .build();
    let store = S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        "bucket",
        UploadSettings::default(),
    );
    assert_eq!(store.get("a/b.txt").await?, Bytes::from_static(b"hello"));
    let seen = seen
        .lock()
        .map_err(|_| Error::Invariant("poisoned".into()))?;
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|(l, _, _)| l.starts_with("GET /bucket/a/b.txt")),
        "{seen:?}"
    );
    Ok(())
}

/// S3 as the scripted server: path-style, `attempts` attempts per call.
async fn s3_store(endpoint: &str, attempts: u32) -> S3Store {
    let conf = aws_sdk_s3::config::Builder::from(&sdk(endpoint, attempts).await)
        .force_path_style(true)
        .build();
    S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        "bucket",
        UploadSettings::default(),
    )
}

#[tokio::test]
async fn s3_access_denied_is_a_permission_error_neither_absent_nor_retried() -> Result<()> {
    let (endpoint, seen) = server(vec![s3_answer(403, "AccessDenied", "Access Denied")]).await?;
    let store = s3_store(&endpoint, 5).await;
    match store.get("config/fx/2026-11-20.csv").await {
        Err(e @ Error::AccessDenied { .. }) => {
            assert_eq!(e.error_type(), "AccessDenied");
            let msg = e.to_string();
            assert!(
                msg.contains("GetObject")
                    && msg.contains("config/fx/2026-11-20.csv")
                    && msg.contains("s3:ListBucket"),
                "{msg}"
            );
        }
        other => {
            return Err(Error::Invariant(format!(
                "expected access denied, got {other:?}"
            )));
        }
    }
    assert!(matches!(
        store.list("index/breaks/").await,
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(
        store.put("runs/x.json", Bytes::from_static(b"{}")).await,
        Err(Error::AccessDenied { .. })
    ));
    let seen = seen
        .lock()
        .map_err(|_| Error::Invariant("poisoned".into()))?;
    assert_eq!(
        seen.len(),
        3,
        "one request per call, none retried: {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn s3_no_such_key_is_absent() -> Result<()> {
    let (endpoint, seen) = server(vec![s3_answer(
        404,
        "NoSuchKey",
        "The specified key does not exist.",
    )])
    .await?;
    let store = s3_store(&endpoint, 5).await;
    assert!(matches!(
        store.get("index/breaks/bank_01/registry.parquet").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.copy("landing/a.csv", "quarantine/a.csv").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(requests(&seen)?, 2);
    Ok(())
}

#[tokio::test]
async fn dynamodb_errors_no_retry_can_change_are_classified_and_not_retried() -> Result<()> {
    let cases = [
        (
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/recon-plan is not authorized to perform: dynamodb:Query on resource: Runs",
            "AccessDenied",
        ),
        (
            "ResourceNotFoundException",
            "Requested resource not found",
            "InvalidConfig",
        ),
        (
            "ValidationException",
            "One or more parameter values were invalid",
            "InvalidInput",
        ),
        (
            "ConditionalCheckFailedException",
            "The conditional request failed",
            "Conflict",
        ),
    ];
    for (code, message, error_type) in cases {
        let body = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
        );
        let (endpoint, seen) = server(vec![answer(400, &[JSON], &body)]).await?;
        let runs = DynamoRuns::new(
            aws_sdk_dynamodb::Client::new(&sdk(&endpoint, 5).await),
            "Runs",
        );
        let e = failed(
            runs.runs(BusinessDate::parse("2026-11-20")?).await,
            error_type,
        )?;
        let text = e.to_string();
        assert!(
            text.contains("dynamodb Query") && text.contains(message),
            "{text}"
        );
        assert!(
            !text.contains("s3:ListBucket"),
            "an S3 hint on DynamoDB: {text}"
        );
        assert_eq!(requests(&seen)?, 1, "{code} was retried");
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_bucket_is_a_configuration_error_not_an_absent_object() -> Result<()> {
    let (endpoint, seen) = server(vec![s3_answer(
        404,
        "NoSuchBucket",
        "The specified bucket does not exist",
    )])
    .await?;
    let store = s3_store(&endpoint, 5).await;
    for r in [
        store.get("config/fx/2026-11-20.csv").await.map(|_| ()),
        store.list("landing/").await.map(|_| ()),
    ] {
        let e = failed(r, "InvalidConfig")?;
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
        assert!(e.to_string().contains("RECON_BUCKET"), "{e}");
    }
    assert_eq!(requests(&seen)?, 2);
    Ok(())
}

#[tokio::test]
async fn a_connection_that_fails_is_retryable() -> Result<()> {
    // A port nobody listens on: bound, then closed.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::io("bind", e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("addr", e))?;
    drop(listener);
    let runs = DynamoRuns::new(
        aws_sdk_dynamodb::Client::new(&sdk(&format!("http://{addr}"), 2).await),
        "Runs",
    );
    let e = failed(
        runs.runs(BusinessDate::parse("2026-11-20")?).await,
        "Retryable",
    )?;
    assert!(e.to_string().starts_with("dynamodb Query: "), "{e}");
    Ok(())
}

#[tokio::test]
async fn a_redrive_names_the_execution() -> Result<()> {
    let (endpoint, seen) = server(vec![answer(
        200,
        &[JSON],
        r#"{"redriveDate": 1795219200.0}"#,
    )])
    .await?;
    let arn = "arn:aws:states:eu-central-1:123456789012:execution:recon-dev-daily-close:close-2026-11-20-1";
    let close = CloseClient::new(
        aws_sdk_sfn::Client::new(&sdk(&endpoint, 2).await),
        "arn:aws:states:eu-central-1:123456789012:stateMachine:recon-dev-daily-close",
    );
    let when = close.redrive(arn).await?;
    assert_eq!(when, "2026-11-21T00:00:00Z");
    let seen = seen
        .lock()
        .map_err(|_| Error::Invariant("poisoned".into()))?;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].1.as_deref(),
        Some("AWSStepFunctions.RedriveExecution")
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].2)?;
    assert_eq!(body["executionArn"], arn);
    Ok(())
}

#[tokio::test]
async fn accepted_deliveries_are_queued_on_the_normalizer_as_events() -> Result<()> {
    use recon_shared::aws::lambda::NormalizerInvoker;

    let (endpoint, seen) = server(vec![answer(202, &[], "")]).await?;
    let invoker = NormalizerInvoker::new(&sdk(&endpoint, 1).await, "recon-normalizer");
    let requests = [
        serde_json::json!({"source_id": "bank_01", "business_date": "2026-11-20", "version": 1}),
        serde_json::json!({"source_id": "ledger", "business_date": "2026-11-20", "version": 2}),
    ];
    assert_eq!(invoker.dispatch(&requests).await?, 2);
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 2);
    for ((line, _, body), want) in seen.iter().zip(&requests) {
        assert!(
            line.starts_with("POST /2015-03-31/functions/recon-normalizer/invocations"),
            "{line}"
        );
        assert_eq!(&serde_json::from_str::<serde_json::Value>(body)?, want);
    }
    assert_eq!(invoker.dispatch::<serde_json::Value>(&[]).await?, 0);

    // A synchronous answer means the event was not queued: an error, not a silent success.
    let (endpoint, _) = server(vec![answer(200, &[], "{}")]).await?;
    let invoker = NormalizerInvoker::new(&sdk(&endpoint, 1).await, "recon-normalizer");
    let err = invoker.dispatch(&requests[..1]).await;
    assert!(err.is_err_and(|e| e.to_string().contains("202")));
    Ok(())
}
