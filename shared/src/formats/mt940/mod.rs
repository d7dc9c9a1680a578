//! SWIFT MT940 customer statements, read in one pass over the text.
//!
//! A file holds one or more messages (`:20:` … `:62F:`/`:62M:`). One record is one `:61:` entry
//! with the `:86:` that follows it. Its statement id is `{:20:}-{bank reference}` (the part
//! after `//` in `:61:`); without a bank reference (absent, empty, `NONREF`) it is
//! `{:20:}-{:28C:}-{ordinal of the entry in its message}`; characters outside the id alphabet
//! are encoded by [`super::statement_id`]. `:86:` carries structured subfields
//! `/EREF/{transaction id or NOTPROVIDED}/MID/{merchant}/TYPE/{record type}/CHGS/{fee}/REMI/{text}`
//! (lines joined without a separator); a German-style `:86:` (`NNN?20…?21…`) gives its purpose
//! subfields `?20`–`?29` as the reference; any other `:86:` is taken whole as the reference.
//!
//! Tolerant where banks vary: any number of `:86:` lines, field lengths (references, amounts),
//! a blank optional entry date, characters outside the SWIFT set, unknown tags (`:NS:`,
//! `:13D:`… skipped), and header or trailer lines between messages (`{1:…}` blocks, `-`, `-}`,
//! ETX and other control characters, bank banners) are skipped instead of glued onto a field.
//! Strict where money is: a balance or amount that cannot be read, a balance in another
//! currency than the account's, or opening balance + movements ≠ closing balance fails the
//! file; an impossible date fails its entry only (its amount still counts in the balance).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::{
    Entry, EntrySink, FileResult, FormatContext, Raw, fee, no_reference, reference_id, statement_id,
};
use crate::money::{Currency, parse_decimal};
use crate::reject::{FieldError, RejectReason, ferr};

/// How a line of the file reads.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// `:TAG:value`.
    Field(&'a str, &'a str),
    /// The end of a message (`-`, `-}`, with any control characters).
    End,
    /// A header block (`{1:…}{2:…}{4:`), blank or control characters only.
    Frame,
    /// Anything else: a continuation of the field before, or a bank's banner line.
    Text(&'a str),
}

fn framing(c: char) -> bool {
    c.is_control() || c == '}'
}

fn classify(line: &str) -> Line<'_> {
    let t = line.trim_matches(|c: char| c.is_control());
    if let Some(rest) = t.strip_prefix(':')
        && let Some(end) = rest.get(..6).unwrap_or(rest).find(':')
    {
        let tag = &rest[..end];
        if (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Line::Field(tag, &rest[end + 1..]);
        }
    }
    if let Some(rest) = t.trim().strip_prefix('-')
        && rest
            .trim_matches(|c: char| framing(c) || c.is_whitespace())
            .is_empty()
    {
        return Line::End;
    }
    if t.starts_with('{')
        || t.trim_matches(|c: char| framing(c) || c.is_whitespace())
            .is_empty()
    {
        // `{4:` may carry the first field on its line.
        if let Some(i) = t.find("{4:")
            && let Line::Field(tag, value) = classify(&t[i + 3..])
        {
            return Line::Field(tag, value);
        }
        return Line::Frame;
    }
    Line::Text(t)
}

/// A SWIFT amount (`15d`: at most 15 digits and one decimal comma).
fn swift_amount(s: &str) -> FileResult<Decimal> {
    if s.len() > 15 {
        return Err(format!(
            "amount `{s}` has {} characters; an MT940 amount holds at most 15 (SWIFT `15d`)",
            s.len()
        ));
    }
    if s.bytes().filter(|b| *b == b',').count() != 1
        || !s.bytes().all(|b| b.is_ascii_digit() || b == b',')
    {
        return Err(format!(
            "amount `{s}` is not a SWIFT amount (digits with one decimal comma)"
        ));
    }
    parse_decimal(s, ',').map_err(|e| format!("amount `{s}`: {e}"))
}

/// `YYMMDD` (years 00–79 are 20xx, as SWIFT dates are read).
fn swift_date(s: &str) -> std::result::Result<NaiveDate, FieldError> {
    let bad = || {
        ferr(
            RejectReason::InvalidDate,
            format!("`{s}` is not a date (YYMMDD)"),
        )
    };
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (n(0..2), n(2..4), n(4..6)) else {
        return Err(bad());
    };
    let year = if y < 80 { 2000 + y } else { 1900 + y };
    NaiveDate::from_ymd_opt(year as i32, m, d).ok_or_else(bad)
}

/// `:61:` gives the entry (booking) date without a year: the value date's, or the
/// neighbouring year's when that is more than half a year nearer.
fn booking_date(value: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    [value.year(), value.year() - 1, value.year() + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .min_by_key(|d| (*d - value).num_days().abs())
}

/// A balance field (`:60F:`, `:62M:`…): mark, date, currency, amount; signed.
fn balance(value: &str, account: Currency) -> FileResult<Decimal> {
    let v = value.trim();
    let sign = match v.get(..1) {
        Some("C") => Decimal::ONE,
        Some("D") => Decimal::NEGATIVE_ONE,
        _ => return Err(format!("`{v}` does not start with C or D")),
    };
    let cur = v
        .get(7..10)
        .ok_or_else(|| format!("`{v}` has no currency"))?;
    let cur = Currency::new(cur).map_err(|e| e.to_string())?;
    if cur != account {
        return Err(format!(
            "is in {cur}, but the account's settlement currency is {account}"
        ));
    }
    Ok(sign * swift_amount(v.get(10..).unwrap_or_default().trim())?)
}

/// What the first line of `:61:` says.
struct Movement<'a> {
    amount: Decimal,
    date: std::result::Result<NaiveDate, FieldError>,
    bank_ref: Option<&'a str>,
}

/// Reads `:61:`'s first line: value date, optional entry date (MMDD, may be blank), mark
/// (C, D, RC, RD, EC, ED), optional funds code, amount, type code, references.
fn movement(line: &str) -> FileResult<Movement<'_>> {
    let v = line.trim();
    let value_date = v.get(..6).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let value_date =
        value_date.ok_or_else(|| format!("`{v}` does not start with a date (YYMMDD)"))?;
    let mut rest = &v[6..];
    let mut entry = None;
    if let Some(md) = rest
        .get(..4)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
    {
        entry = Some(md);
        rest = &rest[4..];
    } else {
        rest = rest.trim_start();
    }
    let (sign, after) = match rest.as_bytes() {
        [b'R', b'C', ..] | [b'E', b'D', ..] => (Decimal::NEGATIVE_ONE, 2),
        [b'R', b'D', ..] | [b'E', b'C', ..] => (Decimal::ONE, 2),
        [b'C', ..] => (Decimal::ONE, 1),
        [b'D', ..] => (Decimal::NEGATIVE_ONE, 1),
        _ => return Err(format!("`{v}` has no debit/credit mark (C, D, RC, RD)")),
    };
    rest = &rest[after..];
    if rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        rest = &rest[1..]; // funds code
    }
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b',')
        .count();
    let amount = sign * swift_amount(&rest[..len])?;
    let refs = rest.get(len + 4..).unwrap_or_default();
    let bank_ref = refs
        .find("//")
        .map(|i| refs[i + 2..].trim())
        .filter(|r| !no_reference(r));
    let date = swift_date(value_date).and_then(|value| match entry {
        None => Ok(value),
        Some(md) => {
            let (m, d) = (md[..2].parse().unwrap_or(0), md[2..].parse().unwrap_or(0));
            booking_date(value, m, d).ok_or_else(|| {
                ferr(
                    RejectReason::InvalidDate,
                    format!("entry date `{md}` is not a date (MMDD)"),
                )
            })
        }
    });
    Ok(Movement {
        amount,
        date,
        bank_ref,
    })
}

/// `/CODE/value` subfields of a structured `:86:` (codes of 3–4 capital letters); `/REMI/`
/// (free text that may hold `/`) runs to the end. `None`: the text is not structured.
fn subfields(info: &str) -> Option<Vec<(&str, &str)>> {
    /// `/CODE/` at byte `i`: the code and where its value starts.
    fn marker(s: &str, i: usize) -> Option<(&str, usize)> {
        let rest = s.get(i..)?.strip_prefix('/')?;
        let len = rest.bytes().take_while(u8::is_ascii_uppercase).count();
        ((3..=4).contains(&len) && rest.as_bytes().get(len) == Some(&b'/'))
            .then(|| (&rest[..len], i + len + 2))
    }
    let (mut code, mut start) = marker(info, 0)?;
    let mut out = Vec::new();
    loop {
        let next = (code != "REMI")
            .then(|| {
                info.bytes()
                    .enumerate()
                    .skip(start)
                    .filter(|(_, b)| *b == b'/')
                    .find_map(|(i, _)| marker(info, i).map(|m| (i, m)))
            })
            .flatten();
        match next {
            Some((end, (c, s))) => {
                out.push((code, &info[start..end]));
                (code, start) = (c, s);
            }
            None => {
                out.push((code, &info[start..]));
                return Some(out);
            }
        }
    }
}

/// The purpose (`?20`–`?29`) of a German-style `:86:` (`NNN?00…?20…`); `None` if not one.
fn german_purpose(info: &str) -> Option<String> {
    let b = info.as_bytes();
    if b.len() < 6 || !b[..3].iter().all(u8::is_ascii_digit) || b[3] != b'?' {
        return None;
    }
    let mut purpose = String::new();
    for part in info[4..].split('?') {
        if let Some(code) = part.get(..2)
            && ("20".."30").contains(&code)
        {
            purpose.push_str(&part[2..]);
        }
    }
    Some(purpose)
}

/// An entry's canonical values from its `:86:` text.
fn entry(id: String, m: &Movement<'_>, info: &str) -> Entry {
    let mut e = Entry {
        statement_id: id,
        transaction_id: None,
        posting_date: m.date.clone(),
        amount: m.amount,
        fee: Ok(None),
        merchant_id: None,
        reference: String::new(),
        record_type: None,
    };
    let info = info.trim();
    if let Some(subs) = subfields(info) {
        let get = |code: &str| subs.iter().find(|(c, _)| *c == code).map(|(_, v)| v.trim());
        e.transaction_id = get("EREF").and_then(reference_id);
        e.merchant_id = get("MID").filter(|v| !v.is_empty()).map(str::to_string);
        e.record_type = get("TYPE").filter(|v| !v.is_empty()).map(str::to_string);
        e.fee = get("CHGS").filter(|v| !v.is_empty()).map(fee).transpose();
        e.reference = get("REMI").unwrap_or_default().to_string();
    } else if let Some(purpose) = german_purpose(info) {
        e.reference = purpose.trim().to_string();
    } else {
        e.reference = info.to_string();
    }
    e
}

/// The message being read.
struct Message<'a> {
    /// 1-based, in the file.
    k: usize,
    reference: &'a str,
    number: &'a str,
    opening: Option<Decimal>,
    movements: Decimal,
    entries: u64,
}

impl Message<'_> {
    fn what(&self) -> String {
        format!(
            "message {} (:20:{}, :28C:{})",
            self.k, self.reference, self.number
        )
    }
}

/// The entry being read: its `:61:` and the text of its `:86:`.
struct Pending<'a> {
    /// Byte range of its fields in the text.
    start: usize,
    end: usize,
    movement: Movement<'a>,
    info: String,
}

/// Which field continuation lines belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `:61:` (its second line: supplementary details, not read).
    Movement,
    /// The entry's `:86:`.
    Info,
    /// Any other field: lines after it are not part of an entry.
    Other,
}

struct Reader<'a, 's, S> {
    ctx: &'s FormatContext,
    text: &'a str,
    sink: &'s mut S,
    entries: u64,
    messages: usize,
    message: Option<Message<'a>>,
    pending: Option<Pending<'a>>,
    open: Open,
}

impl<'a, S: EntrySink> Reader<'a, '_, S> {
    /// Where `part` (a slice of the text) ends in the text.
    fn end_of(&self, part: &str) -> usize {
        part.as_ptr() as usize - self.text.as_ptr() as usize + part.len()
    }

    fn message(&mut self, tag: &str) -> FileResult<&mut Message<'a>> {
        self.message
            .as_mut()
            .ok_or_else(|| format!("field :{tag}: is outside a message (no :20: before it)"))
    }

    fn flush(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let Some(m) = self.message.as_mut() else {
            return;
        };
        m.entries += 1;
        let id = match p.movement.bank_ref {
            Some(r) => statement_id(&[m.reference, r]),
            None if m.number.is_empty() => statement_id(&[m.reference, &m.entries.to_string()]),
            None => statement_id(&[m.reference, m.number, &m.entries.to_string()]),
        };
        self.entries += 1;
        let raw = Raw::Lines(&self.text[p.start..p.end]);
        self.sink
            .entry(self.entries, raw, Ok(entry(id, &p.movement, &p.info)));
    }

    fn field(&mut self, tag: &'a str, value: &'a str, line: &'a str) -> FileResult<()> {
        if tag != "86" || self.open == Open::Other {
            self.flush();
        }
        self.open = Open::Other;
        match tag {
            "20" => {
                if let Some(m) = &self.message {
                    return Err(format!(
                        "{} has no closing balance (:62F: or :62M:) before the next :20:",
                        m.what()
                    ));
                }
                self.messages += 1;
                self.message = Some(Message {
                    k: self.messages,
                    reference: value.trim(),
                    number: "",
                    opening: None,
                    movements: Decimal::ZERO,
                    entries: 0,
                });
            }
            "28C" | "28" => self.message(tag)?.number = value.trim(),
            "60F" | "60M" => {
                let account = self.ctx.account;
                let m = self.message(tag)?;
                let b = balance(value, account)
                    .map_err(|e| format!("{}: the opening balance {e}", m.what()))?;
                m.opening.get_or_insert(b);
            }
            "61" => {
                let mv = movement(value);
                let m = self.message(tag)?;
                if m.opening.is_none() {
                    return Err(format!("{}: :61: before the opening balance", m.what()));
                }
                let mv = mv.map_err(|e| format!("{}: :61: {e}", m.what()))?;
                m.movements = m
                    .movements
                    .checked_add(mv.amount)
                    .ok_or_else(|| format!("{}: the movements overflow", m.what()))?;
                let end = self.end_of(line);
                self.pending = Some(Pending {
                    start: end - line.len(),
                    end,
                    movement: mv,
                    info: String::new(),
                });
                self.open = Open::Movement;
            }
            "86" => {
                let end = self.end_of(line);
                if let Some(p) = self.pending.as_mut() {
                    if !p.info.is_empty() {
                        p.info.push(' ');
                    }
                    p.info.push_str(value.trim_start());
                    p.end = end;
                    self.open = Open::Info;
                }
            }
            "62F" | "62M" => {
                let account = self.ctx.account;
                let m = self.message(tag)?;
                let closing = balance(value, account)
                    .map_err(|e| format!("{}: the closing balance {e}", m.what()))?;
                let what = m.what();
                let opening = m
                    .opening
                    .ok_or_else(|| format!("{what} has no opening balance (:60F: or :60M:)"))?;
                match opening.checked_add(m.movements) {
                    Some(sum) if sum == closing => {}
                    sum => {
                        return Err(format!(
                            "{what}: opening balance {opening} + movements {} = {}, but the closing balance is {closing}",
                            m.movements,
                            sum.map_or_else(|| "overflow".to_string(), |s| s.to_string())
                        ));
                    }
                }
                self.message = None;
            }
            // :21:, :25:, :64:, :65:, a statement-level :86:, :NS: and any other tag.
            _ => {}
        }
        Ok(())
    }

    fn line(&mut self, line: &'a str) -> FileResult<()> {
        match classify(line) {
            Line::Field(tag, value) => self.field(tag, value, line),
            Line::Text(t) => {
                let end = self.end_of(line);
                match (self.open, self.pending.as_mut()) {
                    (Open::Info, Some(p)) => {
                        p.info.push_str(t);
                        p.end = end;
                    }
                    (Open::Movement, Some(p)) => p.end = end,
                    _ => {}
                }
                Ok(())
            }
            Line::End | Line::Frame => {
                self.flush();
                self.open = Open::Other;
                Ok(())
            }
        }
    }
}

/// Reads an MT940 file in one pass, handing each `:61:` entry to `sink` as soon as it is
/// complete; the file's reason if it cannot be read or its balances do not add up (entries
/// handed over before are then void).
pub fn read(ctx: &FormatContext, bytes: &[u8], sink: &mut impl EntrySink) -> FileResult<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "MT940 must be UTF-8 text: {e}; a Latin-1 or Windows-1252 file needs `encoding` in the source mapping"
        )
    })?;
    if text.trim().is_empty() {
        return Ok(());
    }
    let mut r = Reader {
        ctx,
        text,
        sink,
        entries: 0,
        messages: 0,
        message: None,
        pending: None,
        open: Open::Other,
    };
    for line in text.split('\n') {
        r.line(line.strip_suffix('\r').unwrap_or(line))
            .map_err(|e| format!("MT940 {e}"))?;
    }
    r.flush();
    if let Some(m) = &r.message {
        return Err(format!(
            "MT940 {} ends without a closing balance (:62F: or :62M:)",
            m.what()
        ));
    }
    if r.messages == 0 {
        return Err("not MT940: no `:20:` message found".into());
    }
    Ok(())
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
