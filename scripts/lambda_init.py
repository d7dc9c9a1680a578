#!/usr/bin/env python3
"""Init time of each Lambda binary built by `make build`, measured the way the Lambda service
sees it: from process start to the function's first poll of the Runtime API
(`GET /2018-06-01/runtime/invocation/next`), against a stand-in Runtime API on 127.0.0.1.

The binaries start with the AWS adapters (`RECON_BUCKET` set, static test credentials, an
unreachable endpoint: building the clients makes no call), so the figure covers what a cold
start does before its first event: reading the configuration and building the SDK clients.

usage: lambda_init.py TARGET_DIR FUNCTION... ; prints one line per function, best of 5 runs.
"""
import http.server
import os
import subprocess
import sys
import threading
import time

RUNS = 5


class Api(http.server.BaseHTTPRequestHandler):
    polled = threading.Event()

    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path.endswith("/runtime/invocation/next"):
            Api.polled.set()
        # Keep the function waiting: it is killed once it has polled.
        time.sleep(0.5)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def env(port):
    e = dict(os.environ)
    e.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "init-probe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "RECON_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "RECON_BUCKET": "recon-init-probe",
        "RECON_ENVIRONMENT": "probe",
        "RECON_MANIFESTS_TABLE": "manifests",
        "RECON_RUNS_TABLE": "runs",
        "RECON_RULES_TABLE": "rules",
        "RECON_TRANSACTION_INDEX_TABLE": "transaction-index",
        "RECON_NORMALIZER_FUNCTION": "normalizer",
        "RECON_PII_HMAC_KEY": "init-probe-key-0123456789abcdef",
    })
    e.pop("RECON_DATA_DIR", None)
    return e


def main():
    target, functions = sys.argv[1], sys.argv[2:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    for f in functions:
        binary = os.path.join(target, "lambda", f, "bootstrap")
        best = None
        for _ in range(RUNS):
            Api.polled.clear()
            t0 = time.perf_counter()
            p = subprocess.Popen([binary], env=env(port), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            ok = Api.polled.wait(10)
            ms = (time.perf_counter() - t0) * 1000
            p.kill()
            _, err = p.communicate()
            if not ok:
                print(f"{f:<20} did not poll: {err.decode(errors='replace')[-300:]}")
                break
            best = ms if best is None else min(best, ms)
        if best is not None:
            size = os.path.getsize(binary) / 1048576
            print(f"{f:<20} {size:6.1f} MB   init {best:6.1f} ms")
    server.shutdown()


if __name__ == "__main__":
    main()
