#!/usr/bin/env python3
"""The reconciliation bench's reference: the same partition reconciled with DuckDB SQL.

Reads the same Parquet files `recon bench reconcile` reads and writes a batch index with the
same columns' meaning: exact-id matches with amount tolerance and fee variance, composite
matches (merchant + amount within tolerance, one line per transaction, deterministic
tie-break) for lines without an id, and the unmatched rest on both sides. Prints JSON timings: wall seconds, and process CPU seconds (with one thread, the per-core
figure, which holds when other work shares the machine).
"""
import json
import sys
import time

import duckdb

d, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads={threads}")
t0, c0 = time.perf_counter(), time.process_time()
con.execute(f"""
CREATE TEMP TABLE t AS SELECT transaction_id, merchant_id, amount, status FROM read_parquet('{d}/transactions.parquet');
CREATE TEMP TABLE l AS SELECT statement_id, transaction_id, merchant_id, amount_posted, fee_charged FROM read_parquet('{d}/lines.parquet');
""")
t1 = time.perf_counter()
con.execute(f"""
CREATE TEMP TABLE exact AS
  SELECT l.statement_id, t.transaction_id, l.amount_posted, t.amount,
         l.amount_posted - t.amount AS discrepancy,
         l.fee_charged - round(t.amount * 0.015 + 0.10, 2) AS fee_variance,
         row_number() OVER (PARTITION BY t.transaction_id ORDER BY l.statement_id) AS rn
  FROM l JOIN t ON l.transaction_id = t.transaction_id;
CREATE TEMP TABLE comp AS
  SELECT * FROM (
    SELECT l.statement_id, t.transaction_id, l.amount_posted, t.amount,
           l.amount_posted - t.amount AS discrepancy,
           row_number() OVER (PARTITION BY l.statement_id ORDER BY abs(l.amount_posted - t.amount), t.transaction_id) AS rl,
           row_number() OVER (PARTITION BY t.transaction_id ORDER BY abs(l.amount_posted - t.amount), l.statement_id) AS rt
    FROM l JOIN t ON l.merchant_id = t.merchant_id AND abs(l.amount_posted - t.amount) <= 0.01
    WHERE l.transaction_id IS NULL
      AND t.transaction_id NOT IN (SELECT transaction_id FROM exact)
  ) WHERE rl = 1 AND rt = 1;
COPY (
  SELECT 'TRANSACTION' AS row_kind, transaction_id, statement_id,
         CASE WHEN rn > 1 THEN 'DUPLICATE' WHEN abs(discrepancy) > 0.01 THEN 'PARTIAL_MATCH' ELSE 'MATCHED' END AS reconciled_status,
         CASE WHEN rn > 1 THEN 'DUPLICATE' WHEN abs(discrepancy) > 0.01 THEN 'AMOUNT'
              WHEN abs(fee_variance) > 0.01 THEN 'FEE' ELSE 'NONE' END AS mismatch_type,
         'EXACT_ID' AS match_rule, discrepancy
  FROM exact
  UNION ALL
  SELECT 'TRANSACTION', transaction_id, statement_id, 'MATCHED', 'NONE', 'COMPOSITE', discrepancy FROM comp
  UNION ALL
  SELECT 'TRANSACTION', t.transaction_id, NULL, 'UNMATCHED', 'MISSING_AT_BANK', 'NONE', NULL FROM t
  WHERE t.transaction_id NOT IN (SELECT transaction_id FROM exact) AND t.transaction_id NOT IN (SELECT transaction_id FROM comp)
  UNION ALL
  SELECT 'STATEMENT_LINE', l.transaction_id, l.statement_id, 'UNMATCHED', 'MISSING_INTERNAL', 'NONE', NULL FROM l
  WHERE l.statement_id NOT IN (SELECT statement_id FROM exact) AND l.statement_id NOT IN (SELECT statement_id FROM comp)
  ORDER BY 2, 3
) TO '{d}/duckdb_index.parquet' (FORMAT parquet);
""")
t2, c2 = time.perf_counter(), time.process_time()
rows = con.execute(f"SELECT count(*) FROM read_parquet('{d}/duckdb_index.parquet')").fetchone()[0]
print(json.dumps({"read_s": t1 - t0, "match_write_s": t2 - t1, "total_s": t2 - t0, "cpu_s": c2 - c0, "rows": rows, "threads": threads}))
