//! Fault injection at the durable steps, for the crash tests (cargo feature `fault-injection`,
//! which `make test` turns on with `--all-features`; release builds leave it out).
//!
//! Every step that records progress calls [`point`] with its name just before it writes.
//! `RECON_FAULT=name` aborts the process at the first call of `name`, `RECON_FAULT=name#k` at
//! its k-th call: an abort runs no destructor and flushes nothing, like a `kill -9` or a Lambda
//! timeout at that instruction. `RECON_FAULT_TRACE=path` appends the name of every point
//! passed to `path`, one per line, so a test learns which points a run reaches and how often.
//! Without the feature, [`point`] is an empty inline function.

/// Environment variable naming the point to crash at (`name` or `name#k`).
pub const FAULT_ENV: &str = "RECON_FAULT";
/// Environment variable naming a file that records every point passed.
pub const TRACE_ENV: &str = "RECON_FAULT_TRACE";

/// Every durable step of `recon run`, by name: the points [`point`] is called with there.
pub const POINTS: &[&str] = &[
    // An object of the bucket written or deleted (quarantine, curated, index, runs, archive).
    "store.put",
    "store.delete",
    // A Manifests, Runs or catalog row written.
    "manifests.put",
    "runs.put",
    "catalog.put",
    // The validator's hand-off: the delivery is recorded, its normalization not yet asked for.
    "validate.handoff",
    // The local TransactionIndex: a log line appended; a compaction's snapshot written, then
    // its generation switched.
    "index.append",
    "index.snapshot",
    "index.switch",
];

/// The durable steps of the Kafka consumer (`recon stream`, not on `recon run`'s path): a
/// batch indexed, its offsets not yet committed (crashed there by `cli/tests/kafka.rs`).
pub const CONSUMER_POINTS: &[&str] = &["stream.commit"];

#[cfg(feature = "fault-injection")]
mod imp {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    struct Plan {
        target: Option<(String, u64)>,
        trace: Option<Mutex<std::fs::File>>,
        hits: Mutex<HashMap<&'static str, u64>>,
    }

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let target = std::env::var(super::FAULT_ENV).ok().map(|v| {
                match v.split_once('#').map(|(n, k)| (n, k.parse::<u64>())) {
                    Some((name, Ok(k))) => (name.to_string(), k.max(1)),
                    _ => (v, 1),
                }
            });
            let trace = std::env::var_os(super::TRACE_ENV).and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
                    .map(Mutex::new)
            });
            Plan {
                target,
                trace,
                hits: Mutex::new(HashMap::new()),
            }
        })
    }

    pub fn point(name: &'static str) {
        let plan = plan();
        if let Some(trace) = &plan.trace
            && let Ok(mut f) = trace.lock()
        {
            let _ = writeln!(f, "{name}");
        }
        let Some((target, k)) = &plan.target else {
            return;
        };
        if target != name {
            return;
        }
        let Ok(mut hits) = plan.hits.lock() else {
            return;
        };
        let n = hits.entry(name).or_default();
        *n += 1;
        if *n == *k {
            eprintln!("recon: injected crash at {name}#{k}");
            std::process::abort();
        }
    }
}

/// A durable step named `name` is about to write (see the module documentation).
#[cfg(feature = "fault-injection")]
pub fn point(name: &'static str) {
    debug_assert!(
        POINTS.contains(&name) || CONSUMER_POINTS.contains(&name),
        "unknown fault point {name}"
    );
    imp::point(name);
}

/// A durable step named `name` is about to write (no-op: built without `fault-injection`).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &'static str) {}
