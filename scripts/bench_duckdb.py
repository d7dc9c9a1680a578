#!/usr/bin/env python3
"""The reconciliation bench's reference: the same close reconciled with DuckDB SQL.

    bench_duckdb.py DIR THREADS [RUN_ID]    reconcile, write DIR/duckdb_index.parquet, print timings
    bench_duckdb.py --compare DIR           compare DIR/recon_index.parquet with it, print JSON

Reads what `recon bench reconcile` reads: the day's transactions.parquet and lines.parquet, the
previous close's open items (open_transactions.parquet, open_lines.parquet: the curated columns
plus item_date, prior_status, prior_mismatch) and break registry (registry.json), and the
dimensions (merchants.jsonl for categories, fee_rules.jsonl). It writes the batch index recon
writes: the same 26 columns (names, types, values) and the same rows, in the same order.

What the SQL does, pass by pass as the engine (shared/src/reconcile/engine.rs):
  * carried items merged (an item the day delivers again replaces the carried one);
  * expected amount (refunds negative) and expected fee from the fee rule in force for the
    merchant's category (a category rule before the bank's general one, then the later
    effective_from, then the lower rule id), rounded half away from zero to the cent;
  * exact id: lines naming a transaction; the first line (by statement id) within the amount
    tolerance is the match and the others DUPLICATE; without one, all the lines (ONE_TO_MANY
    when several); chargebacks DISPUTED; PARTIAL_MATCH/AMOUNT past the amount tolerance,
    FEE past the fee tolerance; lines naming an unknown transaction MISSING_INTERNAL;
  * composite: a line without an id takes the free transaction of its merchant whose expected
    amount is within tolerance and date within the date window, the closest amount, then
    date, then id; lines in statement order;
  * many-to-one: a line without an id pays 2..MAX_GROUP_SIZE free transactions of its merchant
    (the first MAX_GROUP_CANDIDATES by event time), amount and fee adding up exactly in a
    first pass, within tolerance in a second; closest amount, then fee, then fewest members,
    then the earliest; a meet-in-the-middle of sub-sums of up to three members, as the engine;
  * what is left: MISSING_INTERNAL lines; transactions PENDING inside the settlement window,
    MISSING_AT_BANK after it, no break when they move no money (DECLINED, PENDING);
  * breaks: brk_ + 20 hex digits of sha256(bank|type|subject), first seen from the previous
    close's registry (else today), age in days, resolved_on for a carried break ended today;
  * rows: the day's items, and carried items whose status or break changed.
Composite and many-to-one take lines in statement order, each from what the earlier ones left:
the SQL settles in rounds every line that no earlier unsettled line of its merchant competes
with (none of its pick is among the earlier lines' candidates), which gives the same result.

Parameters the SQL is given rather than computes, as the bench gives them to recon
(cli/src/bench.rs: bench_tolerances, BENCH_DATE, BENCH_RUN_ID): the business date, the bank,
its settlement currency (USD, one currency: no FX), the tolerances, a calendar where every day
is a business day, and the run id. Not modelled, as the bench partition has none: FX
conversion (CURRENCY breaks), an awaited statement, and the engine's cap of 64 candidate groups
per payout line (its search keeps the best of the first 64 fitting groups found).

Prints JSON timings: wall seconds, and process CPU seconds (with one thread, the per-core
figure, which holds when other work shares the machine).
"""
import json
import os
import sys
import time

import duckdb

BUSINESS_DATE = "2026-11-20"
BANK = "bank_01"
CURRENCY = "USD"  # the bank's settlement currency; cents
AMOUNT_TOL = 1  # Tolerances::amount_minor_units
FEE_TOL = 1  # Tolerances::fee_minor_units
DATE_WINDOW = 3  # Tolerances::date_window_days
MAX_GROUP_SIZE = 6  # Tolerances::max_group_size (halves of up to 3 members)
MAX_GROUP_CANDIDATES = 120  # Tolerances::max_group_candidates
SETTLEMENT_WINDOW = 1  # the bench's settlement_window_days (every day a business day)


def reconcile(d, threads, run_id):
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET TimeZone='UTC'")
    verbose = os.environ.get("RECON_BENCH_VERBOSE")

    def q(sql):
        t = time.process_time()
        r = con.execute(sql)
        if verbose:
            print(f"{time.process_time() - t:7.2f} s  {' '.join(sql.split())[:100]}", file=sys.stderr)
        return r

    D = f"DATE '{BUSINESS_DATE}'"
    t0, c0 = time.perf_counter(), time.process_time()

    # Inputs: the day's items and the carried ones, amounts in cents.
    q(f"""
    CREATE TEMP TABLE own_t AS SELECT transaction_id, merchant_id, amount, currency, status, event_time
      FROM read_parquet('{d}/transactions.parquet');
    CREATE TEMP TABLE own_l AS SELECT statement_id, transaction_id, posting_date, amount_posted, currency,
      fee_charged, merchant_id, record_type FROM read_parquet('{d}/lines.parquet');
    CREATE TEMP TABLE cat AS SELECT merchant_id, category FROM read_json('{d}/merchants.jsonl',
      format='newline_delimited', columns={{'merchant_id': 'VARCHAR', 'category': 'VARCHAR'}});
    CREATE TEMP TABLE rules AS SELECT * FROM read_json('{d}/fee_rules.jsonl', format='newline_delimited',
      columns={{'rule_id': 'VARCHAR', 'bank_id': 'VARCHAR', 'merchant_category': 'VARCHAR',
               'percent': 'DECIMAL(18,6)', 'fixed': 'DECIMAL(18,6)', 'currency': 'VARCHAR',
               'effective_from': 'DATE', 'effective_to': 'DATE'}});
    CREATE TEMP TABLE registry AS
      SELECT unnest(map_keys(open)) AS break_id, unnest(map_values(open)) AS first_seen
      FROM read_json('{d}/registry.json', columns={{'open': 'MAP(VARCHAR, DATE)'}});
    CREATE TEMP TABLE t AS
      WITH u AS (
        SELECT transaction_id AS tid, merchant_id, amount, currency, status, event_time,
               {D} AS item_date, NULL::VARCHAR AS prior_status, NULL::VARCHAR AS prior_mismatch
        FROM own_t
        UNION ALL
        SELECT transaction_id, merchant_id, amount, currency, status, event_time, item_date,
               prior_status, prior_mismatch
        FROM read_parquet('{d}/open_transactions.parquet') o
        WHERE NOT EXISTS (SELECT 1 FROM own_t WHERE own_t.transaction_id = o.transaction_id)
      ),
      -- The fee rule in force per category (NULL: a merchant without one).
      pick AS (
        SELECT c.category, r.percent, r.fixed FROM (SELECT DISTINCT category FROM cat UNION SELECT NULL) c
        JOIN rules r ON r.bank_id = '{BANK}' AND r.currency = '{CURRENCY}'
          AND r.effective_from <= {D} AND (r.effective_to IS NULL OR {D} <= r.effective_to)
          AND (r.merchant_category IS NULL OR r.merchant_category = c.category)
        QUALIFY row_number() OVER (PARTITION BY c.category
          ORDER BY r.merchant_category IS NOT NULL DESC, r.effective_from DESC, r.rule_id) = 1
      )
      SELECT u.*, epoch_us(event_time) AS event_us, CAST(event_time AS DATE) AS event_date,
             conv * CASE WHEN status = 'REFUNDED' THEN -1 ELSE 1 END AS expected,
             CASE WHEN status = 'REFUNDED' OR p.percent IS NULL THEN 0
                  ELSE CAST(round((abs(conv) * p.percent + p.fixed * 10000) * 0.01, 0) AS BIGINT) END AS exp_fee
      FROM (SELECT *, CAST(round(amount, 2) * 100 AS BIGINT) AS conv FROM u) u
      LEFT JOIN cat USING (merchant_id)
      LEFT JOIN pick p ON p.category IS NOT DISTINCT FROM cat.category;
    CREATE TEMP TABLE l AS
      WITH u AS (
        SELECT statement_id AS sid, transaction_id AS named, posting_date, amount_posted, fee_charged,
               merchant_id, record_type, {D} AS item_date,
               NULL::VARCHAR AS prior_status, NULL::VARCHAR AS prior_mismatch
        FROM own_l
        UNION ALL
        SELECT statement_id, transaction_id, posting_date, amount_posted, fee_charged, merchant_id,
               record_type, item_date, prior_status, prior_mismatch
        FROM read_parquet('{d}/open_lines.parquet') o
        WHERE NOT EXISTS (SELECT 1 FROM own_l WHERE own_l.statement_id = o.statement_id)
      )
      SELECT *, CAST(round(amount_posted, 2) * 100 AS BIGINT) AS amt,
             CAST(round(fee_charged, 2) * 100 AS BIGINT) AS fee FROM u;
    """)
    t1 = time.perf_counter()

    # Outcomes: one row per transaction and per line decided so far.
    #   t_out: tid, status, mismatch, rule, sids (the lines, '|'), posted amt/fee, disc, fee_var, conf
    #   l_out: sid, status, mismatch, rule, tids (the transactions, '|'), subject (first of them), disc, fee_var, conf
    # 1. Exact id.
    q(f"""
    CREATE TEMP TABLE named AS
      SELECT l.sid, l.amt, l.fee, l.record_type, t.tid, t.expected, t.exp_fee, t.status, t.currency
      FROM l JOIN t ON l.named = t.tid;
    CREATE TEMP TABLE grp AS
      SELECT tid, any_value(expected) AS expected, any_value(exp_fee) AS exp_fee,
             any_value(currency) <> '{CURRENCY}' AS cross_currency, count(*) AS n,
             any_value(status) = 'CHARGEBACK' OR bool_or(record_type = 'CHARGEBACK') AS chargeback,
             min(sid) FILTER (WHERE abs(amt - expected) <= {AMOUNT_TOL}) AS fit
      FROM named GROUP BY tid;
    -- The lines each transaction is matched with.
    CREATE TEMP TABLE matched AS
      SELECT n.*, g.n, g.chargeback, g.fit, g.cross_currency FROM named n JOIN grp g USING (tid)
      WHERE g.chargeback OR g.fit IS NULL OR n.sid = g.fit;
    CREATE TEMP TABLE exact_t AS
      SELECT tid, disc, fee_var, sids, amt, fee,
             CASE WHEN chargeback THEN 'DISPUTED' WHEN abs(disc) > {AMOUNT_TOL} THEN 'PARTIAL_MATCH' ELSE 'MATCHED' END AS status,
             CASE WHEN chargeback THEN 'CHARGEBACK'
                  WHEN abs(disc) > {AMOUNT_TOL} THEN CASE WHEN cross_currency THEN 'CURRENCY' ELSE 'AMOUNT' END
                  WHEN abs(fee_var) > {FEE_TOL} THEN 'FEE' ELSE 'NONE' END AS mismatch,
             CASE WHEN NOT chargeback AND fit IS NULL AND n > 1 THEN 'ONE_TO_MANY' ELSE 'EXACT_ID' END AS rule
      FROM (
        SELECT tid, any_value(chargeback) AS chargeback, any_value(fit) AS fit, any_value(n) AS n,
               any_value(cross_currency) AS cross_currency,
               sum(amt) - CASE WHEN any_value(chargeback)
                               THEN sum(CASE WHEN record_type = 'CHARGEBACK' THEN -expected ELSE expected END)
                               ELSE any_value(expected) END AS disc,
               sum(fee) - any_value(exp_fee) AS fee_var,
               string_agg(sid, '|' ORDER BY sid) AS sids, sum(amt) AS amt, sum(fee) AS fee
        FROM matched GROUP BY tid
      );
    CREATE TEMP TABLE t_out AS
      SELECT tid, status, mismatch, rule, sids, amt, fee, disc, fee_var, 1000 AS conf FROM exact_t;
    CREATE TEMP TABLE l_out AS
      SELECT n.sid, e.status, e.mismatch, e.rule, n.tid AS tids, n.tid AS subject, e.disc, e.fee_var, 1000 AS conf
      FROM named n JOIN exact_t e USING (tid) JOIN grp g USING (tid)
      WHERE g.chargeback OR g.fit IS NULL OR n.sid = g.fit
      UNION ALL
      SELECT n.sid, 'DUPLICATE', 'DUPLICATE', 'EXACT_ID', n.tid, n.tid, NULL, NULL, 1000
      FROM named n JOIN grp g USING (tid)
      WHERE NOT g.chargeback AND g.fit IS NOT NULL AND n.sid <> g.fit
      UNION ALL
      SELECT sid, 'UNMATCHED', 'MISSING_INTERNAL', 'NONE', NULL, NULL, NULL, NULL, 0
      FROM l WHERE named IS NOT NULL AND NOT EXISTS (SELECT 1 FROM t WHERE t.tid = l.named);
    """)

    # 2. Composite: every (line, transaction) pair that may match, then rounds.
    q(f"""
    CREATE TEMP TABLE cand AS
      SELECT l.sid, l.merchant_id, t.tid, abs(k) AS d, abs(l.posting_date - t.event_date) AS days
      FROM l CROSS JOIN range({-AMOUNT_TOL}, {AMOUNT_TOL + 1}) r(k)
      JOIN t ON t.merchant_id = l.merchant_id AND t.expected = l.amt - k
      WHERE l.named IS NULL AND l.merchant_id IS NOT NULL
        AND abs(l.posting_date - t.event_date) <= {DATE_WINDOW}
        AND NOT EXISTS (SELECT 1 FROM t_out WHERE t_out.tid = t.tid);
    CREATE TEMP TABLE comp (sid VARCHAR, tid VARCHAR, d BIGINT, days BIGINT);
    """)
    rounds = 0
    while q("SELECT count(*) FROM cand").fetchone()[0]:
        rounds += 1
        # A line's best transaction is final when no earlier open line has it as a candidate.
        q("""
        INSERT INTO comp
          SELECT sid, tid, d, days FROM (
            SELECT *, min(sid) OVER (PARTITION BY tid) AS first_claim FROM cand
          ) QUALIFY row_number() OVER (PARTITION BY sid ORDER BY d, days, tid) = 1 AND first_claim = sid;
        DELETE FROM cand WHERE sid IN (SELECT sid FROM comp) OR tid IN (SELECT tid FROM comp);
        """)
    q(f"""
    CREATE TEMP TABLE comp_o AS
      SELECT c.sid, c.tid, l.amt, l.fee, l.amt - t.expected AS disc, l.fee - t.exp_fee AS fee_var,
             CASE WHEN abs(l.fee - t.exp_fee) > {FEE_TOL} THEN 'FEE' ELSE 'NONE' END AS mismatch,
             greatest(500, least(1000, 950 - 50 * c.days - CASE WHEN c.d > 0 THEN 100 ELSE 0 END)) AS conf
      FROM comp c JOIN l USING (sid) JOIN t USING (tid);
    INSERT INTO t_out SELECT tid, 'MATCHED', mismatch, 'COMPOSITE', sid, amt, fee, disc, fee_var, conf FROM comp_o;
    INSERT INTO l_out SELECT sid, 'MATCHED', mismatch, 'COMPOSITE', tid, tid, disc, fee_var, conf FROM comp_o;
    """)

    # 3. Many-to-one, an exact pass then one within tolerance.
    for atol, ftol in [(0, 0), (AMOUNT_TOL, FEE_TOL)]:
        q(f"""
        CREATE OR REPLACE TEMP TABLE payout AS
          SELECT l.sid, l.merchant_id, l.amt, l.fee, l.posting_date FROM l
          WHERE l.named IS NULL AND l.merchant_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM l_out WHERE l_out.sid = l.sid);
        -- The merchants' free transactions paid out to, oldest first, as many as one search covers.
        CREATE OR REPLACE TEMP TABLE pool AS
          SELECT * FROM (
            SELECT t.merchant_id, t.tid, t.expected, t.exp_fee, t.event_date,
                   row_number() OVER (PARTITION BY t.merchant_id ORDER BY t.event_us, t.tid) - 1 AS pos,
                   count(*) OVER (PARTITION BY t.merchant_id) AS size
            FROM t WHERE t.expected > 0 AND NOT EXISTS (SELECT 1 FROM t_out WHERE t_out.tid = t.tid)
              AND t.merchant_id IN (SELECT merchant_id FROM payout)
          ) WHERE pos < {MAX_GROUP_CANDIDATES} AND size >= 2;
        -- Every sub-sum of one to three members (ascending positions).
        CREATE OR REPLACE TEMP TABLE half AS
          WITH p AS (SELECT *, 1::HUGEINT << pos::HUGEINT AS bit FROM pool)
          SELECT merchant_id, 1 AS k, expected AS amount, exp_fee AS fee, bit AS mask, pos AS first, pos AS last,
                 event_date AS lo, event_date AS hi, [pos] AS positions FROM p
          UNION ALL
          SELECT a.merchant_id, 2, a.expected + b.expected, a.exp_fee + b.exp_fee, a.bit | b.bit, a.pos, b.pos,
                 least(a.event_date, b.event_date), greatest(a.event_date, b.event_date), [a.pos, b.pos]
          FROM p a JOIN p b ON a.merchant_id = b.merchant_id AND a.pos < b.pos
          UNION ALL
          SELECT a.merchant_id, 3, a.expected + b.expected + c.expected, a.exp_fee + b.exp_fee + c.exp_fee,
                 a.bit | b.bit | c.bit, a.pos, c.pos,
                 least(a.event_date, b.event_date, c.event_date), greatest(a.event_date, b.event_date, c.event_date),
                 [a.pos, b.pos, c.pos]
          FROM p a JOIN p b ON a.merchant_id = b.merchant_id AND a.pos < b.pos
                   JOIN p c ON b.merchant_id = c.merchant_id AND b.pos < c.pos;
        CREATE OR REPLACE TEMP TABLE m2o (sid VARCHAR, merchant_id VARCHAR, mask HUGEINT);
        """)
        # Every group fitting a payout line: a first part of a members and a last of b in
        # {{a, a+1}}, every one of the first before every one of the last; the last part is
        # found by its amount (a hash join), as the engine finds it by binary search.
        q(f"""
        CREATE OR REPLACE TEMP TABLE probe AS
          SELECT p.sid, p.merchant_id, p.amt, p.fee, p.posting_date, x.k, x.amount, x.fee AS xfee, x.mask,
                 x.last, x.lo, x.hi, x.positions, p.amt - x.amount + e AS want
          FROM payout p JOIN half x ON x.merchant_id = p.merchant_id AND x.k <= {MAX_GROUP_SIZE // 2}
          CROSS JOIN range({-atol}, {atol + 1}) r(e);
        CREATE OR REPLACE TEMP TABLE fit AS
          SELECT x.sid, x.merchant_id, x.mask | y.mask AS mask,
                 abs(x.amount + y.amount - x.amt) AS da, abs(x.xfee + y.fee - x.fee) AS df,
                 x.k + y.k AS members, x.positions || y.positions AS positions
          FROM probe x JOIN half y ON y.merchant_id = x.merchant_id AND y.amount = x.want
          WHERE (y.k = x.k OR y.k = x.k + 1) AND x.k + y.k <= {MAX_GROUP_SIZE} AND y.first > x.last
            AND abs(x.xfee + y.fee - x.fee) <= {ftol}
            AND least(x.lo, y.lo) >= x.posting_date - {DATE_WINDOW}
            AND greatest(x.hi, y.hi) <= x.posting_date + {DATE_WINDOW};
        """)
        # Lines in statement order, each from what the earlier ones left: in rounds, a line's
        # best group is final when no earlier open line of its merchant could take one of its
        # members; the groups of the rest that lost a member are dropped.
        while q("SELECT count(*) FROM fit").fetchone()[0]:
            q("""
            CREATE OR REPLACE TEMP TABLE final AS
              WITH lines AS (
                SELECT sid, merchant_id, bit_or(mask) AS reach FROM fit GROUP BY sid, merchant_id
              ), before AS (
                SELECT sid, coalesce(bit_or(reach) OVER (PARTITION BY merchant_id ORDER BY sid
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0::HUGEINT) AS earlier
                FROM lines
              ), best AS (
                SELECT * FROM fit QUALIFY row_number() OVER (PARTITION BY sid ORDER BY da, df, members, positions) = 1
              )
              SELECT b.sid, b.merchant_id, b.mask FROM best b JOIN before USING (sid)
              WHERE (b.mask & before.earlier) = 0;
            INSERT INTO m2o SELECT * FROM final;
            DELETE FROM fit WHERE sid IN (SELECT sid FROM final);
            DELETE FROM fit WHERE EXISTS (
              SELECT 1 FROM final f WHERE f.merchant_id = fit.merchant_id AND (f.mask & fit.mask) <> 0);
            """)
            rounds += 1
        q(f"""
        CREATE OR REPLACE TEMP TABLE m2o_o AS
          SELECT g.sid, l.amt, l.fee, l.amt - sum(p.expected) AS disc, l.fee - sum(p.exp_fee) AS fee_var,
                 string_agg(p.tid, '|' ORDER BY p.tid) AS tids, min(p.tid) AS subject,
                 list(p.tid) AS members
          FROM m2o g JOIN pool p ON p.merchant_id = g.merchant_id AND (g.mask & (1::HUGEINT << p.pos::HUGEINT)) <> 0
          JOIN l ON l.sid = g.sid
          GROUP BY g.sid, l.amt, l.fee;
        INSERT INTO t_out
          SELECT unnest(members), 'MATCHED', CASE WHEN abs(fee_var) > {FEE_TOL} THEN 'FEE' ELSE 'NONE' END,
                 'MANY_TO_ONE', sid, amt, fee, disc, fee_var, 900 FROM m2o_o;
        INSERT INTO l_out
          SELECT sid, 'MATCHED', CASE WHEN abs(fee_var) > {FEE_TOL} THEN 'FEE' ELSE 'NONE' END,
                 'MANY_TO_ONE', tids, subject, disc, fee_var, 900 FROM m2o_o;
        """)

    # 4. What is left, breaks, and the index.
    def brk(mismatch, subject):
        return f"'brk_' || sha256('{BANK}|' || {mismatch} || '|' || {subject})[:20]"

    money = "CAST(CAST({} AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,4))"
    q(f"""
    CREATE TEMP TABLE rows_t AS
      SELECT t.*, o.sids, o.amt AS posted, o.fee AS posted_fee, o.disc, o.fee_var,
             coalesce(o.status, CASE WHEN t.status NOT IN ('APPROVED', 'REFUNDED', 'CHARGEBACK') THEN 'UNMATCHED'
                                     WHEN {D} < t.event_date + {SETTLEMENT_WINDOW} THEN 'PENDING'
                                     ELSE 'UNMATCHED' END) AS rstatus,
             coalesce(o.mismatch, CASE WHEN t.status NOT IN ('APPROVED', 'REFUNDED', 'CHARGEBACK') THEN 'NONE'
                                       WHEN {D} < t.event_date + {SETTLEMENT_WINDOW} THEN 'NONE'
                                       ELSE 'MISSING_AT_BANK' END) AS rmismatch,
             coalesce(o.rule, 'NONE') AS rrule, coalesce(o.conf, 0) AS conf
      FROM t LEFT JOIN t_out o USING (tid);
    CREATE TEMP TABLE rows_l AS
      SELECT l.*, o.tids, o.subject, o.disc, o.fee_var,
             coalesce(o.status, 'UNMATCHED') AS rstatus, coalesce(o.mismatch, 'MISSING_INTERNAL') AS rmismatch,
             coalesce(o.rule, 'NONE') AS rrule, coalesce(o.conf, 0) AS conf
      FROM l LEFT JOIN l_out o USING (sid);
    COPY (
      WITH tb AS (
        SELECT *,
          CASE WHEN rmismatch <> 'NONE' THEN {brk('rmismatch', 'tid')}
               WHEN prior_mismatch <> 'NONE' AND prior_mismatch <> rmismatch THEN {brk('prior_mismatch', 'tid')} END AS break_id,
          rmismatch = 'NONE' AND prior_mismatch <> 'NONE' AND prior_mismatch <> rmismatch AS resolved
        FROM rows_t
        WHERE prior_status IS NULL OR prior_status <> rstatus OR prior_mismatch <> rmismatch
      ),
      lb AS (
        SELECT *,
          CASE WHEN rmismatch IN ('MISSING_INTERNAL', 'DUPLICATE') THEN {brk('rmismatch', 'sid')}
               WHEN prior_mismatch <> 'NONE' AND prior_mismatch <> rmismatch THEN {brk('prior_mismatch', 'sid')}
               WHEN rmismatch <> 'NONE' THEN {brk('rmismatch', 'subject')} END AS break_id,
          rmismatch NOT IN ('MISSING_INTERNAL', 'DUPLICATE') AND prior_mismatch <> 'NONE' AND prior_mismatch <> rmismatch AS resolved,
          rmismatch IN ('MISSING_INTERNAL', 'DUPLICATE') OR (prior_mismatch <> 'NONE' AND prior_mismatch <> rmismatch) AS opened
        FROM rows_l
        WHERE prior_status IS NULL OR prior_status <> rstatus OR prior_mismatch <> rmismatch
      ),
      out AS (
        SELECT 0 AS kind_order, tid AS key, 'TRANSACTION' AS row_kind, tid AS transaction_id, sids AS statement_ids,
               NULL::VARCHAR AS transaction_ids, merchant_id, amount, currency AS txn_currency,
               expected, posted, posted_fee, exp_fee, disc, fee_var, rstatus, rmismatch, rrule, conf,
               tb.break_id, break_id IS NOT NULL AS opened, coalesce(resolved, false) AS resolved, item_date
        FROM tb
        UNION ALL
        SELECT 1, sid, 'STATEMENT_LINE', named, sid, tids, merchant_id, NULL, NULL,
               NULL, amt, fee, NULL, disc, fee_var, rstatus, rmismatch, rrule, conf,
               lb.break_id, coalesce(opened, false), coalesce(resolved, false), item_date
        FROM lb
      )
      SELECT row_kind, transaction_id, statement_ids, transaction_ids, '{BANK}' AS bank_id, merchant_id,
             CAST(amount AS DECIMAL(18,4)) AS amount, txn_currency,
             {money.format('expected')} AS expected_amount, {money.format('posted')} AS amount_posted,
             '{CURRENCY}' AS currency, {money.format('posted_fee')} AS fee_charged,
             {money.format('exp_fee')} AS expected_fee, {money.format('disc')} AS discrepancy,
             {money.format('fee_var')} AS fee_variance,
             rstatus AS reconciled_status, rmismatch AS mismatch_type, rrule AS match_rule,
             CAST(CAST(conf AS DECIMAL(18,0)) * 0.001 AS DECIMAL(18,6)) AS confidence,
             out.break_id,
             CASE WHEN opened THEN coalesce(r.first_seen, {D}) END AS first_seen,
             CASE WHEN opened THEN CAST(greatest(0, {D} - coalesce(r.first_seen, {D})) AS INTEGER) END AS age_days,
             CASE WHEN resolved THEN {D} END AS resolved_on,
             item_date, {D} AS business_date, '{run_id}' AS run_id
      FROM out LEFT JOIN registry r ON r.break_id = out.break_id AND out.opened
      ORDER BY kind_order, key
    ) TO '{d}/duckdb_index.parquet' (FORMAT parquet);
    """)
    t2, c2 = time.perf_counter(), time.process_time()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{d}/duckdb_index.parquet')").fetchone()[0]
    print(json.dumps({"read_s": t1 - t0, "match_write_s": t2 - t1, "total_s": t2 - t0, "cpu_s": c2 - c0,
                      "rows": rows, "threads": threads, "rounds": rounds}))


def compare(d):
    """recon_index.parquet = duckdb_index.parquet: columns (names, types) and every value of
    every row, rows keyed by kind and id; else the first difference."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    r, k = f"read_parquet('{d}/recon_index.parquet')", f"read_parquet('{d}/duckdb_index.parquet')"
    rs = con.execute(f"DESCRIBE SELECT * FROM {r}").fetchall()
    ks = con.execute(f"DESCRIBE SELECT * FROM {k}").fetchall()
    rows = con.execute(f"SELECT count(*) FROM {r}").fetchone()[0]

    def done(equal, difference=None):
        print(json.dumps({"equal": equal, "rows": rows, "difference": difference}))

    if [(c[0], c[1]) for c in rs] != [(c[0], c[1]) for c in ks]:
        return done(False, f"columns differ: recon {[(c[0], c[1]) for c in rs]} duckdb {[(c[0], c[1]) for c in ks]}")
    cols = [c[0] for c in rs]
    key = "row_kind || ':' || CASE row_kind WHEN 'TRANSACTION' THEN transaction_id ELSE statement_ids END"
    first = " ".join(f"WHEN a.{c} IS DISTINCT FROM b.{c} THEN '{c}'" for c in cols)
    diff = con.execute(f"""
      WITH a AS (SELECT {key} AS _key, * FROM {r}), b AS (SELECT {key} AS _key, * FROM {k})
      SELECT coalesce(a._key, b._key) AS _key,
             CASE WHEN a._key IS NULL THEN 'row only in duckdb_index' WHEN b._key IS NULL THEN 'row only in recon_index'
                  {first} END AS what
      FROM a FULL JOIN b USING (_key)
      WHERE a._key IS NULL OR b._key IS NULL OR ({" OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in cols)})
      ORDER BY 1 LIMIT 1
    """).fetchone()
    if diff:
        key_, what = diff[0], diff[1]
        if what in cols:
            a, b = (con.execute(f"SELECT {what}::VARCHAR FROM {f} WHERE {key} = ?", [key_]).fetchone()[0]
                    for f in (r, k))
            return done(False, f"row {key_}, column {what}: recon {a!r}, duckdb {b!r}")
        return done(False, f"row {key_}: {what}")
    # Same rows by key; the order too.
    order = con.execute(f"""
      SELECT count(*) FROM (SELECT {key} AS _key, row_number() OVER () AS n FROM {r}) a
      JOIN (SELECT {key} AS _key, row_number() OVER () AS n FROM {k}) b USING (_key) WHERE a.n <> b.n
    """).fetchone()[0]
    if order:
        return done(False, f"{order} rows in another order")
    done(True)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2])
    else:
        reconcile(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "run-bench")
