//! Domain core of the payment reconciliation index.
//!
//! Everything a Lambda handler or the local runner needs lives here as plain functions over
//! domain types: ids and money ([`ids`], [`money`]), the canonical records ([`records`]), their
//! Arrow/Parquet form ([`columnar`]), delivery manifests ([`manifest`]), source mappings
//! ([`source`]) and the readers of the MT940 and camt.053 statement formats ([`formats`]).
//! Nothing in this crate talks to AWS but the adapters of [`aws`] (cargo feature `aws`);
//! [`select`] picks the local or the AWS adapters from the environment.

#[cfg(feature = "aws")]
pub mod aws;

/// The allocator of every binary that links this crate with the `mimalloc` feature (the
/// workspace turns it on, so the CLI and all Lambda functions): the pipeline makes many small
/// allocations (ids, records, JSON), which mimalloc serves faster than the system allocator,
/// and it reuses freed memory instead of faulting fresh pages in.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub mod close;
pub mod columnar;
pub mod config;
pub mod error;
pub mod formats;
pub mod ids;
pub mod ingest;
pub mod local;
pub mod local_index;
pub mod manifest;
pub mod metrics;
pub mod money;
pub mod pii;
pub mod ports;
pub mod reconcile;
pub mod records;
pub mod rules;
pub mod select;
pub mod source;
pub mod stream;

pub use error::{Error, Result};
