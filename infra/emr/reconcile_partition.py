"""Reconciles one large (business date, bank) partition on Spark (DESIGN.md §13, docs/spark.md).

The rules live once, in the `recon` binary: this job only reads, splits, spreads and retries.

1. `recon spark plan` (driver) names the partition's input objects, its run id and the
   previous close it carries from, and stages the plan.
2. Spark reads those objects, applies the partition's item selection (the date's own items of
   the bank's merchants; open items the date did not deliver again; hand-overs), and splits the
   items into `--groups` independent match groups: an item named by a statement line goes with
   that transaction id, every other item with its merchant (composite and many-to-one matching
   never look past a merchant). Each group's rows go, as Arrow IPC, to `recon spark group`,
   which runs the engine and the break index on them and stages its rows.
3. `recon spark merge` (driver) merges the groups into the files `reconcile-partition` writes
   (same bytes), records the run and writes the partition summary the close reads back.

Run it with spark-submit, on EMR or locally:

    spark-submit --master 'local[2]' infra/emr/reconcile_partition.py \
        --recon target/release/recon --data data/demo \
        --date 2026-11-16 --bank bank_01 --as-of 2026-11-16 --groups 8

On EMR, `--bucket` replaces `--data` (the binary reads `RECON_BUCKET` and `RECON_RUNS_TABLE`
from the environment the step passes) and `--recon` is the binary the bootstrap action
installed. Exit status 0 and the partition summary (JSON) on stdout when the partition is
reconciled; 1 and the reason on stderr when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.ipc as ipc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# The curated columns the engine reads (shared/src/reconcile/frame.rs) with their Arrow types,
# and the open-item columns (null for an item of the date's own).
MONEY = pa.decimal128(18, 4)
TXN_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("merchant_id", pa.string()),
        ("amount", MONEY),
        ("currency", pa.string()),
        ("status", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
    ]
)
LINE_SCHEMA = pa.schema(
    [
        ("statement_id", pa.string()),
        ("transaction_id", pa.string()),
        ("posting_date", pa.date32()),
        ("amount_posted", MONEY),
        ("currency", pa.string()),
        ("fee_charged", MONEY),
        ("merchant_id", pa.string()),
        ("record_type", pa.string()),
    ]
)
OPEN_FIELDS = [
    ("item_date", pa.date32()),
    ("prior_status", pa.string()),
    ("prior_mismatch", pa.string()),
    ("_source", pa.int8()),
]
SOURCE_OWN, SOURCE_CARRIED, SOURCE_TAKEN = 0, 1, 2


def kernel_schema(curated: pa.Schema) -> pa.Schema:
    """What `recon spark group` reads: the curated columns and the open-item columns."""
    return pa.schema(list(curated) + [pa.field(n, t) for n, t in OPEN_FIELDS])


class KernelError(RuntimeError):
    """`recon spark …` failed; the message is its stderr (which names the file and the fix)."""


def recon(binary: str, args: list[str], env: dict[str, str]) -> dict:
    """Runs one step of the kernel and returns its JSON answer."""
    done = subprocess.run(
        [binary, "spark", *args], capture_output=True, text=True, env={**os.environ, **env}
    )
    if done.returncode != 0:
        raise KernelError(
            f"recon spark {args[0]} exited with {done.returncode}: {done.stderr.strip()}"
        )
    return json.loads(done.stdout)


def spark_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_int8(t):
        return "tinyint"
    return "string"


def ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in schema)


def read(spark: SparkSession, root: str, keys: list[str], curated: pa.Schema, open_items: bool) -> DataFrame:
    """The objects `keys` under `root`, their curated columns (and open-item columns)."""
    columns = [f.name for f in curated] + ([n for n, _ in OPEN_FIELDS[:3]] if open_items else [])
    if not keys:
        schema = pa.schema(list(curated) + ([pa.field(n, t) for n, t in OPEN_FIELDS[:3]] if open_items else []))
        return spark.createDataFrame([], ddl(schema))
    return spark.read.parquet(*[f"{root}/{k}" for k in keys]).select(*columns)


def own(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("item_date", F.lit(None).cast("date"))
        .withColumn("prior_status", F.lit(None).cast("string"))
        .withColumn("prior_mismatch", F.lit(None).cast("string"))
        .withColumn("_source", F.lit(SOURCE_OWN).cast("tinyint"))
    )


def items(spark: SparkSession, root: str, plan: dict) -> tuple[DataFrame, DataFrame]:
    """The partition's transactions and lines, as `reconcile-partition` selects them."""
    merchants = spark.createDataFrame([(m,) for m in plan["merchants"]], "merchant_id string")
    # The date's own transactions of the bank's merchants (a merchant may have moved since
    # ingestion), then the open ones the date did not deliver again.
    own_t = own(read(spark, root, plan["ledger"], TXN_SCHEMA, False)).join(
        F.broadcast(merchants), "merchant_id", "left_semi"
    )
    carried_t = (
        read(spark, root, [plan["open_transactions"]] if plan["open_transactions"] else [], TXN_SCHEMA, True)
        .join(own_t.select("transaction_id"), "transaction_id", "left_anti")
        .withColumn("_source", F.lit(SOURCE_CARRIED).cast("tinyint"))
    )
    base = own_t.unionByName(carried_t)
    # Hand-overs (§11): the ids this bank takes from other banks' ledgers; the kernel drops
    # those it hands over (`outgoing_ids`), counting them.
    taken = None
    ids = spark.createDataFrame([(i,) for i in plan["incoming_ids"]], "transaction_id string")
    for src in plan["incoming"]:
        df = (
            own(read(spark, root, [src["key"]], TXN_SCHEMA, False))
            .withColumn("item_date", F.lit(src["ledger_date"]).cast("date"))
            .withColumn("_source", F.lit(SOURCE_TAKEN).cast("tinyint"))
        )
        taken = df if taken is None else taken.unionByName(df)
    txns = base
    if taken is not None:
        taken = taken.join(F.broadcast(ids), "transaction_id", "left_semi").join(
            base.select("transaction_id"), "transaction_id", "left_anti"
        )
        txns = base.unionByName(taken)
    own_l = own(read(spark, root, plan["statements"], LINE_SCHEMA, False))
    carried_l = (
        read(spark, root, [plan["open_lines"]] if plan["open_lines"] else [], LINE_SCHEMA, True)
        .join(own_l.select("statement_id"), "statement_id", "left_anti")
        .withColumn("_source", F.lit(SOURCE_CARRIED).cast("tinyint"))
    )
    return txns, own_l.unionByName(carried_l)


def split(
    spark: SparkSession, txns: DataFrame, lines: DataFrame, groups: int, manual: list[dict]
) -> tuple[DataFrame, DataFrame]:
    """Adds each item's match group `g`: a transaction some line names, and the lines naming
    it, by that id; every other item by its merchant (a line without either by its own id:
    nothing can match it). The items of a person's manual match (the plan's decisions), and
    the lines naming its transactions, go together by the break the match resolved: the
    engine takes them first, before any other pass could look at them."""
    named = lines.where(F.col("transaction_id").isNotNull()).select("transaction_id").distinct()
    named = named.withColumn("_named", F.lit(True))
    t_key = F.when(F.col("_named"), F.concat(F.lit("t:"), "transaction_id")).otherwise(
        F.concat(F.lit("m:"), "merchant_id")
    )
    l_key = (
        F.when(F.col("transaction_id").isNotNull(), F.concat(F.lit("t:"), "transaction_id"))
        .when(F.col("merchant_id").isNotNull(), F.concat(F.lit("m:"), "merchant_id"))
        .otherwise(F.concat(F.lit("s:"), "statement_id"))
    )
    g = lambda key: F.pmod(F.xxhash64(key), F.lit(groups)).cast("int")  # noqa: E731
    txns = txns.join(named, "transaction_id", "left").withColumn("_key", t_key).drop("_named")
    lines = lines.withColumn("_key", l_key)
    t_manual = [(t, "x:" + m["break_id"]) for m in manual for t in m["transaction_ids"]]
    l_manual = [(s, "x:" + m["break_id"]) for m in manual for s in m["statement_ids"]]
    if t_manual:
        tm = spark.createDataFrame(t_manual, "transaction_id string, _mkey string")
        lm = spark.createDataFrame(l_manual, "statement_id string, _mkey string")
        by_txn = tm.withColumnRenamed("_mkey", "_tkey")
        txns = txns.join(F.broadcast(tm), "transaction_id", "left")
        txns = txns.withColumn("_key", F.coalesce("_mkey", "_key")).drop("_mkey")
        lines = lines.join(F.broadcast(lm), "statement_id", "left")
        lines = lines.join(F.broadcast(by_txn), "transaction_id", "left")
        lines = lines.withColumn("_key", F.coalesce("_mkey", "_tkey", "_key"))
        lines = lines.drop("_mkey", "_tkey")
    return txns.withColumn("g", g("_key")).drop("_key"), lines.withColumn("g", g("_key")).drop("_key")


def write_ipc(path: str, table: pa.Table, schema: pa.Schema) -> None:
    table = table.select(schema.names).cast(schema)
    with pa.OSFile(path, "wb") as f, ipc.new_file(f, schema) as w:
        w.write_table(table)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recon", required=True, help="the recon binary (the kernel)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="a local data directory that plays the bucket")
    where.add_argument("--bucket", help="the deployment's bucket (RECON_BUCKET)")
    p.add_argument("--runs-table", help="the deployment's Runs table (RECON_RUNS_TABLE)")
    p.add_argument("--date", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--as-of", required=True)
    p.add_argument("--execution")
    p.add_argument(
        "--awaiting", help="why the bank's statement is awaited, when it is ('null': it is not)"
    )
    p.add_argument("--groups", type=int, default=16, help="match groups (Spark tasks)")
    a = p.parse_args(argv)

    where_args = ["--data", a.data] if a.data else []
    env = {"RECON_BUCKET": a.bucket} if a.bucket else {}
    if a.runs_table:
        env["RECON_RUNS_TABLE"] = a.runs_table
    root = os.path.abspath(a.data) if a.data else f"s3://{a.bucket}"
    step = ["--date", a.date, "--bank", a.bank, "--as-of", a.as_of, "--groups", str(a.groups)]
    step += ["--execution", a.execution] if a.execution else []
    step += ["--awaiting", a.awaiting] if a.awaiting not in (None, "", "null") else []
    started = time.monotonic()
    try:
        plan = recon(a.recon, ["plan", *where_args, *step], env)
    except KernelError as e:
        print(e, file=sys.stderr)
        return 1
    plan_key = plan["stage"] + "plan.json"
    planned = time.monotonic()

    spark = (
        SparkSession.builder.appName(f"recon-{a.date}-{a.bank}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(a.groups))
        .getOrCreate()
    )
    session = time.monotonic()
    txns, lines = split(spark, *items(spark, root, plan), a.groups, plan["decisions"]["manual"])
    t_schema, l_schema = kernel_schema(TXN_SCHEMA), kernel_schema(LINE_SCHEMA)
    binary = a.recon

    def run_group(key, t: pa.Table, l: pa.Table) -> pa.Table:
        group = key[0].as_py()
        with tempfile.TemporaryDirectory(prefix="recon-group-") as d:
            tf, lf = os.path.join(d, "transactions.arrow"), os.path.join(d, "lines.arrow")
            write_ipc(tf, t, t_schema)
            write_ipc(lf, l, l_schema)
            kernel_started = time.monotonic()
            out = recon(
                binary,
                ["group", *where_args, "--plan", plan_key, "--group", str(group),
                 "--transactions", tf, "--lines", lf],
                env,
            )
        took = time.monotonic() - kernel_started
        return pa.table(
            {
                "group": pa.array([group], pa.int32()),
                "result": [json.dumps(out)],
                "kernel_s": pa.array([took], pa.float64()),
            }
        )

    try:
        ran = (
            txns.groupBy("g")
            .cogroup(lines.groupBy("g"))
            .applyInArrow(run_group, "group int, result string, kernel_s double")
            .collect()
        )
        grouped = time.monotonic()
        groups = sorted(r["group"] for r in ran)
        if not groups:
            # Nothing to reconcile: one empty group still writes the partition's files.
            run_group((pa.scalar(0, pa.int32()),), t_schema.empty_table(), l_schema.empty_table())
            groups = [0]
        summary = recon(
            a.recon,
            ["merge", *where_args, "--plan", plan_key, "--groups", ",".join(map(str, groups))],
            env,
        )
    except Exception as e:  # noqa: BLE001 - the step's one failure message
        print(f"reconcile {a.date} {a.bank} on Spark failed: {e}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    merged = time.monotonic()
    # Where the time went (make bench reads it): the driver's plan and merge, the Spark stage
    # that reads, shuffles and runs the groups, and the kernel's own share of that stage.
    timing = {
        "plan_s": round(planned - started, 3),
        "session_s": round(session - planned, 3),
        "groups_s": round(grouped - session, 3),
        "kernel_s": round(sum(r["kernel_s"] for r in ran), 3),
        "merge_s": round(merged - grouped, 3),
        "groups": len(groups),
    }
    print(f"recon-spark-timing {json.dumps(timing)}", file=sys.stderr, flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
