//! The local runtime: what AWS does around the handlers, done in-process on a directory that
//! plays the bucket.

pub mod asl;
pub mod close;
pub mod run;
pub mod stream_feed;
