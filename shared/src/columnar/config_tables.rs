//! The Parquet form of the configuration tables the stream indexer and the close read:
//! fraud signals, merchants, policies and fee rules.

use super::*;

impl Columnar for FraudSignal {
    const TABLE: &'static str = "fraud_signals";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("fraud_signal_id", DataType::Utf8, false),
            field("transaction_id", DataType::Utf8, false),
            field("fraud_score", ratio_type(), false),
            field("model_version", DataType::Utf8, false),
            field("inference_time", utc_micros(), false),
            field("reason_code", DataType::Utf8, true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.fraud_signal_id.as_str())),
                string_array(rows.iter().map(|r| r.transaction_id.as_str())),
                decimal_array(
                    rows.iter().map(|r| Some(r.fraud_score)),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                string_array(rows.iter().map(|r| r.model_version.as_str())),
                timestamp_array(rows.iter().map(|r| r.inference_time)),
                opt_string_array(rows.iter().map(|r| r.reason_code.as_deref())),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (id, tid, sc) = (
            c.strings("fraud_signal_id")?,
            c.strings("transaction_id")?,
            c.decimals("fraud_score")?,
        );
        let (mv, it, rc) = (
            c.strings("model_version")?,
            c.timestamps("inference_time")?,
            c.strings("reason_code")?,
        );
        (0..b.num_rows())
            .map(|i| {
                Ok(FraudSignal {
                    fraud_signal_id: c
                        .parse("fraud_signal_id", c.str_at(id, "fraud_signal_id", i)?)?,
                    transaction_id: c
                        .parse("transaction_id", c.str_at(tid, "transaction_id", i)?)?,
                    fraud_score: c.dec_at(sc, "fraud_score", i)?.normalize(),
                    model_version: c.str_at(mv, "model_version", i)?.to_string(),
                    inference_time: c.ts_at(it, "inference_time", i)?,
                    reason_code: c.opt_str_at(rc, i).map(str::to_string),
                })
            })
            .collect()
    }
}

impl Columnar for Merchant {
    const TABLE: &'static str = "merchants";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("merchant_id", DataType::Utf8, false),
            field("merchant_name", DataType::Utf8, false),
            field("category", DataType::Utf8, false),
            field("risk_level", DataType::Utf8, false),
            field("onboarding_date", DataType::Date32, false),
            field("country", DataType::Utf8, false),
            field("acquirer_bank_id", DataType::Utf8, true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.merchant_id.as_str())),
                string_array(rows.iter().map(|r| r.merchant_name.as_str())),
                string_array(rows.iter().map(|r| r.category.as_str())),
                string_array(rows.iter().map(|r| r.risk_level.as_str())),
                date_array(rows.iter().map(|r| Some(r.onboarding_date))),
                string_array(rows.iter().map(|r| r.country.as_str())),
                opt_string_array(
                    rows.iter()
                        .map(|r| r.acquirer_bank_id.as_ref().map(|b| b.as_str())),
                ),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (id, nm, cat) = (
            c.strings("merchant_id")?,
            c.strings("merchant_name")?,
            c.strings("category")?,
        );
        let (rl, od, co) = (
            c.strings("risk_level")?,
            c.dates("onboarding_date")?,
            c.strings("country")?,
        );
        let acq = c.strings("acquirer_bank_id")?;
        (0..b.num_rows())
            .map(|i| {
                Ok(Merchant {
                    merchant_id: c.parse("merchant_id", c.str_at(id, "merchant_id", i)?)?,
                    merchant_name: c.str_at(nm, "merchant_name", i)?.to_string(),
                    category: c.str_at(cat, "category", i)?.to_string(),
                    risk_level: c.parse("risk_level", c.str_at(rl, "risk_level", i)?)?,
                    onboarding_date: c.date_at(od, "onboarding_date", i)?,
                    country: c.str_at(co, "country", i)?.to_string(),
                    acquirer_bank_id: c
                        .opt_str_at(acq, i)
                        .map(|s| c.parse("acquirer_bank_id", s))
                        .transpose()?,
                })
            })
            .collect()
    }
}

impl Columnar for Policy {
    const TABLE: &'static str = "policies";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("policy_id", DataType::Utf8, false),
            field("policy_type", DataType::Utf8, false),
            field("rule_description", DataType::Utf8, false),
            field("active_flag", DataType::Boolean, false),
            field("parameters", DataType::Utf8, false),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let params = rows
            .iter()
            .map(|r| serde_json::to_string(&r.parameters))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.policy_id.as_str())),
                string_array(rows.iter().map(|r| r.policy_type.as_str())),
                string_array(rows.iter().map(|r| r.rule_description.as_str())),
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.active_flag).collect::<Vec<_>>(),
                )),
                string_array(params.iter().map(String::as_str)),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (id, ty, de) = (
            c.strings("policy_id")?,
            c.strings("policy_type")?,
            c.strings("rule_description")?,
        );
        let (af, pa) = (c.bools("active_flag")?, c.strings("parameters")?);
        (0..b.num_rows())
            .map(|i| {
                Ok(Policy {
                    policy_id: c.parse("policy_id", c.str_at(id, "policy_id", i)?)?,
                    policy_type: c.parse("policy_type", c.str_at(ty, "policy_type", i)?)?,
                    rule_description: c.str_at(de, "rule_description", i)?.to_string(),
                    active_flag: af.is_valid(i) && af.value(i),
                    parameters: serde_json::from_str(c.str_at(pa, "parameters", i)?)?,
                })
            })
            .collect()
    }
}

impl Columnar for FeeRule {
    const TABLE: &'static str = "fee_rules";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("rule_id", DataType::Utf8, false),
            field("bank_id", DataType::Utf8, true),
            field("network", DataType::Utf8, true),
            field("merchant_category", DataType::Utf8, true),
            field("percent", ratio_type(), false),
            field("fixed", money_type(), false),
            field("currency", DataType::Utf8, false),
            field("effective_from", DataType::Date32, false),
            field("effective_to", DataType::Date32, true),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        batch(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.rule_id.as_str())),
                opt_string_array(rows.iter().map(|r| r.bank_id.as_ref().map(|b| b.as_str()))),
                opt_string_array(rows.iter().map(|r| r.network.as_deref())),
                opt_string_array(rows.iter().map(|r| r.merchant_category.as_deref())),
                decimal_array(
                    rows.iter().map(|r| Some(r.percent)),
                    RATIO_PRECISION,
                    RATIO_SCALE,
                )?,
                money_array(rows.iter().map(|r| r.fixed))?,
                string_array(rows.iter().map(|r| r.currency.code())),
                date_array(rows.iter().map(|r| Some(r.effective_from))),
                date_array(rows.iter().map(|r| r.effective_to)),
            ],
        )
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let (id, bank, net) = (
            c.strings("rule_id")?,
            c.strings("bank_id")?,
            c.strings("network")?,
        );
        let (cat, pct, fix) = (
            c.strings("merchant_category")?,
            c.decimals("percent")?,
            c.decimals("fixed")?,
        );
        let (cur, ef, et) = (
            c.strings("currency")?,
            c.dates("effective_from")?,
            c.dates("effective_to")?,
        );
        (0..b.num_rows())
            .map(|i| {
                let currency: Currency = c.parse("currency", c.str_at(cur, "currency", i)?)?;
                Ok(FeeRule {
                    rule_id: c.parse("rule_id", c.str_at(id, "rule_id", i)?)?,
                    bank_id: c
                        .opt_str_at(bank, i)
                        .map(|s| c.parse("bank_id", s))
                        .transpose()?,
                    network: c.opt_str_at(net, i).map(str::to_string),
                    merchant_category: c.opt_str_at(cat, i).map(str::to_string),
                    percent: c.dec_at(pct, "percent", i)?.normalize(),
                    fixed: currency.exact(c.dec_at(fix, "fixed", i)?)?,
                    currency,
                    effective_from: c.date_at(ef, "effective_from", i)?,
                    effective_to: c.opt_date_at(et, "effective_to", i)?,
                })
            })
            .collect()
    }
}
