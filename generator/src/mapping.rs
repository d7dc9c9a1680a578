//! The source mappings of the generated sources (`config/sources/*.json`): each bank's style
//! and the ledger extract.

use std::collections::BTreeMap;

use recon_shared::Result;
use recon_shared::ids::SourceId;
use recon_shared::source::{
    AmountUnit, SignConvention, SourceFormat, SourceKind, SourceMapping, TRANSACTION_FIELDS,
};

use super::world::{Style, World};

/// Source id of the internal system-of-record extract.
pub const LEDGER_SOURCE: &str = "ledger";

/// The mapping a bank's style needs (`config/sources/{bank}.json`).
pub fn mapping_for(world: &World, bank: usize) -> Result<SourceMapping> {
    let b = &world.banks[bank];
    let cols = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut m = SourceMapping {
        source_id: SourceId::new(b.id.as_str())?,
        kind: SourceKind::Statement,
        format: SourceFormat::Csv,
        delimiter: ',',
        header: true,
        decimal_separator: '.',
        amount_unit: AmountUnit::Major,
        sign_convention: SignConvention::Signed,
        timezone: b.timezone.to_string(),
        date_format: "%Y-%m-%d".into(),
        timestamp_format: None,
        default_currency: Some(b.currency),
        bank_id: Some(b.id.clone()),
        settlement_currency: Some(b.currency),
        columns: BTreeMap::new(),
        encoding: Default::default(),
        transaction_codes: BTreeMap::new(),
    };
    match b.style {
        Style::CsvComma => {
            m.columns = cols(&[
                ("statement_id", "statement_id"),
                ("transaction_id", "transaction_ref"),
                ("posting_date", "value_date"),
                ("amount_posted", "amount"),
                ("currency", "ccy"),
                ("fee_charged", "fee"),
                ("merchant_id", "merchant_ref"),
                ("reference", "description"),
                ("record_type", "type"),
            ]);
        }
        Style::CsvSemicolon => {
            m.delimiter = ';';
            m.decimal_separator = ',';
            m.date_format = "%d.%m.%Y".into();
            m.columns = cols(&[
                ("statement_id", "Buchungs-ID"),
                ("transaction_id", "Transaktionsreferenz"),
                ("posting_date", "Buchungstag"),
                ("amount_posted", "Betrag"),
                ("currency", "Waehrung"),
                ("fee_charged", "Gebuehr"),
                ("merchant_id", "Haendler"),
                ("reference", "Verwendungszweck"),
                ("record_type", "Art"),
            ]);
        }
        Style::Jsonl => {
            m.format = SourceFormat::Jsonl;
            m.columns = cols(&[
                ("statement_id", "id"),
                ("transaction_id", "paymentRef"),
                ("posting_date", "postedAt"),
                ("amount_posted", "amount.value"),
                ("currency", "amount.currency"),
                ("fee_charged", "fee"),
                ("merchant_id", "merchant"),
                ("reference", "memo"),
                ("record_type", "kind"),
            ]);
        }
        // Fixed layouts: no columns; balances are checked against the settlement currency.
        Style::Mt940 => m.format = SourceFormat::Mt940,
        Style::Camt053 => m.format = SourceFormat::Camt053,
        Style::CsvPipeMinor => {
            m.delimiter = '|';
            m.date_format = "%Y%m%d".into();
            m.amount_unit = AmountUnit::Minor;
            m.sign_convention = SignConvention::DebitCreditColumn;
            m.columns = cols(&[
                ("statement_id", "ID"),
                ("transaction_id", "TXN"),
                ("posting_date", "DATE"),
                ("amount_posted", "AMOUNT_MINOR"),
                ("currency", "CUR"),
                ("fee_charged", "FEE_MINOR"),
                ("merchant_id", "MID"),
                ("reference", "REF"),
                ("record_type", "KIND"),
                ("direction", "DC"),
            ]);
        }
    }
    m.validate()?;
    Ok(m)
}

/// The mapping of the ledger's transaction extract.
pub fn ledger_mapping() -> Result<SourceMapping> {
    let m = SourceMapping {
        source_id: SourceId::new(LEDGER_SOURCE)?,
        kind: SourceKind::Transactions,
        format: SourceFormat::Csv,
        delimiter: ',',
        header: true,
        decimal_separator: '.',
        amount_unit: AmountUnit::Major,
        sign_convention: SignConvention::Signed,
        timezone: "UTC".into(),
        date_format: "%Y-%m-%d".into(),
        timestamp_format: None,
        default_currency: None,
        bank_id: None,
        settlement_currency: None,
        // The extract names its columns as the canonical fields; it has no direction column.
        columns: TRANSACTION_FIELDS
            .iter()
            .filter(|c| **c != "direction")
            .map(|c| (c.to_string(), c.to_string()))
            .collect(),
        encoding: Default::default(),
        transaction_codes: BTreeMap::new(),
    };
    m.validate()?;
    Ok(m)
}
