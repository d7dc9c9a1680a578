//! The static side of a generated day: banks with their statement styles, merchants, users,
//! policies, fee rules, match tolerances and the day's FX table.

use chrono::NaiveDate;
use recon_shared::ids::{BankId, BusinessDate, MerchantId, PolicyId, RuleId};
use recon_shared::money::{Currency, FX_RATE_SCALE, FxTable};
use recon_shared::records::{FeeRule, Merchant, Policy, PolicyType, RiskLevel};
use recon_shared::{Error, Result};
use rust_decimal::Decimal;
use serde_json::json;

use super::rng::Rng;

/// How a bank lays out its statement files (one `config/sources/*.json` each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Comma CSV, ISO dates, major units with a dot, amounts already in the settlement currency.
    CsvComma,
    /// Semicolon CSV, German headers, `dd.mm.yyyy`, decimal comma, foreign lines in their own
    /// currency (converted by the normalizer).
    CsvSemicolon,
    /// JSON lines, nested amount object, local timestamps with offset, foreign lines in their
    /// own currency.
    Jsonl,
    /// Pipe CSV, `yyyymmdd`, integer minor units, unsigned amounts with a C/D column.
    CsvPipeMinor,
    /// SWIFT MT940 messages with balances, structured `:86:`; amounts in the settlement
    /// currency.
    Mt940,
    /// ISO 20022 camt.053.001.08 XML with balances; amounts in the settlement currency.
    Camt053,
}

impl Style {
    pub const ALL: [Style; 6] = [
        Style::CsvComma,
        Style::CsvSemicolon,
        Style::Jsonl,
        Style::CsvPipeMinor,
        Style::Mt940,
        Style::Camt053,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Style::CsvComma => "csv_comma",
            Style::CsvSemicolon => "csv_semicolon",
            Style::Jsonl => "jsonl",
            Style::CsvPipeMinor => "csv_pipe_minor",
            Style::Mt940 => "mt940",
            Style::Camt053 => "camt053",
        }
    }

    /// Whether cross-currency lines are sent in the transaction's currency.
    pub fn posts_original_currency(self) -> bool {
        matches!(self, Style::CsvSemicolon | Style::Jsonl)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Style::Jsonl => "jsonl",
            Style::Mt940 => "sta",
            Style::Camt053 => "xml",
            Style::CsvComma | Style::CsvSemicolon | Style::CsvPipeMinor => "csv",
        }
    }
}

pub struct Bank {
    pub id: BankId,
    pub currency: Currency,
    pub timezone: &'static str,
    pub style: Style,
}

pub struct World {
    /// The (first) business date.
    pub date: BusinessDate,
    pub banks: Vec<Bank>,
    /// Cumulative volume weights of the banks (Zipf: a few carry most).
    pub bank_weights: Vec<u64>,
    pub merchants: Vec<Merchant>,
    /// Acquiring bank of each merchant.
    pub merchant_bank: Vec<usize>,
    /// Merchants of each bank.
    pub bank_merchants: Vec<Vec<u32>>,
    pub users: usize,
    pub policies: Vec<Policy>,
    pub fee_rules: Vec<FeeRule>,
    pub currencies: Vec<Currency>,
    pub fx: FxTable,
    /// Cumulative volume weights of each bank's merchants, in `bank_merchants` order (Zipf:
    /// a few large merchants, a long tail of small ones); empty in the one-day world, whose
    /// merchants are picked uniformly.
    pub merchant_weights: Vec<Vec<u64>>,
    /// Whether each merchant is paid by payouts (multi-day world; all false in the one-day one).
    pub payout: Vec<bool>,
}

/// Most payments a day a merchant paid by payouts may expect, so that its open payments stay
/// well within one many-to-one search (`max_group_candidates`).
pub const PAYOUT_MAX_DAILY: u64 = 10;

const BANK_CURRENCIES: [(&str, &str); 8] = [
    ("USD", "America/New_York"),
    ("EUR", "Europe/Berlin"),
    ("GBP", "Europe/London"),
    ("USD", "America/Chicago"),
    ("EUR", "Europe/Paris"),
    ("JPY", "Asia/Tokyo"),
    ("CHF", "Europe/Zurich"),
    ("CAD", "America/Toronto"),
];

/// Units of USD per unit of each currency, exact.
const USD_PER_UNIT: [(&str, i64, u32); 6] = [
    ("USD", 1, 0),
    ("EUR", 10_845, 4),
    ("GBP", 12_710, 4),
    ("JPY", 66_225, 7),
    ("CHF", 11_320, 4),
    ("CAD", 7_280, 4),
];

pub const CATEGORIES: [(&str, RiskLevel); 10] = [
    ("grocery", RiskLevel::Low),
    ("electronics", RiskLevel::Medium),
    ("travel", RiskLevel::Medium),
    ("restaurants", RiskLevel::Low),
    ("digital_goods", RiskLevel::Medium),
    ("fashion", RiskLevel::Low),
    ("gambling", RiskLevel::High),
    ("fuel", RiskLevel::Low),
    ("pharmacy", RiskLevel::Low),
    ("marketplace", RiskLevel::Medium),
];

const NAME_A: [&str; 12] = [
    "Blue", "North", "Swift", "Green", "Urban", "Prime", "Silver", "Bright", "Coastal", "Metro",
    "Golden", "Nova",
];
const NAME_B: [&str; 12] = [
    "Market",
    "Outfitters",
    "Travel",
    "Foods",
    "Digital",
    "Pharmacy",
    "Garage",
    "Books",
    "Electronics",
    "Kitchen",
    "Games",
    "Supply",
];

fn country_for(currency: &str, rng: &mut Rng) -> &'static str {
    match currency {
        "USD" => "US",
        "EUR" => {
            const EU: [&str; 5] = ["DE", "FR", "NL", "ES", "IT"];
            EU[rng.below(EU.len() as u64) as usize]
        }
        "GBP" => "GB",
        "JPY" => "JP",
        "CHF" => "CH",
        "CAD" => "CA",
        _ => "US",
    }
}

fn date(s: &str) -> Result<NaiveDate> {
    Ok(BusinessDate::parse(s)?.date())
}

impl World {
    /// The world of the one-day generator: `transactions / 400` merchants picked uniformly.
    pub fn new(
        date: BusinessDate,
        banks: usize,
        transactions: usize,
        rng: &mut Rng,
    ) -> Result<World> {
        Self::build(date, banks, transactions, transactions / 400, None, rng)
    }

    /// The world of the multi-day generator for `transactions` payments a day: twenty times the
    /// merchants, Zipf-sized within their bank, and of the small ones (at most
    /// [`PAYOUT_MAX_DAILY`] payments a day) a share `payout_bp` (basis points) paid by
    /// payouts. Fee rules keep one rule in force from `date` for 45 days whatever the year.
    pub fn for_span(
        date: BusinessDate,
        banks: usize,
        transactions: usize,
        payout_bp: u32,
        days: u32,
        rng: &mut Rng,
    ) -> Result<World> {
        let mut w = Self::build(
            date,
            banks,
            transactions,
            transactions / 20,
            Some(days),
            rng,
        )?;
        let total = *w.bank_weights.last().unwrap_or(&1);
        let mut prev = 0;
        let mut payout = vec![false; w.merchants.len()];
        let mut weights = Vec::with_capacity(w.banks.len());
        for (b, ms) in w.bank_merchants.iter().enumerate() {
            let bank_weight = w.bank_weights[b] - prev;
            prev = w.bank_weights[b];
            let mut acc = 0u64;
            let cum: Vec<u64> = (0..ms.len() as u64)
                .map(|r| {
                    acc += 1_000_000 / (r + 1);
                    acc
                })
                .collect();
            let bank_total = acc.max(1);
            for (r, m) in ms.iter().enumerate() {
                let own = 1_000_000 / (r as u64 + 1);
                // Expected payments a day: transactions x bank share x merchant share.
                let daily =
                    u128::from(transactions as u64) * u128::from(bank_weight) * u128::from(own)
                        / (u128::from(total) * u128::from(bank_total));
                payout[*m as usize] =
                    r > 0 && daily <= u128::from(PAYOUT_MAX_DAILY) && rng.chance(payout_bp);
            }
            weights.push(cum);
        }
        w.merchant_weights = weights;
        w.payout = payout;
        Ok(w)
    }

    fn build(
        date: BusinessDate,
        banks: usize,
        transactions: usize,
        merchants: usize,
        span: Option<u32>,
        rng: &mut Rng,
    ) -> Result<World> {
        if banks == 0 || banks > 99 {
            return Err(Error::InvalidConfig {
                name: "--banks".into(),
                reason: "must be between 1 and 99".into(),
            });
        }
        let banks: Vec<Bank> = (0..banks)
            .map(|i| {
                let (cur, tz) = BANK_CURRENCIES[i % BANK_CURRENCIES.len()];
                Ok(Bank {
                    id: BankId::new(format!("bank_{:02}", i + 1))?,
                    currency: Currency::new(cur)?,
                    timezone: tz,
                    style: Style::ALL[i % Style::ALL.len()],
                })
            })
            .collect::<Result<_>>()?;
        let mut acc = 0;
        let bank_weights: Vec<u64> = (0..banks.len())
            .map(|i| {
                acc += 1_000_000 / (i as u64 + 1);
                acc
            })
            .collect();

        let n_merchants = merchants.clamp(banks.len().max(20), 5000);
        let mut merchants = Vec::with_capacity(n_merchants);
        let mut merchant_bank = Vec::with_capacity(n_merchants);
        let mut bank_merchants = vec![Vec::new(); banks.len()];
        for i in 0..n_merchants {
            let bank = if i < banks.len() {
                i
            } else {
                rng.weighted(&bank_weights)
            };
            let (category, risk) = *rng.pick(&CATEGORIES);
            let risk = if rng.chance(500) {
                RiskLevel::High
            } else {
                risk
            };
            let onboarding = date.date() - chrono::Days::new(rng.range(30, 3000) as u64);
            merchants.push(Merchant {
                merchant_id: MerchantId::new(format!("M{:06}", i + 1))?,
                merchant_name: format!("{} {} {}", rng.pick(&NAME_A), rng.pick(&NAME_B), i + 1),
                category: category.to_string(),
                risk_level: risk,
                onboarding_date: onboarding,
                country: country_for(banks[bank].currency.code(), rng).to_string(),
                acquirer_bank_id: Some(banks[bank].id.clone()),
            });
            merchant_bank.push(bank);
            bank_merchants[bank].push(i as u32);
        }

        let currencies = USD_PER_UNIT
            .iter()
            .map(|(c, _, _)| Currency::new(c))
            .collect::<Result<Vec<_>>>()?;
        let fx = fx_table(&currencies, rng)?;
        let fee_rules = fee_rules(&banks, date, span, rng)?;
        let policies = policies(&merchants)?;
        Ok(World {
            date,
            banks,
            bank_weights,
            merchants,
            merchant_bank,
            bank_merchants,
            users: (transactions / 8).max(50),
            policies,
            fee_rules,
            currencies,
            fx,
            merchant_weights: Vec::new(),
            payout: vec![false; n_merchants],
        })
    }
}

/// All ordered pairs, from USD cross rates moved by a small daily jitter; 10 decimal places.
pub fn fx_table(currencies: &[Currency], rng: &mut Rng) -> Result<FxTable> {
    let usd: Vec<Decimal> = USD_PER_UNIT
        .iter()
        .map(|(c, m, s)| {
            let base = Decimal::new(*m, *s);
            if *c == "USD" {
                base
            } else {
                base * (Decimal::ONE + Decimal::new(rng.range(-150, 150), 4))
            }
        })
        .collect();
    let mut fx = FxTable::default();
    for (i, b) in currencies.iter().enumerate() {
        for (j, q) in currencies.iter().enumerate() {
            if i != j {
                let rate = (usd[i] / usd[j]).round_dp(FX_RATE_SCALE);
                fx.insert(*b, *q, rate)?;
            }
        }
    }
    Ok(fx)
}

/// Per bank: an expired rule, the rule in force, travel and gambling overrides, and the rule
/// that starts in 45 days (or two weeks after the last day of a longer world). With `span`
/// (the multi-day world, its number of days) the rule in force and the
/// overrides start no later than `day`, so no rule changes within the generated days.
fn fee_rules(
    banks: &[Bank],
    day: BusinessDate,
    span_days: Option<u32>,
    rng: &mut Rng,
) -> Result<Vec<FeeRule>> {
    let span = span_days.is_some();
    let next_in = u64::from(span_days.unwrap_or(0) + 14).max(45);
    let mut rules = Vec::new();
    let not_after_day = |d: NaiveDate| if span { d.min(day.date()) } else { d };
    let current_from = not_after_day(date("2026-01-01")?);
    let expired_to = current_from.pred_opt().unwrap_or(current_from);
    let expired_from = if span {
        date("2024-01-01")?.min(expired_to - chrono::Days::new(365))
    } else {
        date("2024-01-01")?
    };
    let overrides_from = not_after_day(date("2025-06-01")?);
    for bank in banks {
        let fixed = if bank.currency.exponent() == 0 {
            Decimal::from(rng.range(10, 40))
        } else {
            bank.currency.from_minor(rng.range(5, 35))
        };
        let mk = |id: String,
                  cat: Option<&str>,
                  pct: Decimal,
                  from: NaiveDate,
                  to: Option<NaiveDate>|
         -> Result<FeeRule> {
            Ok(FeeRule {
                rule_id: RuleId::new(id)?,
                bank_id: Some(bank.id.clone()),
                network: Some(
                    if bank.currency.code() == "JPY" {
                        "JCB"
                    } else {
                        "VISA"
                    }
                    .to_string(),
                ),
                merchant_category: cat.map(str::to_string),
                percent: pct,
                fixed,
                currency: bank.currency,
                effective_from: from,
                effective_to: to,
            })
        };
        let b = bank.id.as_str();
        rules.push(mk(
            format!("{b}-base-2024"),
            None,
            Decimal::new(rng.range(900, 1900), 3),
            expired_from,
            Some(expired_to),
        )?);
        // The next rule starts in 45 days or after the world; the current one ends the day before (two rules in
        // force for one bank and category on one date are refused).
        let next_year = day.date() + chrono::Days::new(next_in);
        rules.push(mk(
            format!("{b}-base-2026"),
            None,
            Decimal::new(rng.range(1200, 2900), 3),
            current_from,
            next_year.pred_opt(),
        )?);
        rules.push(mk(
            format!("{b}-travel"),
            Some("travel"),
            Decimal::new(rng.range(2500, 3500), 3),
            overrides_from,
            None,
        )?);
        rules.push(mk(
            format!("{b}-gambling"),
            Some("gambling"),
            Decimal::new(rng.range(3500, 4500), 3),
            overrides_from,
            None,
        )?);
        rules.push(mk(
            format!("{b}-base-next"),
            None,
            Decimal::new(rng.range(1000, 2000), 3),
            next_year,
            None,
        )?);
    }
    Ok(rules)
}

fn policies(merchants: &[Merchant]) -> Result<Vec<Policy>> {
    let blacklisted: Vec<&str> = merchants
        .iter()
        .filter(|m| m.category == "gambling")
        .take(3)
        .map(|m| m.merchant_id.as_str())
        .collect();
    let p = |id: &str, ty, desc: &str, active, params| -> Result<Policy> {
        Ok(Policy {
            policy_id: PolicyId::new(id)?,
            policy_type: ty,
            rule_description: desc.to_string(),
            active_flag: active,
            parameters: params,
        })
    };
    Ok(vec![
        p(
            "POL-KYC-001",
            PolicyType::Kyc,
            "payments at or above the amount need a verified customer",
            true,
            json!({"min_amount": "1500.00", "currency": "USD"}),
        )?,
        p(
            "POL-AML-001",
            PolicyType::Aml,
            "merchants in high-risk categories are screened",
            true,
            json!({"categories": ["gambling"]}),
        )?,
        p(
            "POL-BL-001",
            PolicyType::Blacklist,
            "merchants barred by compliance",
            true,
            json!({"merchant_ids": blacklisted}),
        )?,
        p(
            "POL-REG-001",
            PolicyType::RegionalLimit,
            "per-payment limit for JP merchants",
            true,
            json!({"country": "JP", "max_amount": "300000", "currency": "JPY"}),
        )?,
        p(
            "POL-VEL-001",
            PolicyType::Velocity,
            "more payments per user and hour than allowed",
            true,
            json!({"max_per_user_per_hour": 12}),
        )?,
        p(
            "POL-KYC-000",
            PolicyType::Kyc,
            "retired KYC threshold",
            false,
            json!({"min_amount": "3000.00", "currency": "USD"}),
        )?,
    ])
}
