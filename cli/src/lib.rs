//! The `recon` command's logic, as a library so tests drive it in-process.

pub mod accuracy;
pub mod asl;
pub mod bench;
pub mod close;
pub mod generate;
#[cfg(feature = "aws")]
pub mod ops;
pub mod out;
pub mod run;
pub mod serve;
pub mod stream_feed;
