//! The local runtime: what AWS does around the handlers, done in-process on a directory that
//! plays the bucket — the S3 events of the deliveries ([`ingest`]), the MSK batches of the
//! topics ([`stream_feed`]; from a real broker with the `kafka` feature), Step Functions
//! running the daily close ([`asl`], [`close`]), and `recon run`'s pipeline over them
//! ([`run`]).

pub mod asl;
pub mod close;
pub mod ingest;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod local;
pub mod run;
pub mod spark;
pub mod stream_feed;
