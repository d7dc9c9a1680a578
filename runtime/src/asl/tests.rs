//! The interpreter on small state machines.

use super::*;

struct Fake;
impl Tasks for Fake {
    fn invoke<'a>(&'a self, resource: &'a str, input: Value) -> BoxFut<'a, Result<Value, Failure>> {
        Box::pin(async move {
            match resource {
                "double" => Ok(json!(input["n"].as_i64().unwrap_or(0) * 2)),
                _ => Err(Failure::new("Boom", format!("{resource} failed"))),
            }
        })
    }
}

#[tokio::test]
async fn paths_parameters_intrinsics_and_map() {
    let def = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"n.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
              "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "double", "End": true}}},
              "ResultPath": "$.doubled", "Next": "F"},
        "F": {"Type": "Pass", "Parameters": {"s.$": "States.Format('{}-{}', $$.Execution.Name, $.doubled[1])",
                                              "a.$": "States.Array('x', $.doubled[0])"}, "End": true}}});
    let ex = Execution::new("close-1", &Fake);
    let out = ex.run(&def, json!({"items": [1, 2, 3]})).await;
    assert_eq!(
        out,
        Outcome::Succeeded(json!({"s": "close-1-4", "a": ["x", 2]}))
    );
}

#[tokio::test]
async fn retry_then_catch_then_choice_and_fail() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "nope",
              "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2, "IntervalSeconds": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "C"}], "End": true},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.error.Error", "StringEquals": "Boom", "Next": "X"}], "Default": "OK"},
        "X": {"Type": "Fail", "Error": "Failed", "CausePath": "$.error.Cause"},
        "OK": {"Type": "Succeed"}}});
    let ex = Execution::new("e", &Fake);
    assert_eq!(
        ex.run(&def, json!({})).await,
        Outcome::Failed(Failure::new("Failed", "nope failed"))
    );
    let events = ex.events.lock().map(|e| e.clone()).unwrap_or_default();
    let retries = events
        .iter()
        .filter(|e| matches!(e, Event::Retried { .. }))
        .count();
    assert_eq!(retries, 2, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Caught { next, .. } if next == "C"))
    );
}

#[tokio::test]
async fn unsupported_states_fail_clearly() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}});
    match Execution::new("e", &Fake).run(&def, json!({})).await {
        Outcome::Failed(f) => assert!(f.cause.contains("not supported"), "{f:?}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A task whose result is `n` bytes of text.
struct Big;
impl Tasks for Big {
    fn invoke<'a>(&'a self, _: &'a str, input: Value) -> BoxFut<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let n = input["n"].as_u64().unwrap_or(0) as usize;
            Ok(json!({"text": "x".repeat(n), "body": r#"{"a": [1, 2]}"#}))
        })
    }
}

#[tokio::test]
async fn a_payload_above_256_kib_fails_the_execution_whatever_catches_it() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "big",
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Succeed"}}});
    // Just below: passes.
    let ex = Execution::new("e", &Big);
    let below = ex.run(&def, json!({"n": PAYLOAD_LIMIT_BYTES - 100})).await;
    assert!(matches!(below, Outcome::Succeeded(_)), "{below:?}");
    // Above: neither retried nor caught, as on AWS.
    let ex = Execution::new("e", &Big);
    let out = ex.run(&def, json!({"n": PAYLOAD_LIMIT_BYTES})).await;
    assert!(
        matches!(&out, Outcome::Failed(f)
            if f.error == "States.DataLimitExceeded" && f.cause.contains("result of `T`")),
        "{out:?}"
    );
    let events = ex.events.lock().map(|e| e.clone()).unwrap_or_default();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Retried { .. } | Event::Caught { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn max_attempts_counts_retries_and_string_to_json_parses() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "nope",
              "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 3, "IntervalSeconds": 0}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "B"}], "End": true},
        "B": {"Type": "Task", "Resource": "big", "Parameters": {"n": 1},
              "ResultSelector": {"parsed.$": "States.StringToJson($.body)"}, "End": true}}});
    let ex = Execution::new("e", &Fake);
    let _ = ex.run(&def, json!({})).await;
    let events = ex.events.lock().map(|e| e.clone()).unwrap_or_default();
    // MaxAttempts 3: the first invocation and three retries.
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Retried { .. }))
            .count(),
        3
    );
    let ex = Execution::new("e", &Big);
    let def = json!({"StartAt": "B", "States": {
        "B": {"Type": "Task", "Resource": "big", "Parameters": {"n": 1},
              "ResultSelector": {"parsed.$": "States.StringToJson($.body)"}, "End": true}}});
    assert_eq!(
        ex.run(&def, json!({})).await,
        Outcome::Succeeded(json!({"parsed": {"a": [1, 2]}}))
    );
}
