//! `recon … | head -2`: the reader goes away, the command must not panic on the broken pipe
//! (it did: exit 101) but finish its work and exit as it would have.

use std::process::{Command, Stdio};

use recon_shared::{Error, Result};

/// Runs `recon args` with its standard output a pipe whose reading end is closed at once, so
/// that every write fails with EPIPE. Returns the exit code and standard error.
fn with_closed_stdout(args: &[&str]) -> Result<(Option<i32>, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recon"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("recon", e))?;
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("recon", e))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn a_closed_pipe_ends_no_command_with_a_panic() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let data = dir.path().join("data");
    let data = data.to_string_lossy();
    let (code, stderr) = with_closed_stdout(&[
        "generate",
        "--out",
        &data,
        "--date",
        "2026-11-20",
        "--transactions",
        "300",
    ])?;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "generate: {stderr}");
    let (code, stderr) = with_closed_stdout(&["run", "--data", &data, "--date", "2026-11-20"])?;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "run: {stderr}");
    // The run went on to its end: the close wrote its summary.
    let runs = dir.path().join("data/runs/2026-11-20");
    assert!(
        std::fs::read_dir(&runs)
            .map_err(|e| Error::io(&runs, e))?
            .next()
            .is_some(),
        "no run summary under {}",
        runs.display()
    );
    Ok(())
}
