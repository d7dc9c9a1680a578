//! The daily report (design.md §14): what a close's page shows, typed ([`ReportData`], also
//! written beside the page as JSON), and the page itself ([`html::render`]): one self-contained
//! HTML file, charts as inline SVG, a table behind each chart, no script and no request.

pub mod html;
mod svg;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::analytics::FeeFigure;
use crate::analytics::forecast::{Backtest, DayForecast};
use crate::money::Currency;
use crate::records::{AnomalyKind, Direction, MismatchType, SubjectLevel};

/// Closes of history the report's charts show.
pub const HISTORY_CLOSES: usize = 30;
/// Largest open discrepancies listed per currency.
pub const LARGEST_PER_CURRENCY: usize = 10;

/// One bank's figures of one close, as the charts plot them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankPoint {
    /// The close.
    pub date: NaiveDate,
    /// Payments of the date.
    pub payments: u64,
    /// Statement lines delivered for the date.
    pub lines: u64,
    /// Lines matched per line (`None` without lines).
    pub match_rate: Option<Decimal>,
    /// Breaks the close opened.
    pub new_breaks: u64,
    /// Breaks open after the close.
    pub open_breaks: u64,
}

/// A bank's history, its aging and its fees of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankSection {
    /// The bank.
    pub bank_id: String,
    /// Its last closes, oldest first (at most [`HISTORY_CLOSES`]).
    pub history: Vec<BankPoint>,
    /// Open breaks after the close by age bucket (`analytics::AGING_LABELS`).
    pub aging: [u64; 5],
    /// Fees of the day's lines per statement currency.
    pub fees: Vec<(Currency, FeeFigure)>,
    /// The volume forecast of its next business days.
    pub forecast: Vec<DayForecast>,
    /// How the forecast method did on this bank's history.
    pub backtest: Option<Backtest>,
    /// Payments a day above which its partition is expected to outgrow the Lambda path
    /// (from its bytes per payment), when known.
    pub lambda_limit: Option<u64>,
}

/// An open break with its discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDiscrepancy {
    /// The break.
    pub break_id: String,
    /// Its bank.
    pub bank_id: String,
    /// Its merchant, when known.
    pub merchant_id: Option<String>,
    /// The kind of break.
    pub mismatch_type: MismatchType,
    /// The statement currency.
    pub currency: Currency,
    /// Posted minus expected, in `currency`.
    pub discrepancy: Decimal,
    /// Days open.
    pub age_days: Option<i32>,
}

/// An anomaly flag of the close: a row of `index/anomalies/business_date=D/` (its Parquet form
/// is in `close::insight`), of `GET /anomalies` and of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// Bank or merchant.
    pub level: SubjectLevel,
    /// The bank's or merchant's id.
    pub subject: String,
    /// What is unusual.
    pub kind: AnomalyKind,
    /// Above or below the baseline.
    pub direction: Direction,
    /// The day's figure.
    pub value: Decimal,
    /// The baseline's expectation for the day.
    pub expected: Decimal,
    /// Robust z-score.
    pub score: Decimal,
    /// Earlier closes the baseline came from.
    pub history: u32,
}

/// A statement the close could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awaited {
    /// The business date of the statement.
    pub business_date: NaiveDate,
    /// The bank.
    pub bank_id: String,
    /// Why (`NOT_DELIVERED`, …).
    pub reason: String,
}

/// A partition whose reconciliation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPartition {
    /// Its business date.
    pub business_date: NaiveDate,
    /// Its bank.
    pub bank_id: String,
    /// The error.
    pub error: String,
}

/// How many figures the anomaly detector judged and flagged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Figures judged (bank and merchant, every kind).
    pub judged: u64,
    /// Figures not judged: too little history or too few events.
    pub not_judged: u64,
}

/// Everything the report of one close shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportData {
    /// The close's business date.
    pub business_date: NaiveDate,
    /// The execution that wrote it.
    pub execution: String,
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// Per bank, by id.
    pub banks: Vec<BankSection>,
    /// The largest open discrepancies, per currency, largest first.
    pub largest_open: Vec<OpenDiscrepancy>,
    /// Statements awaited.
    pub awaiting: Vec<Awaited>,
    /// Partitions that failed.
    pub failed: Vec<FailedPartition>,
    /// The anomaly flags of the close, banks first, strongest first.
    pub anomalies: Vec<Flag>,
    /// What the detector judged.
    pub coverage: Coverage,
    /// History the report could not read (the file and why); the rest is shown.
    pub notes: Vec<String>,
}
