use chrono::{Days, NaiveDate};
use rust_decimal::dec;

use super::*;
use crate::analytics::FeeFigure;
use crate::analytics::forecast::DayForecast;
use crate::money::Currency;
use crate::records::{MismatchType, SubjectLevel};
use crate::report::{Awaited, BankPoint, Coverage, Flag, OpenDiscrepancy};

fn data() -> Result<ReportData, String> {
    let d0 = NaiveDate::from_ymd_opt(2026, 11, 1).ok_or("date")?;
    let eur = Currency::new("EUR").map_err(|e| e.to_string())?;
    let history: Vec<BankPoint> = (0..30u64)
        .map(|i| BankPoint {
            date: d0 + Days::new(i),
            payments: 1000 + i,
            lines: 900,
            match_rate: Some(dec!(0.98)),
            new_breaks: 5 + i % 3,
            open_breaks: 20,
        })
        .collect();
    let today = d0 + Days::new(29);
    Ok(ReportData {
        business_date: today,
        execution: "close-2026-11-30-1".into(),
        status: "SUCCEEDED".into(),
        banks: vec![BankSection {
            bank_id: "bank_01".into(),
            history,
            aging: [10, 5, 3, 1, 1],
            fees: vec![(
                eur,
                FeeFigure {
                    lines: 900,
                    lines_with_variance: 9,
                    charged: dec!(1234.56),
                    variance: dec!(12.34),
                },
            )],
            forecast: vec![DayForecast {
                date: today + Days::new(1),
                expected: dec!(1020),
                low: Some(dec!(950)),
                high: Some(dec!(1100)),
            }],
            backtest: None,
            lambda_limit: Some(1050),
        }],
        largest_open: vec![OpenDiscrepancy {
            break_id: "brk-1".into(),
            bank_id: "bank_01".into(),
            merchant_id: Some("m_1".into()),
            mismatch_type: MismatchType::Amount,
            currency: eur,
            discrepancy: dec!(-12.50),
            age_days: Some(3),
        }],
        awaiting: vec![Awaited {
            business_date: today,
            bank_id: "bank_02".into(),
            reason: "NOT_DELIVERED".into(),
        }],
        failed: Vec::new(),
        anomalies: vec![Flag {
            level: SubjectLevel::Bank,
            subject: "bank_01".into(),
            kind: AnomalyKind::FeeVariance,
            direction: Direction::High,
            value: dec!(0.2),
            expected: dec!(0.01),
            score: dec!(12.5),
            history: 28,
        }],
        coverage: Coverage {
            judged: 40,
            not_judged: 2,
        },
        notes: vec!["index/metrics/x: <script>alert(1)</script>".into()],
    })
}

#[test]
fn the_page_has_every_section_and_nothing_that_loads() -> Result<(), String> {
    let page = render(&data()?);
    for id in [
        "headline",
        "anomalies",
        "anomaly-table",
        "match-rate",
        "breaks",
        "aging",
        "largest-table",
        "fees-table",
        "awaiting-table",
        "forecast-table",
        "notes",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.contains(CSP));
    assert!(!page.contains("<script"));
    assert!(page.contains("&lt;script&gt;"));
    assert!(!page.contains("src="));
    assert!(!page.contains("http://") && !page.contains("https://"));
    // Each chart has an accessible name and a table.
    assert_eq!(
        page.matches("<svg").count(),
        page.matches("role=\"img\"").count()
    );
    assert_eq!(page.matches("<svg").count(), 5);
    // The forecast day whose upper end passes the Lambda limit is routed to EMR.
    assert!(page.contains("beyond the Lambda path"));
    assert!(page.contains("▲ high"));
    Ok(())
}

#[test]
fn numbers_are_grouped_and_escaped() {
    assert_eq!(count(12_345_678), "12\u{2009}345\u{2009}678");
    assert_eq!(count(999), "999");
    assert_eq!(pct(dec!(0.98765), 1), "98.8\u{a0}%");
    assert_eq!(esc("a<b&\"c'"), "a&lt;b&amp;&quot;c&#39;");
}
