//! Domain core of the payment reconciliation index.
//!
//! Everything a Lambda handler or the local runner needs lives here as plain functions over
//! domain types: ids and money ([`ids`], [`money`]), the canonical records ([`records`]), their
//! Arrow/Parquet form ([`columnar`]), delivery manifests ([`manifest`]) and source mappings
//! ([`source`]). Nothing in this crate talks to AWS.

pub mod columnar;
pub mod error;
pub mod ids;
pub mod manifest;
pub mod money;
pub mod records;
pub mod rules;
pub mod source;

pub use error::{Error, Result};
