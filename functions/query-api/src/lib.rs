//! `query-api`: the HTTP API of design.md §9 (API Gateway HTTP API, payload v2).
//!
//! [`route`] is the whole API as a pure function of a request and the ports (the bucket and the
//! TransactionIndex), so the Lambda handler, `recon serve` and tests share it. Bodies are JSON,
//! amounts decimal strings; client errors are `{"error": {"code", "message"}}` with 400 or 404,
//! and a message never repeats a user token or raw id back. Users appear as tokens only.

use std::collections::BTreeSet;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::CONTENT_TYPE;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use recon_shared::close::{FinalRow, KpiRow};
use recon_shared::columnar::read_parquet;
use recon_shared::config::Settings;
use recon_shared::entry::Function;
use recon_shared::ids::{BankId, BusinessDate, MerchantId, TransactionId};
use recon_shared::index_item::SettlementDetail;
use recon_shared::keys;
use recon_shared::pii::is_token;
use recon_shared::ports::{BreakLog, Gsi, IndexQuery, ObjectStore, TransactionIndex};
use recon_shared::reconcile::IndexRow;
use recon_shared::records::MismatchType;
use recon_shared::select::{AnyBreakLog, AnyIndex, AnyStore, Backend, IndexMode};
use recon_shared::stream::{IndexItem, Settlement};
use recon_shared::{Error, Result};
use serde_json::{Value, json};

/// Every route of the API: method and path template, as `docs/openapi.yaml` lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/transactions/{transaction_id}"),
    ("GET", "/users/{user_token}/transactions"),
    ("GET", "/merchants/{merchant_id}/transactions"),
    ("GET", "/merchants/{merchant_id}/kpis"),
    ("GET", "/mismatches"),
    ("GET", "/anomalies"),
    ("GET", "/runs/{business_date}"),
    ("POST", "/breaks/{break_id}/actions"),
    ("GET", "/breaks/{break_id}"),
    ("GET", "/breaks"),
];

mod breaks;
pub use breaks::MAX_BODY;

/// Items per page when `limit` is not given, and the largest `limit` accepted.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// A request as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string, still percent-encoded.
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// The body (empty for a GET).
    pub body: Vec<u8>,
    /// The caller's principal: the IAM identity API Gateway authorized on AWS, the person
    /// running `recon serve` locally. Never read from the request's own fields.
    pub actor: Option<String>,
}

impl Request {
    pub fn get(path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            body: Vec::new(),
            actor: None,
        }
    }

    /// A POST of a JSON body by `actor`.
    pub fn post(path: &str, body: &Value, actor: &str) -> Self {
        Self {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            body: body.to_string().into_bytes(),
            actor: Some(actor.into()),
        }
    }
}

/// A JSON response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
    /// The `Allow` header of a 405: the methods the route answers.
    pub allow: Option<&'static str>,
}

impl Response {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            allow: None,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// A client error: status, stable code, a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
}

type Answer = std::result::Result<Response, ApiError>;

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        code,
        message: message.into(),
        allow: None,
    }
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 404,
        code: "not_found",
        message: message.into(),
        allow: None,
    }
}

fn internal(e: &Error) -> ApiError {
    tracing::error!(error = %e, "query failed");
    ApiError {
        status: 500,
        code: "internal",
        message: "internal error".into(),
        allow: None,
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        Response {
            status: e.status,
            body: json!({"error": {"code": e.code, "message": e.message}}),
            allow: e.allow,
        }
    }
}

/// Percent-decoding (`+` is a space in query strings).
fn decode_component(s: &str, plus_is_space: bool) -> Option<String> {
    recon_shared::percent::decode(s, plus_is_space).ok()
}

/// Query parameters, each at most once and among `allowed`.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str, allowed: &[&str]) -> std::result::Result<Self, ApiError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_component(k, true).ok_or_else(|| {
                bad(
                    "invalid_parameter",
                    "the query string is not valid percent-encoded UTF-8",
                )
            })?;
            let v = decode_component(v, true).ok_or_else(|| {
                bad(
                    "invalid_parameter",
                    "the query string is not valid percent-encoded UTF-8",
                )
            })?;
            if !allowed.contains(&k.as_str()) {
                let name: String = k.chars().take(32).collect();
                return Err(bad(
                    "invalid_parameter",
                    format!(
                        "unknown parameter `{name}` (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
            if out.iter().any(|(x, _)| *x == k) {
                return Err(bad(
                    "invalid_parameter",
                    format!("parameter `{k}` is given more than once"),
                ));
            }
            out.push((k, v));
        }
        Ok(Self(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn date(&self, name: &str) -> std::result::Result<Option<BusinessDate>, ApiError> {
        self.get(name)
            .map(|v| {
                BusinessDate::parse(v).map_err(|_| {
                    bad(
                        "invalid_date",
                        format!("`{name}` must be a date YYYY-MM-DD"),
                    )
                })
            })
            .transpose()
    }

    fn required_date(&self, name: &str) -> std::result::Result<BusinessDate, ApiError> {
        self.date(name)?
            .ok_or_else(|| bad("invalid_date", format!("`{name}` (YYYY-MM-DD) is required")))
    }

    fn limit(&self) -> std::result::Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => Some(v)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad(
                        "invalid_limit",
                        format!("`limit` must be a whole number within 1..={MAX_LIMIT}"),
                    )
                }),
        }
    }
}

fn merchant_id(raw: &str) -> std::result::Result<MerchantId, ApiError> {
    MerchantId::new(raw).map_err(|_| bad("invalid_id", "merchant_id is not a valid id"))
}

/// The view of an index item a client gets.
pub fn item_view(item: &IndexItem) -> Option<Value> {
    let t = item.txn.as_ref()?;
    let d = item.derived.as_ref();
    let s = item.settlement.as_ref();
    let version = item.version();
    Some(json!({
        "transaction_id": item.transaction_id,
        "merchant_id": t.merchant_id,
        "user_token": t.user_token,
        "amount": t.amount.to_string(),
        "currency": t.currency,
        "status": t.status,
        "event_time": t.event_time,
        "txn_day": t.txn_day,
        "payment_method": t.payment_method,
        "original_transaction_id": t.original_transaction_id,
        "merchant": d.and_then(|d| d.merchant.as_ref()),
        "fraud": item.signal.as_ref().map(|f| json!({
            "fraud_signal_id": f.fraud_signal_id,
            "fraud_score": f.fraud_score.to_string(),
            "model_version": f.model_version,
            "inference_time": f.inference_time,
            "reason_code": f.reason_code,
        })),
        "risk_label": d.map(|d| d.risk_label),
        "policy_flags": d.map(|d| d.policy_flags.clone()).unwrap_or_default(),
        "settlement_status": s.map(|s| s.settlement_status),
        "reconciled_status": s.map(|s| s.reconciled_status),
        "mismatch_type": s.map(|s| s.mismatch_type),
        "discrepancy": s.and_then(|s| s.discrepancy).map(|d| d.to_string()),
        "statement_currency": s.map(|s| s.statement_currency),
        "reconciliation_timestamp": s.map(|s| s.reconciliation_timestamp),
        "settlement": s.map(|s| detail_view(&s.detail)),
        "version": {
            "transaction": version.transaction.map(|v| v.to_string()),
            "signal": version.signal.map(|v| v.to_string()),
        },
    }))
}

/// The view of a payment the stream never carried (known from the ledger only), from its row
/// of the final index: the fields [`item_view`] has where the final index keeps them, the
/// others null (`event_time`, `txn_day`, `payment_method`, `merchant`, `fraud`, `version`),
/// and `answered_from` saying where it came from.
pub fn final_view(r: &FinalRow, business_date: BusinessDate) -> Value {
    json!({
        "transaction_id": r.transaction_id,
        "merchant_id": r.merchant_id,
        "user_token": r.user_token,
        "amount": r.amount.to_string(),
        "currency": r.currency,
        "status": r.status,
        "event_time": null,
        "txn_day": null,
        "payment_method": null,
        "original_transaction_id": null,
        "merchant": null,
        "fraud": null,
        "risk_label": r.risk_label,
        "policy_flags": r.policy_flags,
        "settlement_status": r.settlement_status,
        "reconciled_status": r.reconciled_status,
        "mismatch_type": r.mismatch_type,
        "discrepancy": r.discrepancy.map(|d| d.to_string()),
        "statement_currency": r.statement_currency,
        "reconciliation_timestamp": r.reconciliation_timestamp,
        "settlement": detail_view(&r.detail),
        "version": {"transaction": null, "signal": null},
        "answered_from": "final_index",
        "business_date": business_date,
    })
}

/// How the close settled a payment and its break (design.md §11), every key present (null
/// when it does not apply).
fn detail_view(d: &SettlementDetail) -> Value {
    json!({
        "settled_on": d.settled_on,
        "statement_ids": d.statement_ids,
        "match_rule": d.match_rule,
        "confidence": d.confidence.map(|c| c.to_string()),
        "break_id": d.break_id,
        "first_seen": d.first_seen,
        "age_days": d.age_days,
        "resolved_on": d.resolved_on,
        "break_status": d.break_status,
    })
}

/// A payment's row in the final index of its date (the settlement names it; an older one
/// only its close's timestamp, and the close's date is then the payment's), if there is one.
async fn final_row<S: ObjectStore>(
    store: &S,
    id: &TransactionId,
    settlement: &Settlement,
) -> std::result::Result<Option<Value>, ApiError> {
    let date = match settlement.business_date {
        Some(d) => d,
        None => {
            match recon_shared::close::aggregate::close_date(settlement.reconciliation_timestamp) {
                Ok(d) => d,
                Err(_) => return Ok(None),
            }
        }
    };
    let Some(b) = get_opt(store, &recon_shared::keys::final_key(date)).await? else {
        return Ok(None);
    };
    let rows: Vec<FinalRow> = read_parquet(b).map_err(|e| internal(&e))?;
    Ok(rows
        .iter()
        .find(|r| r.transaction_id == *id)
        .map(|r| final_view(r, date)))
}

/// A transaction from the TransactionIndex; one the stream never carried but the close settled
/// (its item holds the written-back settlement only) from the final index of that close.
async fn transaction<S: ObjectStore, I: TransactionIndex>(
    store: &S,
    index: &I,
    raw_id: &str,
) -> Answer {
    let id = TransactionId::new(raw_id)
        .map_err(|_| bad("invalid_id", "transaction_id is not a valid id"))?;
    let item = index.get(&id).await.map_err(|e| internal(&e))?;
    if let Some(view) = item.as_ref().and_then(item_view) {
        return Ok(Response::ok(view));
    }
    if let Some(s) = item.as_ref().and_then(|i| i.settlement.as_ref())
        && let Some(view) = final_row(store, &id, s).await?
    {
        return Ok(Response::ok(view));
    }
    Err(not_found(format!("no transaction {id}")))
}

async fn page<I: TransactionIndex>(index: &I, q: IndexQuery) -> Answer {
    let page = index.query(&q).await.map_err(|e| match e {
        Error::InvalidId { kind: "cursor", .. } => {
            bad("invalid_cursor", "`next` is not a cursor of this query")
        }
        e => internal(&e),
    })?;
    let items: Vec<Value> = page.items.iter().filter_map(item_view).collect();
    Ok(Response::ok(
        json!({"count": items.len(), "items": items, "next": page.next}),
    ))
}

async fn user_transactions<I: TransactionIndex>(index: &I, token: &str, query: &str) -> Answer {
    let p = Params::parse(query, &["from", "to", "limit", "next"])?;
    if !is_token(token) {
        return Err(bad(
            "invalid_id",
            "user_token must be a user token (`utk_` and 32 hex digits); raw user ids are not accepted",
        ));
    }
    let (from, to) = (p.date("from")?, p.date("to")?);
    let limit = p.limit()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        // An empty range: nothing in it, and no page of it has a `next`.
        if p.get("next").is_some() {
            return Err(bad(
                "invalid_cursor",
                "`next` is not a cursor of this query",
            ));
        }
        return Ok(Response::ok(json!({"count": 0, "items": [], "next": null})));
    }
    page(
        index,
        IndexQuery {
            gsi: Gsi::ByUser,
            key: token.to_string(),
            from,
            to,
            limit,
            cursor: p.get("next").map(str::to_string),
        },
    )
    .await
}

async fn merchant_transactions<I: TransactionIndex>(
    index: &I,
    merchant: &str,
    query: &str,
) -> Answer {
    let p = Params::parse(query, &["date", "limit", "next"])?;
    let m = merchant_id(merchant)?;
    let date = p.required_date("date")?;
    page(
        index,
        IndexQuery {
            gsi: Gsi::ByMerchant,
            key: m.to_string(),
            from: Some(date),
            to: Some(date),
            limit: p.limit()?,
            cursor: p.get("next").map(str::to_string),
        },
    )
    .await
}

async fn get_opt<S: ObjectStore>(
    store: &S,
    key: &str,
) -> std::result::Result<Option<bytes::Bytes>, ApiError> {
    match store.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(internal(&e)),
    }
}

async fn merchant_kpis<S: ObjectStore, I: TransactionIndex>(
    store: &S,
    index: &I,
    merchant: &str,
    query: &str,
) -> Answer {
    let p = Params::parse(query, &["date"])?;
    let m = merchant_id(merchant)?;
    let date = p.required_date("date")?;
    let close: Option<Vec<KpiRow>> =
        match get_opt(store, &recon_shared::keys::kpis_key(date)).await? {
            Some(b) => Some(
                read_parquet::<KpiRow>(b)
                    .map_err(|e| internal(&e))?
                    .into_iter()
                    .filter(|k| k.merchant_id == m)
                    .collect(),
            ),
            None => None,
        };
    let totals = index
        .merchant_day(&m, date)
        .await
        .map_err(|e| internal(&e))?;
    let close = close.filter(|c| !c.is_empty());
    if close.is_none() && totals.is_none() {
        return Err(not_found(format!("no KPIs for merchant {m} on {date}")));
    }
    Ok(Response::ok(json!({
        "merchant_id": m,
        "date": date,
        "close": close,
        "running_totals": totals,
    })))
}

/// Position in the filtered mismatch rows, bound to the query it came from.
fn mismatch_cursor(sig: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{sig}\0{offset}"))
}

fn parse_mismatch_cursor(cursor: &str, sig: &str) -> std::result::Result<usize, ApiError> {
    let err = || bad("invalid_cursor", "`next` is not a cursor of this query");
    let text = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(err)?;
    let (s, o) = text.rsplit_once('\0').ok_or_else(err)?;
    if s != sig {
        return Err(err());
    }
    o.parse().map_err(|_| err())
}

async fn mismatches<S: ObjectStore>(store: &S, query: &str) -> Answer {
    let p = Params::parse(query, &["date", "bank_id", "type", "limit", "next"])?;
    let date = p.required_date("date")?;
    let bank = p
        .get("bank_id")
        .map(|b| BankId::new(b).map_err(|_| bad("invalid_id", "bank_id is not a valid id")))
        .transpose()?;
    let kind = exact_code(&p, "type", MismatchType::ALL, MismatchType::as_str)?;
    let limit = p.limit()?;
    let sig = format!(
        "mismatches|{date}|{}|{}",
        bank.as_ref().map_or("", |b| b.as_str()),
        kind.map_or("", |k| k.as_str())
    );
    let offset = p
        .get("next")
        .map(|c| parse_mismatch_cursor(c, &sig))
        .transpose()?
        .unwrap_or(0);
    let prefix = keys::mismatches_prefix(date, bank.as_ref());
    let objects = store.list(&prefix).await.map_err(|e| internal(&e))?;
    if objects.is_empty() {
        let closed = recon_shared::close::breaks::closed(store, date)
            .await
            .map_err(|e| internal(&e))?;
        if !closed {
            return Err(not_found(format!("no close for {date}")));
        }
        if let Some(b) = &bank {
            return Err(not_found(format!("no close of {b} for {date}")));
        }
    }
    let mut rows: Vec<IndexRow> = Vec::new();
    for o in objects.iter().filter(|o| o.key.ends_with(".parquet")) {
        let b = store.get(&o.key).await.map_err(|e| internal(&e))?;
        rows.extend(
            read_parquet::<IndexRow>(b)
                .map_err(|e| internal(&e))?
                .into_iter()
                .filter(|r| kind.is_none_or(|k| r.mismatch_type == k)),
        );
    }
    let end = offset.saturating_add(limit).min(rows.len());
    let items: &[IndexRow] = rows.get(offset..end).unwrap_or(&[]);
    let next = (end < rows.len()).then(|| mismatch_cursor(&sig, end));
    Ok(Response::ok(json!({
        "count": items.len(),
        "total": rows.len(),
        "items": items,
        "next": next,
    })))
}

/// A code of `all` written exactly as the index writes it (no other case, no spaces).
fn exact_code<T: Copy>(
    p: &Params,
    name: &str,
    all: &[T],
    code: fn(T) -> &'static str,
) -> std::result::Result<Option<T>, ApiError> {
    p.get(name)
        .map(|v| {
            all.iter().copied().find(|x| code(*x) == v).ok_or_else(|| {
                let codes: Vec<&str> = all.iter().map(|x| code(*x)).collect();
                bad(
                    "invalid_parameter",
                    format!("`{name}` must be one of {}", codes.join(", ")),
                )
            })
        })
        .transpose()
}

/// The anomaly flags of a close (design.md §14), strongest first.
async fn anomalies<S: ObjectStore>(store: &S, query: &str) -> Answer {
    use recon_shared::records::{AnomalyKind, SubjectLevel};
    use recon_shared::report::Flag;
    let p = Params::parse(query, &["date", "level", "kind"])?;
    let date = p.required_date("date")?;
    let level = exact_code(&p, "level", SubjectLevel::ALL, SubjectLevel::as_str)?;
    let kind = exact_code(&p, "kind", AnomalyKind::ALL, AnomalyKind::as_str)?;
    let Some(bytes) = recon_shared::ports::get_opt(store, &keys::anomalies_key(date))
        .await
        .map_err(|e| internal(&e))?
    else {
        return Err(not_found(format!(
            "no anomaly flags for {date}: no close wrote them"
        )));
    };
    let rows: Vec<Flag> = read_parquet::<Flag>(bytes)
        .map_err(|e| internal(&e))?
        .into_iter()
        .filter(|r| level.is_none_or(|l| r.level == l) && kind.is_none_or(|k| r.kind == k))
        .collect();
    Ok(Response::ok(json!({
        "business_date": date,
        "count": rows.len(),
        "items": rows,
    })))
}

async fn runs<S: ObjectStore>(store: &S, raw_date: &str) -> Answer {
    let date = BusinessDate::parse(raw_date)
        .map_err(|_| bad("invalid_date", "business_date must be a date YYYY-MM-DD"))?;
    let objects = store
        .list(&keys::runs_prefix(date))
        .await
        .map_err(|e| internal(&e))?;
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| o.key.ends_with(".json")) {
        let b = store.get(&o.key).await.map_err(|e| internal(&e))?;
        let v: Value = serde_json::from_slice(&b).map_err(|e| internal(&e.into()))?;
        out.push(v);
    }
    if out.is_empty() {
        return Err(not_found(format!("no run for {date}")));
    }
    Ok(Response::ok(json!({"business_date": date, "runs": out})))
}

/// The route template a path matches, and its path parameters (still encoded).
fn match_route(path: &str) -> Option<(&'static str, Vec<&str>)> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let route = match segs.as_slice() {
        ["transactions", id] => ("/transactions/{transaction_id}", vec![*id]),
        ["users", u, "transactions"] => ("/users/{user_token}/transactions", vec![*u]),
        ["merchants", m, "transactions"] => ("/merchants/{merchant_id}/transactions", vec![*m]),
        ["merchants", m, "kpis"] => ("/merchants/{merchant_id}/kpis", vec![*m]),
        ["mismatches"] => ("/mismatches", vec![]),
        ["anomalies"] => ("/anomalies", vec![]),
        ["runs", d] => ("/runs/{business_date}", vec![*d]),
        ["breaks", b, "actions"] => ("/breaks/{break_id}/actions", vec![*b]),
        ["breaks", b] => ("/breaks/{break_id}", vec![*b]),
        ["breaks"] => ("/breaks", vec![]),
        _ => return None,
    };
    Some(route)
}

/// The method a route answers.
fn method_of(template: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(_, t)| *t == template)
        .map_or("GET", |(m, _)| m)
}

/// The API.
pub async fn route<S: ObjectStore, I: TransactionIndex, L: BreakLog>(
    req: &Request,
    store: &S,
    index: &I,
    breaks: &L,
) -> Response {
    let answer = async {
        let (template, raw_params) =
            match_route(&req.path).ok_or_else(|| not_found("no such route"))?;
        let method = method_of(template);
        if !req.method.eq_ignore_ascii_case(method) {
            return Err(ApiError {
                status: 405,
                code: "method_not_allowed",
                message: format!("{template} only answers {method}"),
                allow: Some(method),
            });
        }
        let params = raw_params
            .iter()
            .map(|p| decode_component(p, false))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| bad("invalid_id", "a path parameter is not valid UTF-8"))?;
        let first = params.first().map_or("", String::as_str);
        let q = req.query.as_str();
        match template {
            "/transactions/{transaction_id}" => {
                Params::parse(q, &[])?;
                transaction(store, index, first).await
            }
            "/users/{user_token}/transactions" => user_transactions(index, first, q).await,
            "/merchants/{merchant_id}/transactions" => merchant_transactions(index, first, q).await,
            "/merchants/{merchant_id}/kpis" => merchant_kpis(store, index, first, q).await,
            "/mismatches" => mismatches(store, q).await,
            "/anomalies" => anomalies(store, q).await,
            "/runs/{business_date}" => {
                Params::parse(q, &[])?;
                runs(store, first).await
            }
            "/breaks/{break_id}/actions" => {
                Params::parse(q, &[])?;
                breaks::act(store, breaks, first, req).await
            }
            "/breaks/{break_id}" => breaks::show(store, breaks, first, q).await,
            "/breaks" => breaks::list(store, breaks, q).await,
            _ => Err(not_found("no such route")),
        }
    }
    .await;
    answer.unwrap_or_else(Response::from)
}

/// The caller's IAM principal as API Gateway authorized it (payload 2.0, IAM authorizer).
pub fn principal(event: &ApiGatewayV2httpRequest) -> Option<String> {
    let iam = event.request_context.authorizer.as_ref()?.iam.as_ref()?;
    iam.user_arn.clone().or_else(|| iam.caller_id.clone())
}

/// The Lambda handler: API Gateway HTTP API (payload 2.0) in and out.
pub async fn handle<S: ObjectStore, I: TransactionIndex, L: BreakLog>(
    event: ApiGatewayV2httpRequest,
    store: &S,
    index: &I,
    breaks: &L,
) -> Result<ApiGatewayV2httpResponse> {
    let actor = principal(&event);
    let body = match &event.body {
        Some(b) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .unwrap_or_default(),
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let req = Request {
        method: event.request_context.http.method.as_str().to_string(),
        path: event
            .raw_path
            .or(event.request_context.http.path)
            .unwrap_or_default(),
        query: event.raw_query_string.unwrap_or_default(),
        body,
        actor,
    };
    let resp = route(&req, store, index, breaks).await;
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(resp.status);
    out.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = resp.allow {
        out.headers.insert(
            aws_lambda_events::http::header::ALLOW,
            HeaderValue::from_static(allow),
        );
    }
    out.body = Some(Body::Text(serde_json::to_string(&resp.body)?));
    Ok(out)
}

/// The (method, path) pairs `docs/openapi.yaml` declares under `paths:`.
pub fn openapi_routes(doc: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 2 && t.starts_with('/') && t.ends_with(':') {
            path = Some(t.trim_end_matches(':').trim_matches('\'').to_string());
        } else if indent == 4 && t.ends_with(':') {
            let m = t.trim_end_matches(':');
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&m)
                && let Some(p) = &path
            {
                out.insert((m.to_ascii_uppercase(), p.clone()));
            }
        }
    }
    out
}

/// The Lambda (served by `recon_shared::entry`): API Gateway requests over the bucket and the
/// TransactionIndex, opened read-only (locally it follows the indexer's writes).
pub struct Lambda(AnyStore, AnyIndex, AnyBreakLog);

impl Function for Lambda {
    type Event = ApiGatewayV2httpRequest;
    type Output = ApiGatewayV2httpResponse;

    async fn init(_: &Settings, backend: &Backend) -> Result<Self> {
        Ok(Self(
            backend.store()?,
            backend.index(IndexMode::ReadOnly)?,
            backend.break_log()?,
        ))
    }

    async fn handle(&self, event: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse> {
        handle(event, &self.0, &self.1, &self.2).await
    }
}
