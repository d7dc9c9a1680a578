//! The EMR branch, locally: the step the state machine submits (`spark-submit …
//! reconcile_partition.py …`) run by a local `spark-submit` in `local[2]` mode, with the step's
//! own arguments — the bucket replaced by the data directory, the cluster's `recon` by this
//! one (docs/spark.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use recon_shared::{Error, Result};

/// The job, shipped inside the binary so that `recon run` needs no checkout.
pub const JOB: &str = include_str!("../../infra/emr/reconcile_partition.py");
/// The job's file name, as the step names it.
pub const JOB_FILE: &str = "reconcile_partition.py";

/// `spark-submit` of a local Spark (`scripts/with-spark.sh` installs one): `RECON_SPARK_SUBMIT`.
pub const SPARK_SUBMIT_ENV: &str = "RECON_SPARK_SUBMIT";
/// The `recon` binary the job calls (default: this process's own): `RECON_BIN`.
pub const RECON_BIN_ENV: &str = "RECON_BIN";
/// Match groups instead of the step's `--groups`: `RECON_SPARK_GROUPS`.
pub const SPARK_GROUPS_ENV: &str = "RECON_SPARK_GROUPS";

/// How the local runner reconciles a partition the plan sends to EMR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkRunner {
    /// The `spark-submit` to run.
    pub submit: PathBuf,
    /// The `recon` binary the job calls.
    pub recon: PathBuf,
    /// Spark's master (`local[2]`).
    pub master: String,
    /// Match groups instead of the step's.
    pub groups: Option<u32>,
}

impl SparkRunner {
    /// From the environment ([`SPARK_SUBMIT_ENV`], [`RECON_BIN_ENV`]); `None` without a
    /// `spark-submit`.
    pub fn from_env() -> Result<Option<Self>> {
        let Some(submit) = std::env::var_os(SPARK_SUBMIT_ENV).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let recon = match std::env::var_os(RECON_BIN_ENV).filter(|s| !s.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe().map_err(|e| Error::io("the recon binary", e))?,
        };
        let groups = match std::env::var(SPARK_GROUPS_ENV) {
            Ok(g) if !g.trim().is_empty() => {
                Some(g.trim().parse().ok().filter(|g| *g > 0).ok_or_else(|| {
                    Error::InvalidConfig {
                        name: SPARK_GROUPS_ENV.into(),
                        reason: format!("expected a number of groups from 1, got {g:?}"),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Some(Self {
            submit: PathBuf::from(submit),
            recon,
            master: "local[2]".into(),
            groups,
        }))
    }

    /// Runs the step whose `HadoopJarStep.Args` are `args` over the data directory `data`;
    /// `Ok` when the job reconciled the partition, else the reason (the job's last words).
    pub fn run(&self, args: &[String], data: &Path) -> std::result::Result<(), String> {
        let job_at = args
            .iter()
            .position(|a| a.ends_with(JOB_FILE))
            .filter(|_| args.first().map(String::as_str) == Some("spark-submit"))
            .ok_or_else(|| format!("not a spark-submit of {JOB_FILE}: {args:?}"))?;
        let dir = std::env::temp_dir().join(format!("recon-spark-job-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let job = dir.join(JOB_FILE);
        std::fs::write(&job, JOB).map_err(|e| format!("{}: {e}", job.display()))?;
        let mut job_args: Vec<String> = Vec::new();
        let mut rest = args[job_at + 1..].iter();
        while let Some(a) = rest.next() {
            match a.as_str() {
                "--bucket" => {
                    rest.next();
                    job_args.extend(["--data".into(), data.display().to_string()]);
                }
                "--recon" | "--runs-table" => {
                    rest.next();
                }
                "--groups" => {
                    let step = rest.next().cloned().unwrap_or_default();
                    let groups = self.groups.map_or(step, |g| g.to_string());
                    job_args.extend(["--groups".into(), groups]);
                }
                _ => job_args.push(a.clone()),
            }
        }
        let mut cmd = Command::new(&self.submit);
        cmd.args(["--master", &self.master])
            .args(["--conf", "spark.ui.enabled=false"])
            .arg(&job)
            .arg("--recon")
            .arg(&self.recon)
            .args(&job_args);
        if std::env::var_os("SPARK_LOCAL_IP").is_none() {
            cmd.env("SPARK_LOCAL_IP", "127.0.0.1");
        }
        let out = cmd
            .output()
            .map_err(|e| format!("{}: {e}", self.submit.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The job's own failure line, else the end of what Spark said.
        let reason = stderr
            .lines()
            .rev()
            .find(|l| l.contains("on Spark failed") || l.starts_with("recon spark"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            });
        Err(format!("spark-submit exited with {}: {reason}", out.status))
    }
}
