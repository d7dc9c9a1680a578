//! The `recon` command's logic, as a library so tests drive it in-process.

pub mod accuracy;
pub mod bench;
#[cfg(feature = "aws")]
pub mod ops;
pub mod out;
pub mod serve;

pub use recon_generator as generate;
pub use recon_runtime::{asl, close, run, stream_feed};
