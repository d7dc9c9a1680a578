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
