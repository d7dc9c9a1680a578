//! The reader against the `mt940` crate (a dev-dependency kept as the test oracle): on seeded
//! random files in the SWIFT character set the crate accepts, both must find the same
//! entries — amounts and signs, dates, references, `:86:` text — and both must refuse the same
//! unbalanced files.

use chrono::{Datelike, NaiveDate};
use mt940::{ExtDebitOrCredit, InformationToAccountOwner};
use rust_decimal::Decimal;

use super::{Movement, entry, read};
use crate::formats::{Entry, EntrySink, FormatContext, Raw, no_reference, statement_id};
use crate::money::Currency;
use crate::reject::FieldError;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// 1 to `max` characters.
    fn word(&mut self, max: u64, alphabet: &[u8]) -> String {
        let len = 1 + self.below(max) as usize;
        self.text(len, alphabet)
    }
    fn text(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len)
            .map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize]))
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const FREE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/?().,+ ";

fn swift_amount(minor: u64) -> String {
    let frac = minor % 100;
    match frac {
        0 => format!("{},", minor / 100),
        f if f % 10 == 0 => format!("{},{}", minor / 100, f / 10),
        f => format!("{},{f:02}", minor / 100),
    }
}

fn swift_date(d: NaiveDate) -> String {
    format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
}

/// `:86:` text: structured subfields or free text, wrapped at 65 characters.
fn info(rng: &mut Rng) -> String {
    let text = if rng.chance(50) {
        format!(
            "/EREF/{}/MID/M{:06}/TYPE/SETTLEMENT/CHGS/{}/REMI/{}",
            rng.text(12, ALNUM),
            rng.below(999_999),
            swift_amount(rng.below(10_000)),
            rng.word(80, FREE)
        )
    } else {
        let mut t = rng.text(1, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        let len = rng.below(300) as usize;
        t.push_str(&rng.text(len, FREE));
        t
    };
    let mut out = String::new();
    let mut rest = text.trim_end();
    for _ in 0..6 {
        // A line must not start with a space (the crate trims it) or hold only spaces.
        let mut cut = rest.len().min(65);
        while cut < rest.len() && rest[cut..].starts_with(' ') && cut > 1 {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        rest = &rest[cut..];
        if rest.is_empty() {
            break;
        }
        out.push_str("\r\n");
    }
    out
}

/// A random statement file; `-` lines end messages when `dashes`. Unbalanced when `skew`.
fn file(rng: &mut Rng, skew: bool) -> String {
    let mut out = String::new();
    let mut balance: i64 = rng.below(1_000_000) as i64;
    let messages = 1 + rng.below(3);
    let day0 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    for k in 0..messages {
        let reference = rng.word(16, ALNUM);
        let mark = |b: i64| if b < 0 { 'D' } else { 'C' };
        let date = day0 + chrono::Duration::days(rng.below(365) as i64);
        out.push_str(&format!(
            ":20:{reference}\r\n:25:ACCT{}/EUR\r\n",
            rng.below(99)
        ));
        out.push_str(&format!(":28C:{}/{}\r\n", 1 + rng.below(999), k + 1));
        out.push_str(&format!(
            ":60F:{}{}EUR{}\r\n",
            mark(balance),
            swift_date(date),
            swift_amount(balance.unsigned_abs())
        ));
        for _ in 0..rng.below(12) {
            let minor = rng.below(100_000_000);
            let (m, signed) = match rng.below(4) {
                0 => ("C", minor as i64),
                1 => ("D", -(minor as i64)),
                2 => ("RC", -(minor as i64)),
                _ => ("RD", minor as i64),
            };
            balance += signed;
            let value = date + chrono::Duration::days(rng.below(7) as i64 - 3);
            let entry_date = if rng.chance(70) {
                let e = value + chrono::Duration::days(rng.below(5) as i64 - 2);
                format!("{:02}{:02}", e.month(), e.day())
            } else {
                String::new()
            };
            let funds = if rng.chance(20) { "R" } else { "" };
            let customer = if rng.chance(30) {
                "NONREF".to_string()
            } else {
                rng.word(16, ALNUM)
            };
            let bank = if rng.chance(70) {
                format!("//{}", rng.word(16, ALNUM))
            } else {
                String::new()
            };
            out.push_str(&format!(
                ":61:{}{entry_date}{m}{funds}{}N{}{customer}{bank}\r\n",
                swift_date(value),
                swift_amount(minor),
                rng.text(3, b"TRFMSCCHGRTI")
            ));
            if rng.chance(10) {
                out.push_str(&format!("{}\r\n", rng.word(30, ALNUM)));
            }
            if rng.chance(90) {
                out.push_str(&format!(":86:{}\r\n", info(rng)));
            }
        }
        if skew {
            balance += 1;
        }
        out.push_str(&format!(
            ":62F:{}{}EUR{}\r\n",
            mark(balance),
            swift_date(date),
            swift_amount(balance.unsigned_abs())
        ));
        if rng.chance(50) {
            out.push_str("-\r\n");
        }
    }
    out
}

#[derive(Default)]
struct Got(Vec<Entry>);

impl EntrySink for Got {
    fn entry(&mut self, _: u64, _: Raw<'_>, e: std::result::Result<Entry, FieldError>) {
        if let Ok(e) = e {
            self.0.push(e);
        }
    }
}

/// The entries the crate finds, as this reader's canonical values.
fn oracle(text: &str) -> Option<Vec<Entry>> {
    let dashless: String = text
        .split_inclusive('\n')
        .filter(|l| l.trim() != "-")
        .collect();
    let messages = mt940::parse_mt940(&dashless).ok()?;
    let mut out = Vec::new();
    for m in messages {
        let number = match &m.sequence_no {
            Some(s) => format!("{}/{s}", m.statement_no),
            None => m.statement_no.clone(),
        };
        for (i, l) in m.statement_lines.iter().enumerate() {
            let amount = match l.ext_debit_credit_indicator {
                ExtDebitOrCredit::Credit | ExtDebitOrCredit::ReverseCredit => l.amount,
                ExtDebitOrCredit::Debit | ExtDebitOrCredit::ReverseDebit => -l.amount,
            };
            // The crate gives the entry date the value date's year; the nearest year counts.
            let date = l.entry_date.map_or(l.value_date, |e| {
                super::booking_date(l.value_date, e.month(), e.day()).unwrap_or(e)
            });
            let bank_ref = l.bank_ref.as_deref().filter(|r| !no_reference(r));
            let id = match bank_ref {
                Some(r) => statement_id(&[&m.transaction_ref_no, r]),
                None => statement_id(&[&m.transaction_ref_no, &number, &(i + 1).to_string()]),
            };
            let info = match &l.information_to_account_owner {
                Some(InformationToAccountOwner::Plain(t)) => t.replace(['\r', '\n'], ""),
                _ => String::new(),
            };
            let mv = Movement {
                amount,
                date: Ok(date),
                bank_ref,
            };
            out.push(entry(id, &mv, &info));
        }
    }
    Some(out)
}

#[test]
fn the_reader_finds_what_the_crate_finds_on_random_files() -> crate::error::Result<()> {
    let ctx = FormatContext {
        account: Currency::new("EUR")?,
        tz: chrono_tz::UTC,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut files, mut entries) = (0, 0);
    for case in 0..400 {
        let skew = case % 10 == 9;
        let text = file(&mut rng, skew);
        let mut got = Got::default();
        let mine = read(&ctx, text.as_bytes(), &mut got);
        let theirs = oracle(&text);
        if skew {
            assert!(mine.is_err(), "case {case}: unbalanced, yet read:\n{text}");
            continue;
        }
        let Some(theirs) = theirs else {
            panic!("case {case}: the oracle cannot read the generated file:\n{text}");
        };
        assert_eq!(mine, Ok(()), "case {case}:\n{text}");
        assert_eq!(got.0, theirs, "case {case}:\n{text}");
        files += 1;
        entries += theirs.len();
    }
    assert!(
        files >= 300 && entries > 1500,
        "{files} files, {entries} entries"
    );
    Ok(())
}

#[test]
fn balances_agree_with_the_crate() -> crate::error::Result<()> {
    // The crate's sums of the generated files are what this reader checks against.
    let mut rng = Rng(7);
    for _ in 0..50 {
        let text = file(&mut rng, false);
        let dashless: String = text
            .split_inclusive('\n')
            .filter(|l| l.trim() != "-")
            .collect();
        for m in
            mt940::parse_mt940(&dashless).map_err(|e| crate::Error::Invariant(e.to_string()))?
        {
            let signed = |b: &mt940::Balance| match b.debit_credit_indicator {
                mt940::DebitOrCredit::Credit => b.amount,
                mt940::DebitOrCredit::Debit => -b.amount,
            };
            let moved: Decimal = m
                .statement_lines
                .iter()
                .map(|l| match l.ext_debit_credit_indicator {
                    ExtDebitOrCredit::Credit | ExtDebitOrCredit::ReverseCredit => l.amount,
                    _ => -l.amount,
                })
                .sum();
            assert_eq!(
                signed(&m.opening_balance) + moved,
                signed(&m.closing_balance)
            );
        }
    }
    Ok(())
}
