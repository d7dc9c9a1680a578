//! The daily close's definition on two interpreters: moto's Step Functions interpreter
//! (`execute_state_machine`, its Lambda tasks answered from a queue: `scripts/sfn_moto.py`)
//! and the local one `recon run` uses, given the same replies. Both enter the same states in the
//! same order and end with the same output, or the same error and cause, Lambda branch
//! included (issue #16, item 5).
//!
//! Needs the moto venv's Python (`RECON_TEST_MOTO_PYTHON`, exported by
//! `scripts/with-moto.sh`); the script starts its own moto server, since the interpreter and the
//! Lambda queue are settings of a whole server.

use std::collections::VecDeque;
use std::sync::Mutex;

use recon_runtime::asl::{BoxFut, Event, Execution, Failure, Outcome, Tasks};
use recon_runtime::close::{DEFINITION, LOCAL_SUBSTITUTIONS, substitute};
use serde_json::{Value, json};

const FUNCTIONS: &str = "plan-partitions,reconcile-partition,final-aggregate";
const EXECUTION: &str = "close-2026-11-20-1";

/// Lambda tasks answered in call order, as moto's queue answers them.
struct Queued(Mutex<VecDeque<Value>>);

impl Tasks for Queued {
    fn invoke<'a>(&'a self, resource: &'a str, _: Value) -> BoxFut<'a, Result<Value, Failure>> {
        Box::pin(async move {
            if !resource.contains(":function:") {
                return Err(Failure::new(
                    "States.Runtime",
                    format!("no reply for {resource}"),
                ));
            }
            self.0
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .ok_or_else(|| Failure::new("States.Runtime", "the reply queue is empty"))
        })
    }
}

/// What an execution did: the states entered, and how it ended.
#[derive(Debug, PartialEq)]
struct Run {
    states: Vec<String>,
    end: Value,
}

fn python() -> Option<String> {
    match std::env::var("RECON_TEST_MOTO_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RECON_TEST_MOTO_PYTHON is not set under CI; run the suite through scripts/with-moto.sh"
            );
            eprintln!(
                "SKIPPED: no moto venv (RECON_TEST_MOTO_PYTHON unset); run through scripts/with-moto.sh"
            );
            None
        }
    }
}

fn on_moto(python: &str, input: &Value, replies: &[Value]) -> Result<Run, String> {
    let subs: serde_json::Map<String, Value> = LOCAL_SUBSTITUTIONS
        .iter()
        .filter(|(k, _)| !k.ends_with("FunctionArn"))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/sfn_moto.py");
    let definition = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../statemachines/daily-close.asl.json"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--definition", definition, "--functions", FUNCTIONS])
        .args(["--name", EXECUTION, "--input", &input.to_string()])
        .args(["--replies", &Value::from(replies.to_vec()).to_string()])
        .args(["--substitutions", &Value::Object(subs).to_string()])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "sfn_moto.py: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let states = v["states"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let end = match v["status"].as_str() {
        Some("SUCCEEDED") => json!({"output": v["output"]}),
        _ => json!({"error": v["error"], "cause": v["cause"]}),
    };
    Ok(Run { states, end })
}

async fn locally(input: &Value, replies: &[Value]) -> Result<Run, String> {
    let definition: Value = serde_json::from_str(&substitute(DEFINITION, LOCAL_SUBSTITUTIONS))
        .map_err(|e| e.to_string())?;
    let tasks = Queued(Mutex::new(replies.iter().cloned().collect()));
    let ex = Execution::new(EXECUTION, &tasks);
    let end = match ex.run(&definition, input.clone()).await {
        Outcome::Succeeded(v) => json!({"output": v}),
        Outcome::Failed(f) => json!({"error": f.error, "cause": f.cause}),
    };
    let states = ex
        .events
        .lock()
        .map(|e| {
            e.iter()
                .filter_map(|e| match e {
                    Event::Entered(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        })
        .map_err(|e| e.to_string())?;
    Ok(Run { states, end })
}

/// A plan of one bank whose two days run on Lambda, their summaries, and the final one.
fn replies(failed_partitions: u32) -> Vec<Value> {
    let partition = |date: &str, previous: Value| {
        json!({"business_date": date, "bank_id": "bank_01", "as_of": "2026-11-20",
               "previous": previous, "awaiting": null})
    };
    vec![
        json!({"business_date": "2026-11-20", "execution": EXECUTION,
               "lambda_chains": [{"bank_id": "bank_01", "partitions": [
                   partition("2026-11-19", Value::Null),
                   partition("2026-11-20", json!({"business_date": "2026-11-19", "fingerprint": "f"}))]}],
               "emr_chains": [], "unchanged": 0, "dates": ["2026-11-19", "2026-11-20"],
               "awaiting": [], "handed_over": 0, "capacity": []}),
        json!({"business_date": "2026-11-19", "bank_id": "bank_01", "status": "SUCCEEDED", "run_id": "run-1"}),
        json!({"business_date": "2026-11-20", "bank_id": "bank_01", "status": "SUCCEEDED", "run_id": "run-2"}),
        json!({"failed_partitions": failed_partitions, "partitions": 2}),
    ]
}

#[tokio::test]
async fn moto_and_the_local_interpreter_run_the_close_alike() -> Result<(), String> {
    let Some(python) = python() else {
        return Ok(());
    };
    let input = json!({"business_date": "2026-11-20"});
    for failed in [0, 1] {
        let replies = replies(failed);
        let moto = on_moto(&python, &input, &replies)?;
        let local = locally(&input, &replies).await?;
        assert_eq!(moto, local, "{failed} failed partitions");
        let last = if failed == 0 {
            "CloseSucceeded"
        } else {
            "PartitionsFailed"
        };
        assert_eq!(local.states.last().map(String::as_str), Some(last));
        assert_eq!(
            local
                .states
                .iter()
                .filter(|s| *s == "ReconcilePartition")
                .count(),
            2
        );
    }
    Ok(())
}
