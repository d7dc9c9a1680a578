//! Outputs are a contract: a generated day run through `recon run` gives exactly the files
//! recorded in `tests/golden/day-20k.json` (every file's sha256, compared as the crash tests
//! compare: timings aside, the TransactionIndex by its items). A refactoring that changes one
//! byte of a Parquet file, a report or an index fails here, naming the files.
//!
//! A change that means to alter outputs re-records the file with `RECON_BLESS=1` and says why
//! in its commit.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{day, diff, state, tmp};
use recon_shared::{Error, Result};

const RECON: &str = env!("CARGO_BIN_EXE_recon");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/day-20k.json");

#[test]
fn a_generated_day_gives_the_recorded_outputs_byte_for_byte() -> Result<()> {
    let dir = tmp()?;
    day(dir.path(), 20_000, 7)?;
    let generated = state(dir.path())?;
    let out = Command::new(RECON)
        .args(["run", "--data"])
        .arg(dir.path())
        .args(["--date", "2026-11-20"])
        .output()
        .map_err(|e| Error::io(RECON, e))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = state(dir.path())?;
    assert!(
        got.len() > generated.len(),
        "the run wrote nothing: {} files before, {} after",
        generated.len(),
        got.len()
    );
    if std::env::var_os("RECON_BLESS").is_some() {
        std::fs::write(GOLDEN, serde_json::to_vec_pretty(&got)?)
            .map_err(|e| Error::io(GOLDEN, e))?;
    }
    let want: BTreeMap<String, String> = serde_json::from_slice(
        &std::fs::read(Path::new(GOLDEN)).map_err(|e| Error::io(GOLDEN, e))?,
    )?;
    let d = diff(&want, &got);
    assert!(
        d.is_empty(),
        "outputs differ from {GOLDEN} (re-record with RECON_BLESS=1 only for an intended change): {d:#?}"
    );
    Ok(())
}
