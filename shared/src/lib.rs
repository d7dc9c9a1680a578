//! Domain core of the payment reconciliation index.
//!
//! Everything a Lambda handler or the local runner needs lives here as plain functions over
//! domain types: ids and money ([`ids`], [`money`]), the canonical records ([`records`]), their
//! Arrow/Parquet form ([`columnar`]), delivery manifests ([`manifest`]), source mappings
//! ([`source`]) and the readers of the MT940 and camt.053 statement formats ([`formats`]).
//! Nothing in this crate talks to AWS but the adapters of [`aws`] (cargo feature `aws`);
//! [`select`] picks the local or the AWS adapters from the environment.

// Every public item is documented.
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;

/// The allocator of the binaries and its settings. Each binary (the CLI and every Lambda
/// function) declares it, the library does not:
/// `#[global_allocator] static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;`
/// The pipeline makes many small allocations (ids, records, JSON), which mimalloc serves faster
/// than the system allocator, and it reuses freed memory instead of faulting fresh pages in.
/// [`keep_freed_memory`](allocator::keep_freed_memory) is applied first thing in every `main`.
pub mod allocator {
    /// mimalloc (feature `mimalloc`, on for the whole workspace), for the binaries'
    /// `#[global_allocator]`.
    #[cfg(feature = "mimalloc")]
    pub use mimalloc::MiMalloc;

    /// `mi_option_purge_delay` of mimalloc v3 (the -sys crate does not name this option; a
    /// test checks the index against its documented default).
    #[cfg(feature = "mimalloc")]
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// Freed memory stays with the process for reuse instead of going back to the OS a second
    /// later (mimalloc's default). The functions and the CLI work in waves of large buffers
    /// (Parquet columns, batches of records, index snapshots); giving their pages back and
    /// faulting zeroed ones in for the next wave took 4–5 s of a 1M-day `recon run` on this
    /// machine (210 000 page faults, 2 200 without). A Lambda's memory is reserved for it
    /// anyway; the process's peak is unchanged, only no longer returned.
    pub fn keep_freed_memory() {
        #[cfg(feature = "mimalloc")]
        #[allow(unsafe_code)]
        // SAFETY: `mi_option_set` only stores an integer in mimalloc's option table. It is not
        // synchronized, so it is called at the start of `main`, before any thread is spawned.
        unsafe {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }

    /// mimalloc's purge delay in milliseconds (-1: never purge).
    #[cfg(feature = "mimalloc")]
    pub fn purge_delay_ms() -> std::ffi::c_long {
        #[allow(unsafe_code)]
        // SAFETY: reads an integer from mimalloc's option table.
        unsafe {
            libmimalloc_sys::mi_option_get(PURGE_DELAY)
        }
    }

    #[cfg(all(test, feature = "mimalloc"))]
    mod tests {
        #[test]
        fn purge_delay_is_the_option_set() {
            // mimalloc v3 documents a default purge delay of 1000 ms: the index names it.
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(super::purge_delay_ms(), 1000);
            }
            super::keep_freed_memory();
            assert_eq!(super::purge_delay_ms(), -1);
        }
    }
}
pub mod analytics;
pub mod breaks;
pub mod calendar;
pub mod close;
pub mod columnar;
pub mod config;
pub mod config_files;
pub mod entry;
pub mod error;
pub mod exact_json;
pub mod fault;
pub mod formats;
pub mod ids;
pub mod index_item;
pub mod ingest;
pub mod keys;
pub mod local;
pub mod local_index;
pub mod manifest;
pub mod metrics;
pub mod money;
pub mod percent;
pub mod pii;
pub mod ports;
pub mod reconcile;
pub mod records;
pub mod reject;
pub mod report;
pub mod rules;
pub mod select;
pub mod source;
pub mod stream;

pub use error::{Error, Result};
