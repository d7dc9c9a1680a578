"""Consistency checks between the code, template.yaml and the state machines.

Run by scripts/lint-infra.sh with the venv that holds cfn-lint (its decoder reads the
template's short-form intrinsics, PyYAML reads docs/openapi.yaml). Prints one line per problem
and exits 1 when there is any.
"""

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Statements allowed to name Resource "*": the services have no resource-level permissions
# for these actions (docs/deploy.md, "IAM").
STAR_RESOURCE_SIDS = {"MskNetworkInterfaces", "ExecutionLogDelivery", "Tracing"}

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def load_template():
    tpl, errors = decode(str(ROOT / "template.yaml"))
    if errors:
        sys.exit(f"template.yaml does not parse: {errors}")
    return tpl


def crates() -> dict[str, Path]:
    out = {}
    for manifest in sorted(ROOT.glob("functions/*/Cargo.toml")):
        with open(manifest, "rb") as f:
            name = tomllib.load(f)["package"]["name"]
        out[name] = manifest.parent
    return out


def check_functions(tpl, resources, crate_dirs):
    globals_fn = tpl.get("Globals", {}).get("Function", {})
    binaries = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {})
        meta = res.get("Metadata", {})
        binary = meta.get("BuildProperties", {}).get("Binary")
        if meta.get("BuildMethod") != "rust-cargolambda" or not binary:
            problem(f"{logical}: needs Metadata BuildMethod rust-cargolambda and BuildProperties Binary")
            continue
        binaries[binary] = logical

        def prop(key):
            return props.get(key, globals_fn.get(key))

        if prop("Runtime") != "provided.al2023":
            problem(f"{logical}: Runtime must be provided.al2023")
        if prop("Architectures") != ["arm64"]:
            problem(f"{logical}: Architectures must be [arm64]")
        if prop("Handler") != "bootstrap":
            problem(f"{logical}: Handler must be bootstrap")
        if prop("CodeUri") != ".":
            problem(f"{logical}: CodeUri must be . (the workspace)")
        if "Role" not in props or "Policies" in props:
            problem(f"{logical}: needs its own least-privilege Role (and no SAM Policies)")
        for key in ("MemorySize", "Timeout"):
            if key not in props:
                problem(f"{logical}: {key} must be set (and explained in docs/deploy.md)")
    for name in crate_dirs:
        if name not in binaries:
            problem(f"functions/{name}: no AWS::Serverless::Function builds binary `{name}`")
    for binary, logical in binaries.items():
        if binary not in crate_dirs:
            problem(f"{logical}: builds `{binary}`, which is no crate under functions/")


def check_state_machines(resources):
    used_files = set()
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = res.get("Properties", {})
        subs = set(props.get("DefinitionSubstitutions", {}) or {})
        if "DefinitionUri" in props:
            uri = props["DefinitionUri"]
            if not isinstance(uri, str):
                problem(f"{logical}: DefinitionUri must be a path in the repository")
                continue
            used_files.add(uri)
            text = (ROOT / uri).read_text(encoding="utf-8")
            where = uri
        else:
            text = json.dumps(props.get("Definition", {}))
            where = f"{logical} Definition"
        names = set(PLACEHOLDER.findall(text))
        for name in sorted(names - subs):
            problem(f"{where}: ${{{name}}} has no DefinitionSubstitutions entry in {logical}")
        for name in sorted(subs - names):
            problem(f"{logical}: DefinitionSubstitutions {name} is used nowhere in {where}")
    for path in sorted(ROOT.glob("statemachines/*.asl.json")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in used_files:
            problem(f"{rel}: no state machine of template.yaml uses it")


def check_env_keys(tpl, resources):
    keys = set(tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    for res in resources.values():
        if res.get("Type") == "AWS::Serverless::Function":
            keys |= set(res.get("Properties", {}).get("Environment", {}).get("Variables", {}) or {})
    declared = set()
    for rs in ROOT.glob("shared/src/**/*.rs"):
        declared |= set(re.findall(r'pub const [A-Z0-9_]+: &str = "(RECON_[A-Z0-9_]+)";', rs.read_text()))
    for key in sorted(k for k in keys if k.startswith("RECON_")):
        if key not in declared:
            problem(f"environment key {key} is set by template.yaml but declared by no `pub const` in shared/src")


def check_iam(resources):
    for logical, res in resources.items():
        kind = res.get("Type")
        if kind == "AWS::IAM::Role":
            docs = [p.get("PolicyDocument", {}) for p in res.get("Properties", {}).get("Policies", [])]
            if res.get("Properties", {}).get("ManagedPolicyArns"):
                problem(f"{logical}: managed policies are not least privilege; write the statements")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [res.get("Properties", {}).get("PolicyDocument", {})]
        else:
            continue
        for doc in docs:
            for st in as_list(doc.get("Statement")):
                if st.get("Effect") != "Allow":
                    continue
                sid = st.get("Sid", "?")
                if "NotAction" in st or "NotResource" in st:
                    problem(f"{logical}/{sid}: NotAction/NotResource are not least privilege")
                for action in as_list(st.get("Action")):
                    if not isinstance(action, str) or "*" in action:
                        problem(f"{logical}/{sid}: wildcard action {action!r}")
                for resource in as_list(st.get("Resource")):
                    if resource == "*" and sid not in STAR_RESOURCE_SIDS:
                        problem(f"{logical}/{sid}: Resource \"*\" (allowed only for {sorted(STAR_RESOURCE_SIDS)})")


def check_s3_reads_see_absent_objects(resources):
    """A role that reads S3 objects may list the bucket, unconditionally: S3 answers a GetObject
    of a missing key 404 NoSuchKey only to a caller allowed s3:ListBucket (an s3:prefix
    condition does not hold for a GetObject), otherwise 403 AccessDenied, which the code treats
    as a permission error, not as an absent object (first-run break registry, optional FX and
    compliance files, missing delivery files)."""
    for logical, res in resources.items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        statements = [
            st
            for p in res.get("Properties", {}).get("Policies", [])
            for st in as_list(p.get("PolicyDocument", {}).get("Statement"))
            if st.get("Effect") == "Allow"
        ]
        if not any("s3:GetObject" in as_list(st.get("Action")) for st in statements):
            continue
        lists = [st for st in statements if "s3:ListBucket" in as_list(st.get("Action"))]
        if not lists:
            problem(f"{logical}: reads S3 objects but has no s3:ListBucket: a missing object would answer AccessDenied, not NoSuchKey")
        for st in lists:
            if st.get("Condition"):
                problem(f"{logical}/{st.get('Sid', '?')}: s3:ListBucket under a Condition: a GetObject of a missing key then answers AccessDenied, not NoSuchKey; grant it on the bucket without one")


def check_routes(resources):
    with open(ROOT / "docs/openapi.yaml", encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    documented = {
        (method.upper(), path)
        for path, item in spec.get("paths", {}).items()
        for method in item
        if method.lower() in ("get", "put", "post", "delete", "patch", "head", "options")
    }
    routed = set()
    for res in resources.values():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for ev in (res.get("Properties", {}).get("Events") or {}).values():
            if ev.get("Type") == "HttpApi":
                p = ev.get("Properties", {})
                routed.add((p.get("Method", "").upper(), p.get("Path")))
    for method, path in sorted(documented - routed):
        problem(f"docs/openapi.yaml {method} {path} has no HttpApi event in template.yaml")
    for method, path in sorted(routed - documented):
        problem(f"template.yaml routes {method} {path}, which docs/openapi.yaml does not document")


# What the operators' dashboard must show: the close's own figures, and the AWS metrics each
# operations alarm watches (docs/runbook.md, Alarms).
DASHBOARD_MUST_PLOT = {
    ("Recon", "MismatchRate"),
    ("Recon", "AwaitingDeliveries"),
    ("Recon", "AnomaliesFlagged"),
    ("AWS/Lambda", "Errors"),
    ("AWS/Lambda", "Throttles"),
    ("AWS/Lambda", "OffsetLag"),
    ("AWS/ApiGateway", "5xx"),
    ("AWS/States", "ExecutionsFailed"),
}


def check_dashboard_metrics():
    """Every `Recon` metric a dashboard of infra/ plots is one the code emits (a renamed metric
    would leave an empty panel, silently), and the dashboard plots what the alarms watch."""
    plotted = set()
    emitted = set()
    for rs in list(ROOT.glob("shared/src/**/*.rs")) + list(ROOT.glob("functions/*/src/**/*.rs")):
        emitted |= set(re.findall(r'"([A-Z][A-Za-z]+)"', rs.read_text()))
    for path in sorted(ROOT.glob("infra/*.yaml")):
        tpl, errors = decode(str(path))
        if errors:
            problem(f"{path.relative_to(ROOT)} does not parse: {errors}")
            continue
        for logical, res in tpl.get("Resources", {}).items():
            if res.get("Type") != "AWS::CloudWatch::Dashboard":
                continue
            body = res["Properties"]["DashboardBody"]
            text = body["Fn::Sub"] if isinstance(body, dict) else body
            for widget in json.loads(text)["widgets"]:
                for metric in widget.get("properties", {}).get("metrics", []):
                    plotted.add((metric[0], metric[1]))
                    if metric[0] == "Recon" and metric[1] not in emitted:
                        problem(f"{path.relative_to(ROOT)} {logical} plots Recon/{metric[1]}, which no code emits")
    for namespace, name in sorted(DASHBOARD_MUST_PLOT - plotted):
        problem(f"infra/: no dashboard plots {namespace}/{name}")


def check_events(crate_dirs):
    by_dir = {d.name: name for name, d in crate_dirs.items()}
    for event in sorted(ROOT.glob("events/**/*.json")):
        rel = event.relative_to(ROOT).as_posix()
        try:
            json.loads(event.read_text(encoding="utf-8"))
        except ValueError as e:
            problem(f"{rel}: not JSON ({e})")
        fn_dir = event.relative_to(ROOT / "events").parts[0]
        if fn_dir not in by_dir:
            problem(f"{rel}: events/{fn_dir}/ matches no crate under functions/")
            continue
        sources = list((ROOT / "functions" / fn_dir).glob("**/*.rs"))
        needle = f"events/{event.relative_to(ROOT / 'events').as_posix()}"
        if not any(needle in s.read_text(encoding="utf-8") for s in sources):
            problem(f"{rel}: no test under functions/{fn_dir}/ loads it")


def refs(node) -> set[str]:
    """Logical ids a node names with Ref or GetAtt, anywhere below it."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


def check_operations(resources):
    """Every function's errors and throttles, the API's 5xx and every failure queue are
    alarmed; the schedule has a dead-letter queue; every table is protected from deletion."""
    alarms = {k: r for k, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}

    def alarmed(logical: str, metric: str) -> bool:
        for a in alarms.values():
            props = a.get("Properties", {})
            names = {props.get("MetricName")} | {
                m.get("MetricStat", {}).get("Metric", {}).get("MetricName")
                for m in props.get("Metrics", [])
            }
            if metric in names and logical in refs(props):
                return True
        return False

    for logical, res in resources.items():
        kind = res.get("Type")
        props = res.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            env = json.dumps(props.get("Environment", {}))
            if "resolve:secretsmanager" in env:
                problem(f"template.yaml: {logical} resolves a secret into its environment (read it at start instead)")
            for metric in ("Errors", "Throttles"):
                if not alarmed(logical, metric):
                    problem(f"template.yaml: no alarm on the {metric} of {logical}")
        elif kind == "AWS::Serverless::HttpApi" and not alarmed(logical, "5xx"):
            problem(f"template.yaml: no alarm on the 5xx answers of {logical}")
        elif kind == "AWS::SQS::Queue" and not alarmed(logical, "ApproximateNumberOfMessagesVisible"):
            problem(f"template.yaml: no alarm on the messages waiting in {logical}")
        elif kind == "AWS::DynamoDB::Table" and props.get("DeletionProtectionEnabled") not in (
            True,
            {"Ref": "TableDeletionProtection"},
        ):
            problem(f"template.yaml: {logical} is not protected from deletion (true, or the TableDeletionProtection parameter)")
        elif kind == "AWS::Scheduler::Schedule" and not props.get("Target", {}).get("DeadLetterConfig"):
            problem(f"template.yaml: {logical} has no dead-letter queue")
    for logical, res in resources.items():
        if res.get("DeletionPolicy") == "Retain":
            problem(f"template.yaml: {logical} is Retain: a rolled-back first deploy would leave it behind and the next one fail (RetainExceptOnCreate)")
    for logical, metric in (("StreamIndexerFunction", "OffsetLag"), ("DailyCloseStateMachine", "ExecutionsSucceeded")):
        if not alarmed(logical, metric):
            problem(f"template.yaml: no alarm on the {metric} of {logical}")
    ttl = resources.get("TransactionIndexTable", {}).get("Properties", {}).get("TimeToLiveSpecification", {})
    code = re.search(r'EXPIRES_AT: &str = "([a-z_]+)"', (ROOT / "shared/src/aws/dynamo/index.rs").read_text())
    if not ttl.get("Enabled") or not code or ttl.get("AttributeName") != code.group(1):
        problem("template.yaml: TransactionIndexTable's TTL attribute is not the code's EXPIRES_AT (user-hour counters would never expire)")
    asl = json.loads((ROOT / "statemachines/daily-close.asl.json").read_text())
    if not isinstance(asl.get("TimeoutSeconds"), int):
        problem("statemachines/daily-close.asl.json: no TimeoutSeconds (a stuck close would hold forever)")


def check_samconfig(tpl):
    """Every stage of samconfig.toml names template parameters, with allowed values."""
    params = tpl.get("Parameters", {})
    with open(ROOT / "samconfig.toml", "rb") as f:
        conf = tomllib.load(f)
    for stage, sections in conf.items():
        if not isinstance(sections, dict):
            continue
        overrides = sections.get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
        for item in as_list(overrides):
            name, _, value = item.partition("=")
            if name not in params:
                problem(f"samconfig.toml [{stage}]: {name} is not a parameter of template.yaml")
                continue
            allowed = params[name].get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                problem(f"samconfig.toml [{stage}]: {name}={value} is not one of {allowed}")


def check_tracing(tpl, resources):
    """X-Ray on every function (Globals) and state machine."""
    if tpl.get("Globals", {}).get("Function", {}).get("Tracing") != "Active":
        problem("template.yaml: Globals.Function.Tracing is not Active")
    for logical, res in resources.items():
        if res.get("Type") == "AWS::Serverless::StateMachine" and not res.get("Properties", {}).get("Tracing", {}).get("Enabled"):
            problem(f"template.yaml: {logical} is not traced (Tracing: Enabled: true)")


def check_rules(resources):
    """The Rules table (docs/rules.md): the plan reads it and publishes it to config/; no other
    function touches it; editors may add versions, never change or delete one; the code's key
    names are the table's."""

    def statements(res):
        props = res.get("Properties", {})
        docs = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            docs.append(props["PolicyDocument"])
        return [st for d in docs for st in as_list(d.get("Statement")) if st.get("Effect") == "Allow"]

    def on_rules(st):
        return "RulesTable" in refs(st.get("Resource"))

    for logical, res in resources.items():
        if res.get("Type") not in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            continue
        actions = {a for st in statements(res) if on_rules(st) for a in as_list(st.get("Action"))}
        if logical == "PlanPartitionsRole":
            if actions != {"dynamodb:Query"}:
                problem(f"template.yaml: {logical} must Query the Rules table (only): it has {sorted(actions)}")
            published = {
                a
                for st in statements(res)
                if any("/config/rules/*" in json.dumps(r) for r in as_list(st.get("Resource")))
                and any("/config/calendars/*" in json.dumps(r) for r in as_list(st.get("Resource")))
                for a in as_list(st.get("Action"))
            }
            if not {"s3:PutObject", "s3:DeleteObject"} <= published:
                problem(f"template.yaml: {logical} cannot publish the rules to config/rules/ and config/calendars/ (s3:PutObject, s3:DeleteObject)")
        elif logical == "RulesEditorPolicy":
            if actions != {"dynamodb:Query", "dynamodb:PutItem"}:
                problem(f"template.yaml: {logical} must allow Query and PutItem on the Rules table, nothing else (versions are never changed): it has {sorted(actions)}")
        elif actions:
            problem(f"template.yaml: {logical} reaches the Rules table ({sorted(actions)}); only the plan reads it (the close reads config/)")
    if "RulesEditorPolicy" not in resources:
        problem("template.yaml: no RulesEditorPolicy for whoever changes the rules")
    table = resources.get("RulesTable", {}).get("Properties", {})
    keys = [k.get("AttributeName") for k in table.get("KeySchema", [])]
    code = (ROOT / "shared/src/aws/dynamo/rules.rs").read_text()
    if keys != ["rule_type", "rule_id"] or any(f'"{k}"' not in code for k in keys):
        problem(f"template.yaml: RulesTable keys {keys} are not the code's (rule_type, rule_id)")


def main() -> int:
    tpl = load_template()
    resources = tpl.get("Resources", {})
    crate_dirs = crates()
    check_functions(tpl, resources, crate_dirs)
    check_state_machines(resources)
    check_env_keys(tpl, resources)
    check_iam(resources)
    check_s3_reads_see_absent_objects(resources)
    check_routes(resources)
    check_events(crate_dirs)
    check_dashboard_metrics()
    check_operations(resources)
    check_samconfig(tpl)
    check_tracing(tpl, resources)
    check_rules(resources)
    for p in problems:
        print(f"check_infra: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
