//! `events/query-api/*.json`: one API Gateway HTTP API (payload 2.0, IAM-authorized) request
//! per design.md §9 and §12 route. Each survives the `aws_lambda_events` round trip, names its route the
//! way template.yaml declares it, and gets an answer from the handler (here over an empty
//! bucket and index: the route is found, the parameters are valid, nothing is there yet).

use std::collections::BTreeSet;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use query_api::ROUTES;
use recon_shared::local::{LocalBreakLog, LocalStore};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::{Error, Result};
use serde_json::Value;

/// (event, status over an empty bucket and index)
const EVENTS: &[(&str, &str, u16)] = &[
    (
        "get-transaction.json",
        include_str!("../../../events/query-api/get-transaction.json"),
        404,
    ),
    (
        "get-user-transactions.json",
        include_str!("../../../events/query-api/get-user-transactions.json"),
        200,
    ),
    (
        "get-merchant-transactions.json",
        include_str!("../../../events/query-api/get-merchant-transactions.json"),
        200,
    ),
    (
        "get-merchant-kpis.json",
        include_str!("../../../events/query-api/get-merchant-kpis.json"),
        404,
    ),
    (
        "get-mismatches.json",
        include_str!("../../../events/query-api/get-mismatches.json"),
        404,
    ),
    (
        "list-anomalies.json",
        include_str!("../../../events/query-api/list-anomalies.json"),
        404,
    ),
    (
        "get-run.json",
        include_str!("../../../events/query-api/get-run.json"),
        404,
    ),
    (
        "post-break-action.json",
        include_str!("../../../events/query-api/post-break-action.json"),
        404,
    ),
    (
        "get-break.json",
        include_str!("../../../events/query-api/get-break.json"),
        404,
    ),
    (
        "list-breaks.json",
        include_str!("../../../events/query-api/list-breaks.json"),
        404,
    ),
];

#[test]
fn every_route_has_a_sample_event_that_round_trips() -> Result<()> {
    let mut covered = BTreeSet::new();
    for (name, raw, _) in EVENTS {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(raw)?;
        let again: ApiGatewayV2httpRequest = serde_json::from_str(&serde_json::to_string(&event)?)?;
        assert_eq!(event, again, "{name}");
        let route_key = event.route_key.clone().unwrap_or_default();
        let (method, template) = route_key
            .split_once(' ')
            .ok_or_else(|| Error::Invariant(format!("{name}: route key {route_key:?}")))?;
        assert!(
            ROUTES.contains(&(method, template)),
            "{name}: {route_key} is not a route"
        );
        assert_eq!(event.request_context.http.method.as_str(), method, "{name}");
        assert_eq!(event.version.as_deref(), Some("2.0"), "{name}");
        let path = event.raw_path.clone().unwrap_or_default();
        assert_eq!(
            event.request_context.http.path.as_deref(),
            Some(path.as_str())
        );
        // Path parameters are the template's, with the values of the path.
        for (param, value) in &event.path_parameters {
            assert!(
                template.contains(&format!("{{{param}}}")),
                "{name}: {param}"
            );
            assert!(path.contains(value.as_str()), "{name}: {value}");
        }
        // The API authorizes with IAM (template.yaml): the caller is a signed principal.
        let iam = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref());
        if *name != "get-transaction.json" {
            assert!(
                iam.and_then(|i| i.user_arn.as_deref())
                    .is_some_and(|a| a.starts_with("arn:aws:sts::")),
                "{name}: no IAM caller"
            );
        }
        covered.insert((method.to_string(), template.to_string()));
    }
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(covered, routes);
    Ok(())
}

#[tokio::test]
async fn the_handler_answers_every_sample_event() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let store = LocalStore::new(dir.path());
    let index = LocalTransactionIndex::open(dir.path())?;
    for (name, raw, status) in EVENTS {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(raw)?;
        let resp =
            query_api::handle(event, &store, &index, &LocalBreakLog::new(dir.path())).await?;
        let Some(Body::Text(body)) = resp.body else {
            return Err(Error::Invariant(format!("{name}: no body")));
        };
        let body: Value = serde_json::from_str(&body)?;
        assert_eq!(resp.status_code, i64::from(*status), "{name}: {body}");
        assert_ne!(body["error"]["message"], "no such route", "{name}");
        assert_ne!(body["error"]["code"], "internal", "{name}");
    }
    Ok(())
}
