//! The `recon` command's logic, as a library so tests drive it in-process.

pub mod bench;
pub mod generate;
pub mod run;
