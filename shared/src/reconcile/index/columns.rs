//! The Parquet form of the batch index rows (`index/batch`, `index/mismatches`).

use super::*;

impl Columnar for IndexRow {
    const TABLE: &'static str = "batch_index";
    const CODED: &'static [&'static str] = &[
        "row_kind",
        "bank_id",
        "txn_currency",
        "currency",
        "reconciled_status",
        "mismatch_type",
        "match_rule",
        "confidence",
        "first_seen",
        "age_days",
        "resolved_on",
        "break_status",
        "resolution",
        "resolved_by",
        "item_date",
        "business_date",
        "run_id",
    ];
    const FILTERED: Option<&'static [&'static str]> = Some(&[
        "row_kind",
        "transaction_id",
        "bank_id",
        "merchant_id",
        "reconciled_status",
        "mismatch_type",
        "match_rule",
        "break_id",
        "first_seen",
        "age_days",
        "resolved_on",
        "break_status",
        "item_date",
        "business_date",
    ]);

    fn schema() -> SchemaRef {
        let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
        Arc::new(Schema::new(vec![
            f("row_kind", DataType::Utf8, false),
            f("transaction_id", DataType::Utf8, true),
            f("statement_ids", DataType::Utf8, true),
            f("transaction_ids", DataType::Utf8, true),
            f("bank_id", DataType::Utf8, false),
            f("merchant_id", DataType::Utf8, true),
            f("amount", money_type(), true),
            f("txn_currency", DataType::Utf8, true),
            f("expected_amount", money_type(), true),
            f("amount_posted", money_type(), true),
            f("currency", DataType::Utf8, false),
            f("fee_charged", money_type(), true),
            f("expected_fee", money_type(), true),
            f("discrepancy", money_type(), true),
            f("fee_variance", money_type(), true),
            f("reconciled_status", DataType::Utf8, false),
            f("mismatch_type", DataType::Utf8, false),
            f("match_rule", DataType::Utf8, false),
            f("confidence", ratio_type(), false),
            f("break_id", DataType::Utf8, true),
            f("first_seen", DataType::Date32, true),
            f("age_days", DataType::Int32, true),
            f("resolved_on", DataType::Date32, true),
            f("break_status", DataType::Utf8, true),
            f("resolution", DataType::Utf8, true),
            f("resolved_by", DataType::Utf8, true),
            f("item_date", DataType::Date32, false),
            f("business_date", DataType::Date32, false),
            f("run_id", DataType::Utf8, false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let money = |g: fn(&IndexRow) -> Option<Decimal>| {
            decimal_array(rows.iter().map(g), MONEY_PRECISION, MONEY_SCALE)
        };
        let sids: Vec<Option<String>> = rows.iter().map(|r| join(&r.statement_ids)).collect();
        let tids: Vec<Option<String>> = rows.iter().map(|r| join(&r.transaction_ids)).collect();
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.row_kind.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.transaction_id.as_ref().map(|t| t.as_str())),
                ),
                opt_string_array(sids.iter().map(|s| s.as_deref())),
                opt_string_array(tids.iter().map(|s| s.as_deref())),
                string_array(rows.iter().map(|r| r.bank_id.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.merchant_id.as_ref().map(|m| m.as_str())),
                ),
                money(|r| r.amount)?,
                opt_string_array(
                    rows.iter()
                        .map(|r| r.txn_currency.as_ref().map(|c| c.code())),
                ),
                money(|r| r.expected_amount)?,
                money(|r| r.amount_posted)?,
                string_array(rows.iter().map(|r| r.currency.code())),
                money(|r| r.fee_charged)?,
                money(|r| r.expected_fee)?,
                money(|r| r.discrepancy)?,
                money(|r| r.fee_variance)?,
                string_array(rows.iter().map(|r| r.reconciled_status.as_str())),
                string_array(rows.iter().map(|r| r.mismatch_type.as_str())),
                string_array(rows.iter().map(|r| r.match_rule.as_str())),
                decimal_array(
                    rows.iter().map(|r| Some(r.confidence)),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                opt_string_array(rows.iter().map(|r| r.break_id.as_deref())),
                date_array(rows.iter().map(|r| r.first_seen)),
                Arc::new(rows.iter().map(|r| r.age_days).collect::<Int32Array>()),
                date_array(rows.iter().map(|r| r.resolved_on)),
                opt_string_array(rows.iter().map(|r| r.break_status.map(|s| s.as_str()))),
                opt_string_array(rows.iter().map(|r| r.resolution.map(|s| s.as_str()))),
                opt_string_array(rows.iter().map(|r| r.resolved_by.as_deref())),
                date_array(rows.iter().map(|r| Some(r.item_date))),
                date_array(rows.iter().map(|r| Some(r.business_date.date()))),
                string_array(rows.iter().map(|r| r.run_id.as_str())),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let s = |n| c.strings(n);
        let d = |n| c.decimals(n);
        let (kind, tid, sids, tids, bank, mer) = (
            s("row_kind")?,
            s("transaction_id")?,
            s("statement_ids")?,
            s("transaction_ids")?,
            s("bank_id")?,
            s("merchant_id")?,
        );
        let (amt, tcur, exp, posted, cur) = (
            d("amount")?,
            s("txn_currency")?,
            d("expected_amount")?,
            d("amount_posted")?,
            s("currency")?,
        );
        let (fee, efee, disc, fvar) = (
            d("fee_charged")?,
            d("expected_fee")?,
            d("discrepancy")?,
            d("fee_variance")?,
        );
        let (st, mm, rule, conf, brk) = (
            s("reconciled_status")?,
            s("mismatch_type")?,
            s("match_rule")?,
            d("confidence")?,
            s("break_id")?,
        );
        let (first, resolved, item, bd, run) = (
            c.dates("first_seen")?,
            c.dates("resolved_on")?,
            c.dates("item_date")?,
            c.dates("business_date")?,
            s("run_id")?,
        );
        let (bstat, reso, by) = (s("break_status")?, s("resolution")?, s("resolved_by")?);
        let age = b
            .column_by_name("age_days")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| crate::Error::Schema {
                table: Self::TABLE,
                column: "age_days".into(),
                reason: "missing".into(),
            })?;
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                let txn_currency: Option<Currency> = c
                    .opt_str_at(tcur, i)
                    .map(|v| c.parse("txn_currency", v))
                    .transpose()?;
                let at = |col, cy: Currency| -> Result<Option<Decimal>> {
                    c.opt_dec_at(col, i)?.map(|v| cy.exact(v)).transpose()
                };
                let kind = match c.str_at(kind, "row_kind", i)? {
                    "TRANSACTION" => RowKind::Transaction,
                    _ => RowKind::StatementLine,
                };
                Ok(IndexRow {
                    row_kind: kind,
                    transaction_id: c
                        .opt_str_at(tid, i)
                        .map(|v| c.parse("transaction_id", v))
                        .transpose()?,
                    statement_ids: split(c.opt_str_at(sids, i)),
                    transaction_ids: split(c.opt_str_at(tids, i)),
                    bank_id: c.parse("bank_id", c.str_at(bank, "bank_id", i)?)?,
                    merchant_id: c
                        .opt_str_at(mer, i)
                        .map(|v| c.parse("merchant_id", v))
                        .transpose()?,
                    amount: match txn_currency {
                        Some(tc) => at(amt, tc)?,
                        None => c.opt_dec_at(amt, i)?,
                    },
                    txn_currency,
                    expected_amount: at(exp, currency)?,
                    amount_posted: at(posted, currency)?,
                    currency,
                    fee_charged: at(fee, currency)?,
                    expected_fee: at(efee, currency)?,
                    discrepancy: at(disc, currency)?,
                    fee_variance: at(fvar, currency)?,
                    reconciled_status: c
                        .parse("reconciled_status", c.str_at(st, "reconciled_status", i)?)?,
                    mismatch_type: c.parse("mismatch_type", c.str_at(mm, "mismatch_type", i)?)?,
                    match_rule: c.parse("match_rule", c.str_at(rule, "match_rule", i)?)?,
                    confidence: c.dec_at(conf, "confidence", i)?.normalize(),
                    break_id: c.opt_str_at(brk, i).map(str::to_string),
                    first_seen: c.opt_date_at(first, "first_seen", i)?,
                    age_days: age.is_valid(i).then(|| age.value(i)),
                    resolved_on: c.opt_date_at(resolved, "resolved_on", i)?,
                    break_status: c
                        .opt_str_at(bstat, i)
                        .map(|v| c.parse("break_status", v))
                        .transpose()?,
                    resolution: c
                        .opt_str_at(reso, i)
                        .map(|v| c.parse("resolution", v))
                        .transpose()?,
                    resolved_by: c.opt_str_at(by, i).map(str::to_string),
                    item_date: c.date_at(item, "item_date", i)?,
                    business_date: BusinessDate::from_date(c.date_at(bd, "business_date", i)?)?,
                    run_id: c.str_at(run, "run_id", i)?.to_string(),
                })
            })
            .collect()
    }
}
