//! The Lambda entry kit: what every function's `main` does, written once.
//!
//! A function is a type implementing [`Function`] (in its library crate): how it builds its
//! ports at start-up ([`Function::init`]) and how it answers one event ([`Function::handle`]:
//! decode, call the core, encode) and which metrics it prints ([`Function::metrics`]). Its
//! `main` declares the allocator and calls [`serve`] (cargo feature `lambda`), which
//!
//! 1. keeps freed memory with the process ([`crate::allocator::keep_freed_memory`]),
//! 2. starts tracing (Lambda's log level and format controls),
//! 3. reads the [`Settings`] once from the environment and picks the adapters
//!    ([`Backend::from_settings`]),
//! 4. then per event: times the handler, prints its EMF lines, and turns an error into the
//!    Lambda error response with the stable `errorType` of [`Error::error_type`] — the name the
//!    state machine's `Retry`/`Catch` match (`Retryable` is retried; see
//!    `statemachines/daily-close.asl.json`).

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::select::Backend;

/// One Lambda function: its ports, built once per process, and its answer to one event.
pub trait Function: Sized {
    /// The event Lambda hands over (its JSON is this type's serde form).
    type Event: DeserializeOwned;
    /// The answer (serialized as the function's response).
    type Output: Serialize;

    /// Builds the ports from the settings and the adapters they chose (cold start).
    fn init(settings: &Settings, backend: &Backend) -> impl Future<Output = Result<Self>>;

    /// Answers one event.
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Self::Output>>;

    /// The EMF lines of one answer (none unless the function says).
    fn metrics(&self, _output: &Self::Output, _at: &Invocation<'_>) -> Vec<String> {
        Vec::new()
    }
}

/// What the kit knows of one invocation, for [`Function::metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// The `Environment` dimension ([`Settings::environment`]).
    pub environment: &'a str,
    /// How long [`Function::handle`] took.
    pub duration_ms: u64,
    /// When it finished (milliseconds since the epoch; the EMF `Timestamp`).
    pub timestamp_ms: i64,
}

/// An error as the Lambda error response carries it: `errorType` is the stable name of
/// [`Error::error_type`], `errorMessage` says what happened and what to do.
pub fn error_response(e: &Error) -> (&'static str, String) {
    (e.error_type(), e.to_string())
}

/// Answers one event: runs the handler, times it, prints its metrics lines.
pub async fn invoke<F: Function>(f: &F, event: F::Event, environment: &str) -> Result<F::Output> {
    let started = std::time::Instant::now();
    // Boxed: the handlers' futures nest deeply (SDK calls inside retry loops); laid out on
    // their own, the binaries need no raised `recursion_limit`.
    let out = Box::pin(f.handle(event)).await?;
    let at = Invocation {
        environment,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        timestamp_ms: crate::metrics::now_ms(),
    };
    for line in f.metrics(&out, &at) {
        println!("{line}");
    }
    Ok(out)
}

/// What `main` returns.
#[cfg(feature = "lambda")]
pub type Exit = std::result::Result<(), lambda_runtime::Error>;

/// Serves `F` on the Lambda runtime API until the process ends (see the module docs). A
/// start-up error (settings, ports) is logged with its error type and ends the process.
#[cfg(feature = "lambda")]
pub fn serve<F: Function>() -> Exit {
    crate::allocator::keep_freed_memory();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        lambda_runtime::tracing::init_default_subscriber();
        let (function, settings) = match start::<F>().await {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(error_type = e.error_type(), "start-up failed: {e}");
                return Err(e.into());
            }
        };
        let (f, environment) = (&function, settings.environment.as_str());
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<F::Event>| async move {
                invoke(f, event.payload, environment)
                    .await
                    .map_err(|e| diagnostic(&e))
            },
        ))
        .await
    })
}

#[cfg(feature = "lambda")]
async fn start<F: Function>() -> Result<(F, Settings)> {
    let settings = Settings::from_env()?;
    let backend = Backend::from_settings(&settings).await?;
    Ok((Box::pin(F::init(&settings, &backend)).await?, settings))
}

/// The error as the Lambda runtime reports it.
#[cfg(feature = "lambda")]
pub fn diagnostic(e: &Error) -> lambda_runtime::Diagnostic {
    let (error_type, error_message) = error_response(e);
    tracing::error!(error_type, "{error_message}");
    lambda_runtime::Diagnostic {
        error_type: error_type.to_string(),
        error_message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Doubles a number; refuses negative ones; records what its metrics saw.
    struct Doubler {
        seen: RefCell<Vec<(String, i64)>>,
    }

    impl Function for Doubler {
        type Event = i64;
        type Output = i64;

        async fn init(_: &Settings, _: &Backend) -> Result<Self> {
            Ok(Self {
                seen: RefCell::new(Vec::new()),
            })
        }

        async fn handle(&self, n: i64) -> Result<i64> {
            if n < 0 {
                return Err(Error::NotFound {
                    key: format!("landing/{n}"),
                });
            }
            Ok(n * 2)
        }

        fn metrics(&self, out: &i64, at: &Invocation<'_>) -> Vec<String> {
            self.seen
                .borrow_mut()
                .push((at.environment.to_string(), at.timestamp_ms));
            vec![format!("{out}")]
        }
    }

    #[tokio::test]
    async fn an_invocation_answers_and_meters_and_an_error_keeps_its_type() -> Result<()> {
        let settings = Settings::from_lookup(|_| None)?;
        let f = Doubler::init(&settings, &Backend::Local("/nonexistent".into())).await?;
        assert_eq!(invoke(&f, 21, "prod").await?, 42);
        let seen = f.seen.borrow().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "prod");
        assert!(seen[0].1 > 1_700_000_000_000, "a wall-clock timestamp");

        let e = match invoke(&f, -1, "prod").await {
            Err(e) => e,
            Ok(v) => return Err(Error::Invariant(format!("answered {v}"))),
        };
        assert_eq!(f.seen.borrow().len(), 1, "no metrics for a failure");
        let (error_type, message) = error_response(&e);
        assert_eq!(error_type, "InputMissing");
        assert!(message.contains("landing/-1"), "{message}");
        Ok(())
    }

    #[cfg(feature = "lambda")]
    #[test]
    fn the_lambda_error_carries_the_stable_name() {
        let d = diagnostic(&Error::InvalidConfig {
            name: "RECON_RUNS_TABLE".into(),
            reason: "required environment variable is not set".into(),
        });
        assert_eq!(d.error_type, "InvalidConfig");
        assert!(d.error_message.contains("RECON_RUNS_TABLE"));
    }
}
