"""Runs a state machine definition on moto's Step Functions interpreter, its Lambda tasks
answered from a queue, and prints what the execution did (runtime/tests/sfn_moto.rs compares
it with the local interpreter's run of the same definition and replies).

    python scripts/sfn_moto.py --definition FILE --input JSON --replies JSON_LIST \
        --functions plan-partitions,reconcile-partition,... --name EXECUTION

It starts its own moto server on 127.0.0.1 (the interpreter and the Lambda queue are settings
of a whole server, which other tests share), unless `--endpoint` names one. `--definition` has `${<Name>FunctionArn}` placeholders for the functions; the script creates
each function (moto's Lambda without Docker answers with the next queued reply), substitutes
their ARNs, starts one execution and prints one JSON object: the states entered in order, the
status, and the output or the error and cause.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sys
import time
import urllib.request
import uuid
import zipfile

import boto3

REGION = "us-east-1"


def moto_api(endpoint: str, path: str, body: dict) -> None:
    req = urllib.request.Request(
        f"{endpoint}/moto-api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("-"))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", help="a moto server to use instead of starting one")
    p.add_argument("--definition", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--replies", required=True)
    p.add_argument("--functions", required=True)
    p.add_argument("--substitutions", default="{}", help="other ${Name} values, JSON")
    p.add_argument("--name", required=True, help="the execution's name")
    a = p.parse_args(argv)

    server = None
    if not a.endpoint:
        from moto.server import ThreadedMotoServer

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # The interpreter calls Lambda at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        a.endpoint = f"http://127.0.0.1:{port}"
    try:
        return run(a)
    finally:
        if server is not None:
            server.stop()


def run(a: argparse.Namespace) -> int:
    moto_api(
        a.endpoint,
        "config",
        {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
    )
    kw = dict(
        endpoint_url=a.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam, lam, sfn = boto3.client("iam", **kw), boto3.client("lambda", **kw), boto3.client("stepfunctions", **kw)
    run = uuid.uuid4().hex[:8]
    role = iam.create_role(
        RoleName=f"sfn-compare-{run}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "")
    subs = json.loads(a.substitutions)
    for f in a.functions.split(","):
        arn = lam.create_function(
            FunctionName=f"{f}-{run}",
            Runtime="provided.al2023",
            Role=role,
            Handler="bootstrap",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
        subs[f"{camel(f)}FunctionArn"] = arn
    moto_api(
        a.endpoint,
        "static/lambda-simple/response",
        {"results": [json.dumps(r) for r in json.loads(a.replies)], "region": REGION},
    )
    definition = open(a.definition).read()
    for k, v in subs.items():
        definition = definition.replace("${" + k + "}", str(v))
    machine = sfn.create_state_machine(
        name=f"daily-close-{run}", definition=definition, roleArn=role
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=a.name, input=a.input)[
        "executionArn"
    ]
    for _ in range(600):
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            break
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in events
        if e["type"].endswith("StateEntered")
    ]
    out = {"status": d["status"], "states": entered}
    if "output" in d:
        out["output"] = json.loads(d["output"])
    for k in ("error", "cause"):
        if k in d:
            out[k] = d[k]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
