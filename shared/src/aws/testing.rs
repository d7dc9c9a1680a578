//! Support for the tests that run the AWS adapters against a moto server on 127.0.0.1
//! (`scripts/with-moto.sh`, which `make test` and `.ci/run` always use).

use std::sync::atomic::{AtomicU32, Ordering};

use super::{AwsSettings, sdk_config};

/// Where the moto server answers (`http://127.0.0.1:{port}`); set by `scripts/with-moto.sh`.
pub const MOTO_ENDPOINT_ENV: &str = "RECON_TEST_MOTO_ENDPOINT";

/// The SDK configuration for the moto server, or `None` when no server was started: the
/// test is then skipped with a loud message — except under CI (`CI` set), where a missing
/// server fails the test, so the suite can never pass without running these tests.
pub async fn moto(test: &str) -> Option<aws_config::SdkConfig> {
    match std::env::var(MOTO_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.is_empty() => {
            Some(sdk_config(&AwsSettings::local(&endpoint)).await)
        }
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {MOTO_ENDPOINT_ENV} is not set under CI; run the suite through scripts/with-moto.sh"
            );
            eprintln!(
                "SKIPPED {test}: no moto server ({MOTO_ENDPOINT_ENV} unset). \
                 Run `scripts/with-moto.sh cargo nextest run --workspace --all-features` (or `make test`)."
            );
            None
        }
    }
}

/// A name no other test of this run uses: `{prefix}-{pid}-{n}-{nanos}`, lowercase (a valid
/// bucket, table, database or state machine name).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .to_ascii_lowercase()
}

/// The Python of the moto venv; set by `scripts/with-moto.sh`.
pub const MOTO_PYTHON_ENV: &str = "RECON_TEST_MOTO_PYTHON";

/// A moto server of one test's own that serves one request at a time. moto's shared server
/// answers requests on threads and checks a conditional write's condition and then writes
/// without a lock, so two concurrent `PutItem`s of one key may both succeed there, a race
/// DynamoDB does not have. A test of concurrent conditional writers runs against this one,
/// whose conditional writes are atomic as DynamoDB's are. Stopped when dropped.
pub struct SerialMoto {
    child: std::process::Child,
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
}

impl SerialMoto {
    /// Starts it, or `None` when the moto venv is not known (the test is then skipped, except
    /// under CI, where it fails).
    pub fn start(test: &str) -> Option<SerialMoto> {
        let python = match std::env::var(MOTO_PYTHON_ENV) {
            Ok(p) if !p.is_empty() => p,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: {MOTO_PYTHON_ENV} is not set under CI; run the suite through scripts/with-moto.sh"
                );
                eprintln!("SKIPPED {test}: no moto venv ({MOTO_PYTHON_ENV} unset)");
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let script = "import sys\n\
            from werkzeug.serving import run_simple\n\
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
            run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)\n";
        let child = std::process::Command::new(python)
            .args(["-c", script, &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let server = SerialMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let ready = (0..200).any(|_| {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if !up {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            up
        });
        assert!(
            ready,
            "{test}: the serial moto server did not answer on port {port} within 10 s"
        );
        Some(server)
    }

    /// The SDK configuration for it.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        sdk_config(&AwsSettings::local(&self.endpoint)).await
    }
}

impl Drop for SerialMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
