//! The break routes (design.md §12): act on a break, read its state and history, list a
//! close's breaks. The actor is the caller's principal ([`Request::actor`]), never a field of
//! the body.

use recon_shared::breaks::{Action, Refusal, is_break_id};
use recon_shared::close::breaks::{self as work, BreakRecord, BreakView, FactsCache};
use recon_shared::ports::BreakLog;
use recon_shared::records::ResolveReason;

use super::*;

/// The closes' breaks, decoded once per version of each mismatch object for the life of
/// the process (entries are checked against the object's bytes on every use, so any data
/// directory or bucket may share it).
static FACTS: std::sync::LazyLock<FactsCache> = std::sync::LazyLock::new(FactsCache::default);

/// Longest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(m) => bad("invalid_action", m),
        Refusal::NotFound(m) => not_found(m),
        Refusal::Conflict(m) => ApiError {
            status: 409,
            code: "conflict",
            message: m,
            allow: None,
        },
    }
}

fn break_id(raw: &str) -> std::result::Result<&str, ApiError> {
    if is_break_id(raw) {
        Ok(raw)
    } else {
        Err(bad(
            "invalid_id",
            "break_id must be brk_ and 20 lowercase hex digits",
        ))
    }
}

/// The body of `POST /breaks/{break_id}/actions`: `business_date` (the close whose facts the
/// caller saw), `action` and the members of that action, nothing else.
fn parse_action(body: &[u8]) -> std::result::Result<(BusinessDate, Action), ApiError> {
    if body.len() > MAX_BODY {
        return Err(bad(
            "invalid_body",
            format!("the body is larger than {MAX_BODY} bytes"),
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad("invalid_body", format!("the body is not JSON: {e}")))?;
    let Value::Object(mut m) = v else {
        return Err(bad("invalid_body", "the body must be a JSON object"));
    };
    let date = match m.remove("business_date") {
        Some(Value::String(d)) => BusinessDate::parse(&d)
            .map_err(|_| bad("invalid_date", "`business_date` must be a date YYYY-MM-DD"))?,
        _ => {
            return Err(bad(
                "invalid_date",
                "`business_date` (YYYY-MM-DD, the close whose facts you acted on) is required",
            ));
        }
    };
    let code = m
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(members) = Action::members(&code) else {
        return Err(bad(
            "invalid_action",
            "`action` must be one of ASSIGN, COMMENT, RESOLVE, REOPEN",
        ));
    };
    if let Some(k) = m
        .keys()
        .find(|k| *k != "action" && !members.contains(&k.as_str()))
    {
        let k: String = k.chars().take(32).collect();
        return Err(bad(
            "invalid_action",
            format!(
                "{code} takes {} (not `{k}`)",
                members
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(r) = m.get("reason")
        && !r
            .as_str()
            .is_some_and(|r| ResolveReason::ALL.iter().any(|x| x.as_str() == r))
    {
        return Err(bad(
            "invalid_action",
            "`reason` must be one of WRITE_OFF, MANUAL_MATCH, ACCEPTED_VARIANCE, DUPLICATE_CONFIRMED, OTHER",
        ));
    }
    let action: Action = serde_json::from_value(Value::Object(m))
        .map_err(|e| bad("invalid_action", format!("{code}: {e}")))?;
    Ok((date, action))
}

/// `POST /breaks/{break_id}/actions`: 201 with the event and the break's state after it.
pub(crate) async fn act<S: ObjectStore, L: BreakLog>(
    store: &S,
    log: &L,
    raw_id: &str,
    req: &Request,
) -> Answer {
    let id = break_id(raw_id)?;
    let actor = req
        .actor
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or(ApiError {
            status: 403,
            code: "forbidden",
            message: "the request carries no caller principal (the route is IAM-authorized)".into(),
            allow: None,
        })?;
    let (date, action) = parse_action(&req.body)?;
    let (event, state) = work::act(
        store,
        log,
        &FACTS,
        id,
        date,
        action,
        actor,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| internal(&e))?
    .map_err(refused)?;
    Ok(Response {
        status: 201,
        body: json!({"event": event, "state": state}),
        allow: None,
    })
}

/// `GET /breaks/{break_id}[?date=]`: its state and whole history (checked), and with `date`
/// the break as that close shows it.
pub(crate) async fn show<S: ObjectStore, L: BreakLog>(
    store: &S,
    log: &L,
    raw_id: &str,
    query: &str,
) -> Answer {
    let p = Params::parse(query, &["date"])?;
    let id = break_id(raw_id)?;
    let date = p.date("date")?;
    let record = BreakRecord::read(store, log, &FACTS, id, date)
        .await
        .map_err(|e| internal(&e))?;
    if record.is_empty() {
        return Err(not_found(match date {
            Some(d) => format!("no open break {id} in the close of {d}, and nobody acted on it"),
            None => {
                format!("nobody acted on break {id}; give ?date= to see it as a close shows it")
            }
        }));
    }
    Ok(Response::ok(json!(record)))
}

/// `GET /breaks?date=&bank_id=&status=&owner=&limit=&next=`: the breaks the close of `date`
/// holds open, with what people did about them, by id.
pub(crate) async fn list<S: ObjectStore, L: BreakLog>(store: &S, log: &L, query: &str) -> Answer {
    let p = Params::parse(
        query,
        &["date", "bank_id", "status", "owner", "limit", "next"],
    )?;
    let date = p.required_date("date")?;
    let bank = p
        .get("bank_id")
        .map(|b| BankId::new(b).map_err(|_| bad("invalid_id", "bank_id is not a valid id")))
        .transpose()?;
    let status = p
        .get("status")
        .map(|s| {
            work::status_filter(s)
                .ok_or_else(|| bad("invalid_parameter", "`status` must be open or resolved"))
        })
        .transpose()?;
    let owner = p.get("owner");
    if owner.is_some_and(str::is_empty) {
        return Err(bad("invalid_parameter", "`owner` must not be empty"));
    }
    let limit = p.limit()?;
    let sig = format!(
        "breaks|{date}|{}|{}|{}",
        bank.as_ref().map_or("", |b| b.as_str()),
        status.map_or("", |s| s.as_str()),
        owner.unwrap_or("")
    );
    let offset = p
        .get("next")
        .map(|c| parse_mismatch_cursor(c, &sig))
        .transpose()?
        .unwrap_or(0);
    if !work::closed(store, date).await.map_err(|e| internal(&e))? {
        return Err(not_found(format!("no close for {date}")));
    }
    let rows: Vec<BreakView> = work::list(store, log, &FACTS, date, bank.as_ref())
        .await
        .map_err(|e| internal(&e))?
        .into_iter()
        .filter(|v| status.is_none_or(|s| v.status == s))
        .filter(|v| owner.is_none_or(|o| v.owner.as_deref() == Some(o)))
        .collect();
    let end = offset.saturating_add(limit).min(rows.len());
    let items = rows.get(offset..end).unwrap_or(&[]);
    let next = (end < rows.len()).then(|| mismatch_cursor(&sig, end));
    Ok(Response::ok(json!({
        "count": items.len(),
        "total": rows.len(),
        "items": items,
        "next": next,
    })))
}
