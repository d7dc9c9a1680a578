//! What each close learns about itself (design.md §14): the day's figures per bank and
//! merchant from the batch index (`index/metrics/`), the anomaly flags against each subject's
//! history (`index/anomalies/`), the volume forecast, and the report page
//! (`reports/business_date=D/report.html`, with the data it shows beside it as JSON).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::aggregate::BatchView;
use super::inputs::load_dimensions;
use super::summary::{CloseSummary, PartitionOutcome};
use crate::analytics::anomaly::{self, Verdict, WINDOW_DAYS};
use crate::analytics::forecast::{self, DayForecast, HORIZON};
use crate::analytics::{DayFigures, Figures, aging_bucket};
use crate::columnar::{
    Columnar, Columns, RATIO_PRECISION, RATIO_SCALE, decimal_array, ratio_type, string_array,
    write_parquet,
};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::keys::{
    METRICS, anomalies_key, bank_figures_key, merchant_figures_key, metrics_date, report_data_key,
    report_key,
};
use crate::ports::{ObjectStore, get_opt};
use crate::reconcile::RowKind;
use crate::records::{BreakStatus, ReconciledStatus, SubjectLevel};
use crate::report::{
    Awaited, BankPoint, BankSection, Coverage, FailedPartition, Flag, HISTORY_CLOSES,
    LARGEST_PER_CURRENCY, OpenDiscrepancy, ReportData, html,
};

// The flags are the rows of `index/anomalies/business_date=D/` as the report shows them.
impl Columnar for Flag {
    const TABLE: &'static str = "anomalies";
    const CODED: &'static [&'static str] = &["level", "kind", "direction"];

    fn schema() -> SchemaRef {
        let f = |n: &str, t: DataType| Field::new(n, t, false);
        Arc::new(Schema::new(vec![
            f("level", DataType::Utf8),
            f("subject", DataType::Utf8),
            f("kind", DataType::Utf8),
            f("direction", DataType::Utf8),
            f("value", ratio_type()),
            f("expected", ratio_type()),
            f("score", ratio_type()),
            f("history", DataType::Int32),
        ]))
    }

    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let dec = |g: fn(&Flag) -> Decimal| {
            decimal_array(
                rows.iter().map(|r| Some(g(r))),
                RATIO_PRECISION,
                RATIO_SCALE,
            )
        };
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![
                string_array(rows.iter().map(|r| r.level.as_str())),
                string_array(rows.iter().map(|r| r.subject.as_str())),
                string_array(rows.iter().map(|r| r.kind.as_str())),
                string_array(rows.iter().map(|r| r.direction.as_str())),
                dec(|r| r.value)?,
                dec(|r| r.expected)?,
                dec(|r| r.score)?,
                Arc::new(
                    rows.iter()
                        .map(|r| Some(i32::try_from(r.history).unwrap_or(i32::MAX)))
                        .collect::<Int32Array>(),
                ),
            ],
        )?)
    }

    fn from_batch(b: &RecordBatch) -> Result<Vec<Self>> {
        let c = Columns::new(Self::TABLE, b);
        let s = |n| c.strings(n);
        let (level, subject, kind, dir) = (s("level")?, s("subject")?, s("kind")?, s("direction")?);
        let (value, expected, score) = (
            c.decimals("value")?,
            c.decimals("expected")?,
            c.decimals("score")?,
        );
        let history = b
            .column_by_name("history")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| Error::Schema {
                table: Self::TABLE,
                column: "history".into(),
                reason: "missing or not Int32".into(),
            })?;
        (0..b.num_rows())
            .map(|i| {
                Ok(Flag {
                    level: c.parse("level", c.str_at(level, "level", i)?)?,
                    subject: c.str_at(subject, "subject", i)?.to_string(),
                    kind: c.parse("kind", c.str_at(kind, "kind", i)?)?,
                    direction: c.parse("direction", c.str_at(dir, "direction", i)?)?,
                    value: c.dec_at(value, "value", i)?.normalize(),
                    expected: c.dec_at(expected, "expected", i)?.normalize(),
                    score: c.dec_at(score, "score", i)?.normalize(),
                    history: u32::try_from(history.value(i)).map_err(|_| Error::Schema {
                        table: Self::TABLE,
                        column: "history".into(),
                        reason: format!("row {i}: {} closes is negative", history.value(i)),
                    })?,
                })
            })
            .collect()
    }
}

#[derive(Default)]
struct Tally<'a> {
    figures: Figures,
    new: HashSet<&'a str>,
    open: HashMap<&'a str, i32>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, date: NaiveDate, r: &BatchView<'a>) {
        let f = &mut self.figures;
        let today = r.item_date == date;
        match r.row_kind {
            RowKind::Transaction if today => f.payments += 1,
            RowKind::StatementLine if today => {
                f.lines += 1;
                if r.reconciled_status == ReconciledStatus::Matched {
                    f.lines_matched += 1;
                }
                if let Some(charged) = r.fee_charged {
                    let fee = f.fees.entry(r.currency).or_default();
                    fee.lines += 1;
                    fee.charged += charged;
                    if let Some(v) = r.fee_variance.filter(|v| !v.is_zero()) {
                        fee.lines_with_variance += 1;
                        fee.variance += v.abs();
                    }
                }
            }
            _ => {}
        }
        let persisting = r.first_seen.is_some_and(|f| f < date);
        if r.reconciled_status != ReconciledStatus::Pending && !persisting {
            f.decided += 1;
        }
        if let Some(id) = r.break_id {
            if r.first_seen == Some(date) {
                self.new.insert(id);
            }
            if r.break_status == Some(BreakStatus::Open) {
                self.open.entry(id).or_insert(r.age_days.unwrap_or(0));
            }
        }
    }

    fn finish(mut self) -> Figures {
        self.figures.new_breaks = self.new.len() as u64;
        self.figures.open_breaks = self.open.len() as u64;
        for age in self.open.values() {
            self.figures.aging[aging_bucket(*age)] += 1;
        }
        self.figures
    }
}

/// The figures of every bank and merchant of the close of `date` from its batch index rows
/// (every partition of the date, carried items included), and its largest open discrepancies.
pub fn figures_of(date: NaiveDate, batch: &[BatchView<'_>]) -> (DayFigures, Vec<OpenDiscrepancy>) {
    let mut banks: BTreeMap<&str, Tally<'_>> = BTreeMap::new();
    let mut merchants: BTreeMap<&str, Tally<'_>> = BTreeMap::new();
    let mut largest: HashMap<&str, OpenDiscrepancy> = HashMap::new();
    for r in batch {
        banks.entry(r.bank_id).or_default().add(date, r);
        if let Some(m) = r.merchant_id {
            merchants.entry(m).or_default().add(date, r);
        }
        if let (Some(id), Some(BreakStatus::Open), Some(d)) =
            (r.break_id, r.break_status, r.discrepancy)
        {
            let keep = largest
                .get(id)
                .is_none_or(|o| d.abs() > o.discrepancy.abs());
            if keep && !d.is_zero() {
                largest.insert(
                    id,
                    OpenDiscrepancy {
                        break_id: id.to_string(),
                        bank_id: r.bank_id.to_string(),
                        merchant_id: r.merchant_id.map(str::to_string),
                        mismatch_type: r.mismatch_type,
                        currency: r.currency,
                        discrepancy: d,
                        age_days: r.age_days,
                    },
                );
            }
        }
    }
    let mut by_currency: BTreeMap<crate::money::Currency, Vec<OpenDiscrepancy>> = BTreeMap::new();
    for d in largest.into_values() {
        by_currency.entry(d.currency).or_default().push(d);
    }
    let mut top = Vec::new();
    for (_, mut v) in by_currency {
        v.sort_by(|a, b| {
            b.discrepancy
                .abs()
                .cmp(&a.discrepancy.abs())
                .then_with(|| a.break_id.cmp(&b.break_id))
        });
        top.extend(v.into_iter().take(LARGEST_PER_CURRENCY));
    }
    let finish = |m: BTreeMap<&str, Tally<'_>>| {
        m.into_iter()
            .map(|(k, t)| (k.to_string(), t.finish()))
            .collect()
    };
    (
        DayFigures {
            business_date: date,
            banks: finish(banks),
            merchants: finish(merchants),
        },
        top,
    )
}

/// Each bank's open breaks and their aging from the break registry its close of the date left
/// (every break open after the close, whichever close first saw it).
pub async fn open_breaks_of<S: ObjectStore>(store: &S, figures: &mut DayFigures) -> Result<()> {
    let date = BusinessDate::from_date(figures.business_date)?;
    for (bank, f) in figures.banks.iter_mut() {
        let key = crate::keys::registry_key(date, &BankId::new(bank.as_str())?);
        let Some(bytes) = get_opt(store, &key).await? else {
            continue;
        };
        let registry: crate::reconcile::BreakRegistry =
            serde_json::from_slice(&bytes).map_err(|e| Error::Invariant(format!("{key}: {e}")))?;
        f.open_breaks = registry.open.len() as u64;
        f.aging = [0; 5];
        for first in registry.open.values() {
            let age = (figures.business_date - *first).num_days();
            f.aging[aging_bucket(i32::try_from(age).unwrap_or(i32::MAX))] += 1;
        }
    }
    Ok(())
}

/// Writes the figures of a close (banks and merchants apart: the planner reads only banks).
pub async fn write_figures<S: ObjectStore>(store: &S, f: &DayFigures) -> Result<()> {
    let date = BusinessDate::from_date(f.business_date)?;
    let banks = DayFigures {
        merchants: BTreeMap::new(),
        ..f.clone()
    };
    let merchants = DayFigures {
        banks: BTreeMap::new(),
        ..f.clone()
    };
    for (key, part) in [
        (bank_figures_key(date), banks),
        (merchant_figures_key(date), merchants),
    ] {
        let bytes = serde_json::to_vec(&part)
            .map_err(|e| Error::Invariant(format!("figures as JSON: {e}")))?;
        store.put(&key, Bytes::from(bytes)).await?;
    }
    Ok(())
}

/// The figures of the closes before `date` within [`WINDOW_DAYS`], oldest first (banks, and
/// merchants when asked), and a note for each file that could not be read (the rest is used).
pub async fn read_history<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
    merchants: bool,
) -> Result<(Vec<DayFigures>, Vec<String>)> {
    let from = date.date() - Days::new(WINDOW_DAYS as u64);
    let mut dates: Vec<BusinessDate> = store
        .list(METRICS)
        .await?
        .iter()
        .filter(|o| o.key.ends_with("/banks.json"))
        .filter_map(|o| metrics_date(&o.key))
        .filter(|d| d.date() >= from && *d < date)
        .collect();
    dates.sort();
    dates.dedup();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    for d in dates {
        let mut keys = vec![bank_figures_key(d)];
        if merchants {
            keys.push(merchant_figures_key(d));
        }
        let mut day = DayFigures {
            business_date: d.date(),
            ..DayFigures::default()
        };
        for key in keys {
            let parsed = get_opt(store, &key)
                .await?
                .map(|b| serde_json::from_slice::<DayFigures>(&b));
            match parsed {
                Some(Ok(part)) => {
                    day.banks.extend(part.banks);
                    day.merchants.extend(part.merchants);
                }
                Some(Err(e)) => notes.push(format!(
                    "{key}: unreadable ({e}); that close is left out of the history"
                )),
                None => {}
            }
        }
        out.push(day);
    }
    Ok((out, notes))
}

/// The flags of `today` against `history` for every bank and merchant, banks first, strongest
/// first, and how many figures were judged.
pub fn detect(history: &[DayFigures], today: &DayFigures) -> (Vec<Flag>, Coverage) {
    let mut rows = Vec::new();
    let mut coverage = Coverage::default();
    type Subjects = fn(&DayFigures) -> &BTreeMap<String, Figures>;
    let levels: [(SubjectLevel, Subjects); 2] = [
        (SubjectLevel::Bank, |d| &d.banks),
        (SubjectLevel::Merchant, |d| &d.merchants),
    ];
    for (level, of) in levels {
        for (subject, figures) in of(today) {
            let past: Vec<(NaiveDate, &Figures)> = history
                .iter()
                .filter_map(|d| of(d).get(subject).map(|f| (d.business_date, f)))
                .collect();
            for (_, verdict) in anomaly::assess(level, &past, (today.business_date, figures)) {
                match verdict {
                    Verdict::NotJudged => coverage.not_judged += 1,
                    Verdict::Normal => coverage.judged += 1,
                    Verdict::Flagged(f) => {
                        coverage.judged += 1;
                        rows.push(Flag {
                            level,
                            subject: subject.clone(),
                            kind: f.kind,
                            direction: f.direction,
                            value: f.value,
                            expected: f.expected,
                            score: f.score,
                            history: f.history,
                        });
                    }
                }
            }
        }
    }
    // Banks first (a bank's anomaly usually shows in its merchants too), strongest first.
    rows.sort_by(|a, b| {
        a.level
            .cmp(&b.level)
            .then_with(|| b.score.abs().cmp(&a.score.abs()))
            .then_with(|| (&a.subject, a.kind).cmp(&(&b.subject, b.kind)))
    });
    (rows, coverage)
}

/// A bank's daily payments in `history` then `today`, oldest first.
pub fn payments_series(
    history: &[DayFigures],
    today: Option<&DayFigures>,
    bank: &str,
) -> Vec<(NaiveDate, Decimal)> {
    history
        .iter()
        .chain(today)
        .filter_map(|d| {
            d.banks
                .get(bank)
                .map(|f| (d.business_date, Decimal::from(f.payments)))
        })
        .collect()
}

/// The next [`HORIZON`] business days of a bank after `date`.
pub fn next_business_days(calendar: &crate::calendar::Calendar, date: NaiveDate) -> Vec<NaiveDate> {
    (1..=HORIZON)
        .map(|n| calendar.add_business_days(date, n as u32))
        .collect()
}

/// A bank's Lambda capacity against its volume forecast: the planner's warning when a partition
/// of the next business days is expected to outgrow the Lambda path (design.md §14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// The bank.
    pub bank_id: BankId,
    /// Input bytes per payment of its latest partition with figures.
    pub bytes_per_payment: u64,
    /// Payments a day its partition takes on the Lambda path.
    pub lambda_limit: u64,
    /// The forecast day with the highest upper end.
    pub peak: DayForecast,
    /// Whether that upper end passes the limit: the partition would go to EMR.
    pub outgrows: bool,
}

/// Each bank's [`Capacity`]: `sizes` are the input bytes of its partitions in the plan's
/// window, `max_bytes` the Lambda path's limit. Banks without figures yet are left out.
pub async fn capacity<S: ObjectStore>(
    store: &S,
    dims: &super::inputs::Dimensions,
    date: BusinessDate,
    sizes: &BTreeMap<BankId, Vec<(BusinessDate, u64)>>,
    max_bytes: u64,
) -> Result<Vec<Capacity>> {
    let (history, notes) = read_history(store, date, false).await?;
    for note in notes {
        tracing::warn!(%note, "figures left out of the forecast");
    }
    let mut out = Vec::new();
    for (bank, parts) in sizes {
        let latest = parts.iter().rev().find_map(|(d, bytes)| {
            history
                .iter()
                .find(|h| h.business_date == d.date())
                .and_then(|h| h.banks.get(bank.as_str()))
                .filter(|f| f.payments > 0)
                .map(|f| (*bytes, f.payments))
        });
        let Some((bytes, payments)) = latest else {
            continue;
        };
        let per = (bytes / payments).max(1);
        let limit = max_bytes / per;
        let series = payments_series(&history, None, bank.as_str());
        let days = next_business_days(&dims.calendar(bank), date.date());
        let upper = |f: &DayForecast| f.high.unwrap_or(f.expected);
        let Some(peak) = forecast::forecast(&series, &days)
            .into_iter()
            .max_by(|a, b| upper(a).cmp(&upper(b)))
        else {
            continue;
        };
        let outgrows = upper(&peak) > Decimal::from(limit);
        if outgrows {
            tracing::warn!(
                bank = %bank, day = %peak.date, payments = %upper(&peak), lambda_limit = limit,
                "the forecast passes the Lambda path's limit: that partition will run on EMR"
            );
        }
        out.push(Capacity {
            bank_id: bank.clone(),
            bytes_per_payment: per,
            lambda_limit: limit,
            peak,
            outgrows,
        });
    }
    Ok(out)
}

/// The report of the close of `date` built again from what that close wrote (its last run
/// summary, batch index, break registries and figures history): `recon report`.
pub async fn rebuild<S: ObjectStore>(store: &S, date: BusinessDate) -> Result<Published> {
    let mut summaries = Vec::new();
    for o in store.list(&crate::keys::runs_prefix(date)).await? {
        if o.key.ends_with(".json") {
            let s: CloseSummary = serde_json::from_slice(&store.get(&o.key).await?)
                .map_err(|e| Error::Invariant(format!("{}: {e}", o.key)))?;
            summaries.push(s);
        }
    }
    // The latest execution: `close-D-10` after `close-D-9`.
    summaries
        .sort_by(|a, b| (a.execution.len(), &a.execution).cmp(&(b.execution.len(), &b.execution)));
    let summary = summaries.pop().ok_or_else(|| Error::NotFound {
        key: format!(
            "{}*.json (no close of {date} ran)",
            crate::keys::runs_prefix(date)
        ),
    })?;
    let data = super::aggregate::read_columns_under::<_, crate::reconcile::IndexRow>(
        store,
        &crate::keys::batch_date_prefix(date),
        super::aggregate::BATCH_COLUMNS,
    )
    .await?;
    let batch = super::aggregate::batch_views(&data)?;
    let (mut figures, largest) = figures_of(date.date(), &batch);
    open_breaks_of(store, &mut figures).await?;
    // The plan's Lambda limits as the close's page showed them.
    let limits = match get_opt(store, &report_data_key(date)).await? {
        Some(b) => serde_json::from_slice::<ReportData>(&b)
            .map_err(|e| Error::Invariant(format!("{}: {e}", report_data_key(date))))?
            .banks
            .into_iter()
            .filter_map(|b| b.lambda_limit.map(|l| (b.bank_id, l)))
            .collect(),
        None => BTreeMap::new(),
    };
    publish(store, &summary, &figures, largest, &limits).await
}

/// What [`publish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Anomaly flags of the close.
    pub anomalies: u64,
    /// Where the page is.
    pub report_key: String,
}

/// Flags, forecasts and the report of the close `summary` describes, from `today`'s figures
/// and those of the closes before; `lambda_limits` are the plan's payments a day each bank's
/// partition takes on the Lambda path ([`Capacity::lambda_limit`]).
pub async fn publish<S: ObjectStore>(
    store: &S,
    summary: &CloseSummary,
    today: &DayFigures,
    largest_open: Vec<OpenDiscrepancy>,
    lambda_limits: &BTreeMap<String, u64>,
) -> Result<Published> {
    let date = summary.business_date;
    let (history, notes) = read_history(store, date, true).await?;
    let (rows, coverage) = detect(&history, today);
    let flagged = rows.len() as u64;
    store
        .put(&anomalies_key(date), Bytes::from(write_parquet(&rows)?))
        .await?;
    let dims = load_dimensions(store).await?;
    let mut banks = Vec::new();
    for (bank, figures) in &today.banks {
        let points: Vec<BankPoint> = history
            .iter()
            .chain([today])
            .filter_map(|d| {
                d.banks.get(bank).map(|f| BankPoint {
                    date: d.business_date,
                    payments: f.payments,
                    lines: f.lines,
                    match_rate: f.match_rate(),
                    new_breaks: f.new_breaks,
                    open_breaks: f.open_breaks,
                })
            })
            .collect();
        let points = points[points.len().saturating_sub(HISTORY_CLOSES)..].to_vec();
        let series = payments_series(&history, Some(today), bank);
        let calendar = dims.calendar(&BankId::new(bank.as_str())?);
        let days = next_business_days(&calendar, date.date());
        banks.push(BankSection {
            bank_id: bank.clone(),
            history: points,
            aging: figures.aging,
            fees: figures.fees.iter().map(|(c, f)| (*c, f.clone())).collect(),
            forecast: forecast::forecast(&series, &days),
            backtest: forecast::backtest(&series),
            lambda_limit: lambda_limits.get(bank).copied(),
        });
    }
    let failed = summary
        .partitions
        .iter()
        .filter_map(|p| match p {
            PartitionOutcome::Failed(f) => Some(FailedPartition {
                business_date: f.business_date.date(),
                bank_id: f.bank_id.to_string(),
                error: format!("{}: {}", f.error, f.cause),
            }),
            _ => None,
        })
        .collect();
    let data = ReportData {
        business_date: date.date(),
        execution: summary.execution.clone(),
        status: serde_json::to_value(summary.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        banks,
        largest_open,
        awaiting: summary
            .awaiting_deliveries
            .iter()
            .map(|a| Awaited {
                business_date: a.business_date.date(),
                bank_id: a.bank_id.to_string(),
                reason: a.reason.as_str().to_string(),
            })
            .collect(),
        failed,
        anomalies: rows,
        coverage,
        notes,
    };
    let json = serde_json::to_vec_pretty(&data)
        .map_err(|e| Error::Invariant(format!("report data as JSON: {e}")))?;
    store.put(&report_data_key(date), Bytes::from(json)).await?;
    let key = report_key(date);
    store.put(&key, Bytes::from(html::render(&data))).await?;
    Ok(Published {
        anomalies: flagged,
        report_key: key,
    })
}
