//! Finance works its breaks (design.md §12) on a generated world closed day after day: a
//! write-off and a manual match made on one close are kept by every later close and by a
//! corrected delivery of another line; a correction of the written-off line's own amount
//! reopens it with an event that says why; a retried close appends nothing twice; eight
//! writers on one break lose nothing; a changed event is found by `verify`.

mod common;

use std::path::Path;

use common::{state, tmp};
use recon_shared::breaks::{Action, BreakEvent, CLOSE_ACTOR, Refusal};
use recon_shared::close::breaks::{self as work, BreakView, FactsCache, History};
use recon_shared::columnar::read_parquet;
use recon_shared::ids::{BankId, BusinessDate};
use recon_shared::keys::{batch_key, mismatches_key};
use recon_shared::local::{LocalBreakLog, LocalStore};
use recon_shared::ports::{BreakLog, ObjectStore};
use recon_shared::reconcile::{IndexRow, RowKind};
use recon_shared::records::{
    BreakStatus, MatchRule, MismatchType, ReconciledStatus, ResolveReason,
};
use recon_shared::{Error, Result};

const FIRST: &str = "2026-11-16";
const SEEN: &str = "2026-11-18";
const LAST: &str = "2026-11-20";

fn d(s: &str) -> Result<BusinessDate> {
    BusinessDate::parse(s)
}

/// Ingests what is new and closes `from` (through `through`), as `recon run` does (on a thread
/// of its own: the runner has its own runtime).
async fn close(root: &Path, from: &str, through: Option<&str>) -> Result<()> {
    let (root, from, through) = (
        root.to_path_buf(),
        from.to_string(),
        through.map(str::to_string),
    );
    tokio::task::spawn_blocking(move || common::run_quietly(&root, &from, through.as_deref()))
        .await
        .map_err(|e| Error::Invariant(e.to_string()))?
}

async fn rows(store: &LocalStore, key: &str) -> Result<Vec<IndexRow>> {
    read_parquet(store.get(key).await?)
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Acts and expects the action to be taken.
async fn take(
    store: &LocalStore,
    log: &LocalBreakLog,
    id: &str,
    date: &str,
    action: Action,
    actor: &str,
) -> Result<BreakEvent> {
    work::act(
        store,
        log,
        &FactsCache::default(),
        id,
        d(date)?,
        action,
        actor,
        at(),
    )
    .await?
    .map(|(event, _)| event)
    .map_err(|r| Error::Invariant(format!("{id}: refused: {r:?}")))
}

/// The breaks of bank_01 in the close of SEEN: an AMOUNT break to write off, and a line nobody
/// booked with an open payment of the bank to match it with by hand.
struct Picked {
    write_off: BreakView,
    line_break: BreakView,
    transaction: String,
}

async fn pick(store: &LocalStore, log: &LocalBreakLog, bank: &BankId) -> Result<Picked> {
    let views = work::list(store, log, &FactsCache::default(), d(SEEN)?, Some(bank)).await?;
    let find = |kind: MismatchType| {
        views
            .iter()
            .find(|v| v.facts.mismatch_type == kind && !v.facts.statement_ids.is_empty())
            .cloned()
            .ok_or_else(|| Error::Invariant(format!("no {kind} break of {bank} on {SEEN}")))
    };
    let write_off = find(MismatchType::Amount)?;
    let line_break = find(MismatchType::MissingInternal)?;
    // A payment the close left pending: an open item of the bank.
    let batch = rows(store, &batch_key(d(SEEN)?, bank)).await?;
    let transaction = batch
        .iter()
        .find(|r| {
            r.row_kind == RowKind::Transaction
                && r.reconciled_status == ReconciledStatus::Pending
                && r.expected_amount
                    .is_some_and(|a| a > rust_decimal::Decimal::ZERO)
        })
        .and_then(|r| r.transaction_id.as_ref().map(|t| t.to_string()))
        .ok_or_else(|| Error::Invariant(format!("no pending payment of {bank} on {SEEN}")))?;
    Ok(Picked {
        write_off,
        line_break,
        transaction,
    })
}

#[tokio::test]
async fn people_decisions_survive_later_closes_and_corrections_and_reopen_when_amounts_change()
-> Result<()> {
    let dir = tmp()?;
    let root = dir.path();
    common::world(root, FIRST, 5, 1500, 7)?;
    close(root, FIRST, Some(LAST)).await?;
    let (store, log) = (LocalStore::new(root), LocalBreakLog::new(root));
    let bank = BankId::new("bank_01")?;
    let p = pick(&store, &log, &bank).await?;
    let (w, l) = (&p.write_off.facts.break_id, &p.line_break.facts.break_id);
    let line = p.line_break.facts.statement_ids[0].clone();

    // Assign, comment, write off; match the line with the pending payment by hand.
    take(
        &store,
        &log,
        w,
        SEEN,
        Action::Assign {
            owner: "bob".into(),
        },
        "alice",
    )
    .await?;
    take(
        &store,
        &log,
        w,
        SEEN,
        Action::Comment {
            text: "bank confirms the short payment".into(),
        },
        "bob",
    )
    .await?;
    let refused = work::act(
        &store,
        &log,
        &FactsCache::default(),
        w,
        d(SEEN)?,
        Action::Resolve {
            reason: ResolveReason::WriteOff,
            note: String::new(),
            transaction_ids: vec![],
            statement_ids: vec![],
        },
        "bob",
        at(),
    )
    .await?;
    assert!(matches!(refused, Err(Refusal::Invalid(_))), "{refused:?}");
    take(
        &store,
        &log,
        w,
        SEEN,
        Action::Resolve {
            reason: ResolveReason::WriteOff,
            note: "below the write-off threshold".into(),
            transaction_ids: vec![],
            statement_ids: vec![],
        },
        "bob",
    )
    .await?;
    let again = work::act(
        &store,
        &log,
        &FactsCache::default(),
        w,
        d(SEEN)?,
        Action::Resolve {
            reason: ResolveReason::Other,
            note: "twice".into(),
            transaction_ids: vec![],
            statement_ids: vec![],
        },
        "carol",
        at(),
    )
    .await?;
    assert!(matches!(again, Err(Refusal::Conflict(_))), "{again:?}");
    let unknown = work::act(
        &store,
        &log,
        &FactsCache::default(),
        l,
        d(SEEN)?,
        Action::Resolve {
            reason: ResolveReason::ManualMatch,
            note: "x".into(),
            transaction_ids: vec!["TX-NOT-THERE".into()],
            statement_ids: vec![line.clone()],
        },
        "carol",
        at(),
    )
    .await?;
    assert!(matches!(unknown, Err(Refusal::NotFound(_))), "{unknown:?}");
    take(
        &store,
        &log,
        l,
        SEEN,
        Action::Resolve {
            reason: ResolveReason::ManualMatch,
            note: "merchant confirmed the payout pays this payment".into(),
            transaction_ids: vec![p.transaction.clone()],
            statement_ids: vec![line.clone()],
        },
        "carol",
    )
    .await?;

    // The next close keeps both decisions: the written-off break is resolved by a person, the
    // manual match is applied by the engine.
    close(root, LAST, None).await?;
    let check = |mm: &[IndexRow], batch: &[IndexRow]| -> Result<()> {
        let wrow = mm
            .iter()
            .find(|r| r.break_id.as_deref() == Some(w.as_str()))
            .ok_or_else(|| Error::Invariant("write-off row gone".into()))?;
        assert_eq!(wrow.break_status, Some(BreakStatus::ResolvedByPerson));
        assert_eq!(wrow.resolution, Some(ResolveReason::WriteOff));
        assert_eq!(wrow.resolved_by.as_deref(), Some("bob"));
        let manual: Vec<&IndexRow> = batch
            .iter()
            .filter(|r| r.match_rule == MatchRule::Manual)
            .collect();
        assert_eq!(manual.len(), 2, "{manual:?}");
        for r in &manual {
            assert_eq!(r.reconciled_status, ReconciledStatus::Matched);
            assert_eq!(r.confidence, rust_decimal::Decimal::ONE);
        }
        let lrow = manual
            .iter()
            .find(|r| r.row_kind == RowKind::StatementLine)
            .ok_or_else(|| Error::Invariant("no manual line row".into()))?;
        assert_eq!(lrow.statement_ids, vec![line.clone()]);
        assert_eq!(lrow.transaction_ids, vec![p.transaction.clone()]);
        assert_eq!(lrow.break_id.as_deref(), Some(l.as_str()));
        assert_eq!(lrow.break_status, Some(BreakStatus::ResolvedByPerson));
        assert_eq!(lrow.resolution, Some(ResolveReason::ManualMatch));
        assert_eq!(lrow.resolved_by.as_deref(), Some("carol"));
        Ok(())
    };
    let seen = d(SEEN)?;
    check(
        &rows(&store, &mismatches_key(seen, &bank)).await?,
        &rows(&store, &batch_key(seen, &bank)).await?,
    )?;
    // The merchant KPIs count breaks open, resolved by people and by the engine.
    let kpis: Vec<recon_shared::close::KpiRow> =
        read_parquet(store.get(&recon_shared::keys::kpis_key(seen)).await?)?;
    let by_people: i64 = kpis.iter().map(|k| k.breaks_resolved_by_people).sum();
    let open: i64 = kpis.iter().map(|k| k.breaks_open).sum();
    assert!(by_people >= 1 && open > 0, "{by_people} {open}");
    // No later close of the bank carries the matched items, nor the line's break.
    for day in ["2026-11-19", LAST] {
        let later = rows(&store, &batch_key(d(day)?, &bank)).await?;
        let carried = later.iter().any(|r| match r.row_kind {
            RowKind::StatementLine => r.statement_ids.contains(&line),
            RowKind::Transaction => r
                .transaction_id
                .as_ref()
                .is_some_and(|t| t.as_str() == p.transaction),
        });
        assert!(!carried, "{day}");
        let mm = rows(&store, &mismatches_key(d(day)?, &bank)).await?;
        assert!(
            !mm.iter().any(|r| r.break_id.as_deref() == Some(l.as_str())),
            "{day}"
        );
    }
    // The list answers what people did.
    let listed = work::list(&store, &log, &FactsCache::default(), seen, Some(&bank)).await?;
    let wv = listed
        .iter()
        .find(|v| &v.facts.break_id == w)
        .ok_or_else(|| Error::Invariant("w".into()))?;
    assert_eq!(
        (wv.status, wv.owner.as_deref(), wv.comments),
        (BreakStatus::ResolvedByPerson, Some("bob"), 1)
    );

    // A close run again from the same inputs changes nothing, byte for byte.
    let before = state(root)?;
    close(root, LAST, None).await?;
    assert_eq!(common::diff(&before, &state(root)?), Vec::<String>::new());

    // A corrected delivery of another line: the re-close keeps both decisions.
    let w_lines = p.write_off.facts.statement_ids.clone();
    // The edits below read bank_01's statement as CSV.
    assert!(
        root.join(format!("landing/bank_01/{SEEN}/statements_0001.csv"))
            .is_file()
    );
    common::redeliver(root, "bank_01", SEEN, |lines| {
        let other = lines.iter().rposition(|x| {
            !w_lines.iter().any(|s| x.starts_with(s.as_str())) && !x.starts_with(line.as_str())
        });
        if let Some(i) = other {
            lines.remove(i);
        }
    })?;
    close(root, LAST, None).await?;
    check(
        &rows(&store, &mismatches_key(seen, &bank)).await?,
        &rows(&store, &batch_key(seen, &bank)).await?,
    )?;

    // A correction of the written-off line's own amount: the resolution no longer holds; the
    // close reopens it, once, with an event that says what changed.
    common::redeliver(root, "bank_01", SEEN, |lines| {
        for x in lines
            .iter_mut()
            .filter(|x| x.starts_with(w_lines[0].as_str()))
        {
            let mut f: Vec<String> = x.split(',').map(str::to_string).collect();
            let amount: rust_decimal::Decimal = f[3].parse().unwrap_or_default();
            f[3] = (amount - rust_decimal::Decimal::ONE).to_string();
            *x = f.join(",");
        }
    })?;
    close(root, LAST, None).await?;
    let history = History::read(&log, w).await?;
    let last = history
        .events
        .last()
        .ok_or_else(|| Error::Invariant("no events".into()))?;
    assert!(
        matches!(&last.action, Action::Reopen { note } if note.starts_with("amounts changed since the resolution: ")),
        "{last:?}"
    );
    assert_eq!(last.actor, CLOSE_ACTOR);
    assert_eq!(history.state.resolution, None);
    let mm = rows(&store, &mismatches_key(seen, &bank)).await?;
    let wrow = mm
        .iter()
        .find(|r| r.break_id.as_deref() == Some(w.as_str()))
        .ok_or_else(|| Error::Invariant("w row".into()))?;
    assert_eq!(wrow.break_status, Some(BreakStatus::Open));
    // Again: nothing more is appended (the resolution is reopened already).
    let events = history.events.len();
    close(root, LAST, None).await?;
    assert_eq!(History::read(&log, w).await?.events.len(), events);
    // The manual match still holds, and every chain verifies.
    let (_, _, broken) = work::verify_all(&log).await?;
    assert!(broken.is_empty(), "{broken:?}");
    Ok(())
}

#[tokio::test]
async fn eight_writers_on_one_break_lose_no_action_and_a_changed_event_is_found() -> Result<()> {
    let dir = tmp()?;
    let root = dir.path();
    common::world(root, FIRST, 3, 800, 3)?;
    close(root, FIRST, Some(SEEN)).await?;
    let (store, log) = (LocalStore::new(root), LocalBreakLog::new(root));
    let views = work::list(&store, &log, &FactsCache::default(), d(SEEN)?, None).await?;
    let id = views
        .first()
        .map(|v| v.facts.break_id.clone())
        .ok_or_else(|| Error::Invariant("no break".into()))?;
    let (writers, each) = (8usize, 100usize);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (root, id) = (root.to_path_buf(), id.clone());
        tasks.push(tokio::spawn(async move {
            let (store, log) = (LocalStore::new(&root), LocalBreakLog::new(&root));
            for i in 0..each {
                take(
                    &store,
                    &log,
                    &id,
                    SEEN,
                    Action::Comment {
                        text: format!("writer {w} note {i}"),
                    },
                    &format!("w{w}"),
                )
                .await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Invariant(e.to_string()))??;
    }
    let events = log.history(&id, 0).await?;
    assert_eq!(events.len(), writers * each);
    assert_eq!(recon_shared::breaks::verify(&events), Ok(()));
    for w in 0..writers {
        let mine: Vec<&BreakEvent> = events
            .iter()
            .filter(|e| e.actor == format!("w{w}"))
            .collect();
        assert_eq!(mine.len(), each);
        // Each writer's actions in its own order.
        let texts: Vec<String> = mine
            .iter()
            .filter_map(|e| match &e.action {
                Action::Comment { text } => Some(text.clone()),
                _ => None,
            })
            .collect();
        let want: Vec<String> = (0..each).map(|i| format!("writer {w} note {i}")).collect();
        assert_eq!(texts, want);
    }

    // Someone edits event 42 on disk: verify names it.
    let path = root.join(format!("state/break_actions/{id}/{:012}.json", 42));
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    std::fs::write(&path, text.replace("note", "n0te")).map_err(|e| Error::io(&path, e))?;
    let (_, _, broken) = work::verify_all(&log).await?;
    assert_eq!(broken.len(), 1);
    assert_eq!(
        (broken[0].break_id.as_str(), broken[0].seq),
        (id.as_str(), 42)
    );
    // And a new action on the break refuses to build on a broken chain.
    let r = work::act(
        &store,
        &log,
        &FactsCache::default(),
        &id,
        d(SEEN)?,
        Action::Comment { text: "x".into() },
        "z",
        at(),
    )
    .await;
    assert!(
        r.as_ref()
            .is_err_and(|e| e.to_string().contains("broken at event 42")),
        "{r:?}"
    );
    Ok(())
}

/// An API Gateway event of `events/query-api/` aimed at `path?query` with `body`.
fn event(
    name: &str,
    path: &str,
    query: &str,
    body: Option<serde_json::Value>,
) -> Result<aws_lambda_events::event::apigw::ApiGatewayV2httpRequest> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/query-api")
        .join(name);
    let mut e: aws_lambda_events::event::apigw::ApiGatewayV2httpRequest =
        serde_json::from_slice(&std::fs::read(&file).map_err(|e| Error::io(&file, e))?)?;
    e.raw_path = Some(path.into());
    e.request_context.http.path = Some(path.into());
    e.raw_query_string = Some(query.into());
    if let Some(id) = path.split('/').nth(2) {
        e.path_parameters.insert("break_id".into(), id.into());
    }
    e.body = body.map(|b| b.to_string());
    Ok(e)
}

async fn call(
    root: &Path,
    e: aws_lambda_events::event::apigw::ApiGatewayV2httpRequest,
) -> Result<(i64, serde_json::Value)> {
    let store = LocalStore::new(root);
    let index = recon_shared::local_index::LocalTransactionIndex::open_read_only(root)?;
    let resp = query_api::handle(e, &store, &index, &LocalBreakLog::new(root)).await?;
    let body = match resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(&t)?,
        _ => serde_json::Value::Null,
    };
    Ok((resp.status_code, body))
}

#[tokio::test]
async fn through_the_api_a_break_goes_from_open_to_resolved_by_a_person() -> Result<()> {
    let dir = tmp()?;
    let root = dir.path();
    common::world(root, FIRST, 3, 800, 5)?;
    close(root, FIRST, Some(SEEN)).await?;
    let (store, log) = (LocalStore::new(root), LocalBreakLog::new(root));
    let id = work::list(&store, &log, &FactsCache::default(), d(SEEN)?, None)
        .await?
        .into_iter()
        .find(|v| v.facts.mismatch_type == MismatchType::Amount)
        .map(|v| v.facts.break_id)
        .ok_or_else(|| Error::Invariant("no AMOUNT break".into()))?;
    let actions = format!("/breaks/{id}/actions");
    let post = |body: serde_json::Value| event("post-break-action.json", &actions, "", Some(body));

    let (status, body) = call(
        root,
        post(serde_json::json!({
            "business_date": SEEN, "action": "ASSIGN", "owner": "finance-ops"
        }))?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"]["seq"], 1);
    // The actor is the IAM principal of the request, never a field of the body.
    assert_eq!(
        body["event"]["actor"],
        "arn:aws:sts::123456789012:assumed-role/recon-finance/finance-clerk"
    );
    let (status, body) = call(
        root,
        post(serde_json::json!({
            "business_date": SEEN, "action": "COMMENT", "text": "x", "actor": "someone-else"
        }))?,
    )
    .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_action")),
        "{body}"
    );
    let mut anonymous = post(serde_json::json!({
        "business_date": SEEN, "action": "COMMENT", "text": "x"
    }))?;
    anonymous.request_context.authorizer = None;
    assert_eq!(call(root, anonymous).await?.0, 403);

    let resolve = serde_json::json!({
        "business_date": SEEN, "action": "RESOLVE", "reason": "ACCEPTED_VARIANCE",
        "note": "the acquirer's rounding, agreed in the contract"
    });
    let (status, body) = call(root, post(resolve.clone())?).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"]["resolution"]["reason"], "ACCEPTED_VARIANCE");
    let (status, body) = call(root, post(resolve)?).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = call(
        root,
        post(serde_json::json!({
            "business_date": "2026-11-02", "action": "COMMENT", "text": "x"
        }))?,
    )
    .await?;
    assert_eq!(status, 404, "{body}");

    // Its state and history, and the list of the close's breaks resolved by people.
    let (status, body) = call(
        root,
        event(
            "get-break.json",
            &format!("/breaks/{id}"),
            &format!("date={SEEN}"),
            None,
        )?,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["close"]["status"], "RESOLVED_BY_PERSON");
    assert_eq!(body["chain"], "verified");
    let (status, body) = call(
        root,
        event(
            "list-breaks.json",
            "/breaks",
            &format!("date={SEEN}&status=resolved"),
            None,
        )?,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["items"][0]["break_id"], id.as_str());
    assert_eq!(body["items"][0]["owner"], "finance-ops");
    // A POST on a GET route: 405 with the methods it answers.
    let mut wrong = post(serde_json::json!({}))?;
    wrong.raw_path = Some("/breaks".into());
    let store = LocalStore::new(root);
    let index = recon_shared::local_index::LocalTransactionIndex::open_read_only(root)?;
    let resp = query_api::handle(wrong, &store, &index, &log).await?;
    assert_eq!(resp.status_code, 405);
    assert_eq!(
        resp.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    Ok(())
}
