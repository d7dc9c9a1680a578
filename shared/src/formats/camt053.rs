//! ISO 20022 camt.053 bank-to-customer statements, read with `quick-xml`'s event reader.
//!
//! `Document` (namespace `urn:iso:std:iso:20022:tech:xsd:camt.053.*`) → `BkToCstmrStmt` →
//! one or more `Stmt`, each with `Acct/Ccy`, an opening (`OPBD`, else `PRCD`) and a closing
//! (`CLBD`) `Bal`, and `Ntry` elements. One record is one `<Ntry>` (kept verbatim as its raw
//! text):
//!
//! | canonical field | taken from (inside `Ntry`) |
//! |---|---|
//! | statement_id | `AcctSvcrRef`; without one (or `NONREF`), `{Stmt/Id}-{ordinal in the statement}` |
//! | transaction_id | `NtryDtls/TxDtls/Refs/EndToEndId` (`NOTPROVIDED`: none) |
//! | posting_date | `BookgDt/Dt` (or `BookgDt/DtTm`, else `ValDt`) |
//! | amount_posted | `Amt`, negative when `CdtDbtInd` is `DBIT` |
//! | fee_charged | `NtryDtls/TxDtls/Chrgs/Rcrd/Amt` (summed) |
//! | merchant_id | `NtryDtls/TxDtls/RltdPties/Cdtr/Pty/Id/OrgId/Othr/Id` |
//! | reference | `NtryDtls/TxDtls/RmtInf/Ustrd` |
//! | record_type | `BkTxCd/Prtry/Cd` (a bank's own codes mapped by the mapping's `transaction_codes`) |
//!
//! Values come from the first `TxDtls`; an entry with several (a batch booking) names no single
//! transaction, so it keeps no transaction id. Entries whose status is not `BOOK` are rejected
//! and left out of the balance.
//!
//! File-level failures: broken XML, a root that is not a camt.053 `Document`, an amount or
//! balance in another currency than the account's, an amount or direction that cannot be read
//! (the balance could not be checked), opening balance + booked entries ≠ closing balance.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use rust_decimal::Decimal;

use super::{
    Entry, EntrySink, FileResult, FormatContext, Raw, iso_date, no_reference, number, reference_id,
    statement_id,
};
use crate::money::{Currency, parse_decimal};
use crate::reject::{FieldError, RejectReason, ferr};

/// Namespace prefix of every camt.053 version.
pub const NAMESPACE_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.";

type Fallible<T> = FileResult<T>;

#[derive(Debug, Default)]
struct Balance {
    code: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    direction: Option<String>,
}

#[derive(Debug, Default)]
struct Ntry {
    /// Byte range of the element in the file.
    span: (usize, usize),
    amount: Option<String>,
    currency: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    booking_date: Option<String>,
    value_date: Option<String>,
    servicer_ref: Option<String>,
    bank_code: Option<String>,
    end_to_end_id: Option<String>,
    merchant: Option<String>,
    fees: Vec<String>,
    remittance: Vec<String>,
    tx_details: u32,
    /// Byte offset of an `<Ntry>` found inside this one (the entry is rejected for it).
    nested: Option<usize>,
}

#[derive(Debug, Default)]
struct Stmt {
    id: Option<String>,
    currency: Option<String>,
    balances: Vec<Balance>,
    entries: Vec<Ntry>,
}

/// Element paths are matched by local name, so prefixed documents read the same.
fn is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .map(|a| a.value.trim().to_string())
}

/// Builds statements from reader events. Depths: 1 `Document`, 2 `BkToCstmrStmt`, 3 `Stmt`,
/// 4 `Bal`/`Ntry`/statement fields.
#[derive(Default)]
struct Builder {
    stack: Vec<String>,
    text: String,
    statements_seen: bool,
    stmt: Option<Stmt>,
    bal: Option<Balance>,
    ntry: Option<Ntry>,
    done: Vec<Stmt>,
    /// An `<Ntry>` outside any statement's entry list: where it is, for the file's error.
    misplaced: Option<(usize, String)>,
}

impl Builder {
    fn open(&mut self, name: String, at: usize, e: &BytesStart<'_>) {
        self.stack.push(name);
        self.text.clear();
        let depth = self.stack.len();
        let name = self.stack[depth - 1].as_str();
        match (depth, name) {
            (2, "BkToCstmrStmt") => self.statements_seen = true,
            (3, "Stmt") if self.stack[1] == "BkToCstmrStmt" => self.stmt = Some(Stmt::default()),
            (4, "Bal") if self.stmt.is_some() => self.bal = Some(Balance::default()),
            (4, "Ntry") if self.stmt.is_some() => {
                self.ntry = Some(Ntry {
                    span: (at, at),
                    ..Ntry::default()
                })
            }
            _ if name == "Ntry" => match &mut self.ntry {
                Some(n) => {
                    if n.nested.is_none() {
                        n.nested = Some(at);
                    }
                }
                None => {
                    if self.misplaced.is_none() {
                        self.misplaced = Some((at, self.stack.join("/")));
                    }
                }
            },
            _ => {}
        }
        if depth <= 4 {
            return;
        }
        let rel = &self.stack[4..];
        if let Some(n) = &mut self.ntry {
            if is(rel, &["Amt"]) {
                n.currency = attribute(e, "Ccy");
            } else if is(rel, &["NtryDtls", "TxDtls"]) {
                n.tx_details += 1;
            }
        } else if let Some(b) = &mut self.bal
            && is(rel, &["Amt"])
        {
            b.currency = attribute(e, "Ccy");
        }
    }

    fn close(&mut self, at: usize) {
        let text = std::mem::take(&mut self.text);
        let depth = self.stack.len();
        match depth {
            3 => {
                if let Some(s) = self.stmt.take() {
                    self.done.push(s);
                }
            }
            4 => {
                if let (Some(mut n), Some(s)) = (self.ntry.take(), self.stmt.as_mut()) {
                    n.span.1 = at;
                    s.entries.push(n);
                } else if let (Some(b), Some(s)) = (self.bal.take(), self.stmt.as_mut()) {
                    s.balances.push(b);
                } else if let Some(s) = &mut self.stmt
                    && self.stack[3] == "Id"
                {
                    s.id = Some(text);
                }
            }
            _ if depth > 4 => self.leaf(text),
            _ => {}
        }
        self.stack.pop();
    }

    /// Text of an element inside a statement field, a balance or an entry.
    fn leaf(&mut self, text: String) {
        let rel: Vec<&str> = self.stack[4..].iter().map(String::as_str).collect();
        if let Some(n) = &mut self.ntry {
            let first = n.tx_details <= 1;
            let slot = match rel.as_slice() {
                ["Amt"] => &mut n.amount,
                ["CdtDbtInd"] => &mut n.direction,
                ["Sts", "Cd"] => &mut n.status,
                // camt.053.001.02 and older: the status as text.
                ["Sts"] if !text.trim().is_empty() => &mut n.status,
                ["BookgDt", "Dt" | "DtTm"] => &mut n.booking_date,
                ["ValDt", "Dt" | "DtTm"] => &mut n.value_date,
                ["AcctSvcrRef"] => &mut n.servicer_ref,
                ["BkTxCd", "Prtry", "Cd"] => &mut n.bank_code,
                ["NtryDtls", "TxDtls", "Refs", "EndToEndId"] if first => &mut n.end_to_end_id,
                [
                    "NtryDtls",
                    "TxDtls",
                    "RltdPties",
                    "Cdtr",
                    "Pty",
                    "Id",
                    "OrgId",
                    "Othr",
                    "Id",
                ]
                | [
                    "NtryDtls",
                    "TxDtls",
                    "RltdPties",
                    "Cdtr",
                    "Id",
                    "OrgId",
                    "Othr",
                    "Id",
                ] if first => &mut n.merchant,
                ["NtryDtls", "TxDtls", "Chrgs", "Rcrd", "Amt"] => return n.fees.push(text),
                ["NtryDtls", "TxDtls", "RmtInf", "Ustrd"] if first => {
                    return n.remittance.push(text);
                }
                _ => return,
            };
            *slot = Some(text);
        } else if let Some(b) = &mut self.bal {
            let slot = match rel.as_slice() {
                ["Tp", "CdOrPrtry", "Cd"] => &mut b.code,
                ["Amt"] => &mut b.amount,
                ["CdtDbtInd"] => &mut b.direction,
                _ => return,
            };
            *slot = Some(text);
        } else if let Some(s) = &mut self.stmt
            && self.stack[3] == "Acct"
            && is(&self.stack[4..], &["Ccy"])
        {
            s.currency = Some(text);
        }
    }
}

fn check_root(ns: ResolveResult<'_>, name: &str) -> Fallible<()> {
    match ns {
        ResolveResult::Bound(Namespace(uri)) if uri.starts_with(NAMESPACE_PREFIX) => {
            if name == "Document" {
                Ok(())
            } else {
                Err(format!(
                    "the root element is <{name}>, not a camt.053 <Document>"
                ))
            }
        }
        ResolveResult::Bound(Namespace(uri)) => Err(format!(
            "namespace `{uri}` is not camt.053 (`{NAMESPACE_PREFIX}*`)"
        )),
        _ => Err(format!(
            "the root element has no namespace; camt.053 needs `{NAMESPACE_PREFIX}*`"
        )),
    }
}

/// The statements of a document, or why it is not a readable camt.053 document.
fn statements(text: &str) -> Fallible<Vec<Stmt>> {
    let mut reader = NsReader::from_str(text);
    let mut b = Builder::default();
    let mut root = false;
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("broken XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().as_ref().to_string();
                if b.stack.is_empty() {
                    if root {
                        return Err(format!("broken XML: a second root element <{name}>"));
                    }
                    root = true;
                    check_root(reader.resolver().resolve_element(e.name()).0, &name)?;
                }
                b.open(name, at, e);
                if matches!(event, Event::Empty(_)) {
                    b.close(reader.buffer_position() as usize);
                }
            }
            Event::End(_) => b.close(reader.buffer_position() as usize),
            Event::Text(t) => b.text.push_str(&t.xml10_content()),
            Event::CData(t) => b.text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => b.text.push(c),
                Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                    Some(s) => b.text.push_str(s),
                    None => {
                        return Err(format!(
                            "broken XML at byte {at}: undefined entity `&{};`",
                            &*r
                        ));
                    }
                },
                Err(e) => return Err(format!("broken XML at byte {at}: {e}")),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = b.stack.last() {
        return Err(format!("broken XML: the document ends inside <{open}>"));
    }
    if !root {
        return Err("broken XML: no root element".into());
    }
    if !b.statements_seen {
        return Err("not a bank-to-customer statement: no <BkToCstmrStmt>".into());
    }
    if let Some((at, path)) = b.misplaced {
        return Err(format!(
            "an <Ntry> at byte {at} is outside a statement's entry list ({path}); entries belong directly under <Stmt>"
        ));
    }
    Ok(b.done)
}

/// An amount with its direction, from the account's side (`DBIT` negative).
fn signed(
    amount: Option<&str>,
    currency: Option<&str>,
    direction: Option<&str>,
    account: Currency,
) -> Fallible<Decimal> {
    let raw = amount
        .map(str::trim)
        .ok_or_else(|| "no amount".to_string())?;
    let value = parse_decimal(raw, '.').map_err(|e| format!("amount: {e}"))?;
    match currency.map(Currency::new) {
        Some(Ok(c)) if c == account => {}
        Some(Ok(c)) => {
            return Err(format!(
                "amount in {c}, but the account's settlement currency is {account}"
            ));
        }
        Some(Err(e)) => return Err(format!("amount: {e}")),
        None => return Err("amount without a currency (`Ccy`)".into()),
    }
    match direction.map(str::trim) {
        Some("CRDT") => Ok(value),
        Some("DBIT") => Ok(-value),
        other => Err(format!(
            "`CdtDbtInd` is `{}`, not CRDT or DBIT",
            other.unwrap_or_default()
        )),
    }
}

fn booked(n: &Ntry) -> bool {
    n.status.as_deref().map(str::trim) == Some("BOOK")
}

/// Checks each statement's currency and balances; the entries in file order with their signed
/// amounts (`None` for entries that are not booked) and statement ids.
fn settle(stmts: Vec<Stmt>, account: Currency) -> Fallible<Vec<(Ntry, Option<Decimal>, String)>> {
    let mut out = Vec::new();
    for (k, s) in stmts.into_iter().enumerate() {
        let stmt_id =
            s.id.as_deref()
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map_or_else(|| format!("statement{}", k + 1), str::to_string);
        let what = format!(
            "statement {} (`{}`)",
            k + 1,
            s.id.as_deref().unwrap_or("").trim()
        );
        if let Some(c) = &s.currency {
            let c = Currency::new(c).map_err(|e| format!("{what}: account: {e}"))?;
            if c != account {
                return Err(format!(
                    "{what}: the account is in {c}, but the mapping's settlement currency is {account}"
                ));
            }
        }
        let balance = |codes: &[&str], which: &str| -> Fallible<Decimal> {
            let b = codes
                .iter()
                .find_map(|code| {
                    s.balances
                        .iter()
                        .find(|b| b.code.as_deref().map(str::trim) == Some(*code))
                })
                .ok_or_else(|| format!("{what} has no {which} balance ({})", codes[0]))?;
            signed(
                b.amount.as_deref(),
                b.currency.as_deref(),
                b.direction.as_deref(),
                account,
            )
            .map_err(|e| format!("{what}: {which} balance: {e}"))
        };
        let opening = balance(&["OPBD", "PRCD"], "opening")?;
        let closing = balance(&["CLBD"], "closing")?;
        let mut movements = Decimal::ZERO;
        for (i, n) in s.entries.into_iter().enumerate() {
            let id = match n.servicer_ref.as_deref().map(str::trim) {
                Some(r) if !no_reference(r) => statement_id(&[r]),
                _ => statement_id(&[&stmt_id, &(i + 1).to_string()]),
            };
            let amount = signed(
                n.amount.as_deref(),
                n.currency.as_deref(),
                n.direction.as_deref(),
                account,
            )
            .map_err(|e| format!("{what}, entry {}: {e}", out.len() + 1))?;
            if booked(&n) {
                movements = movements
                    .checked_add(amount)
                    .ok_or_else(|| format!("{what}: the entries overflow"))?;
                out.push((n, Some(amount), id));
            } else {
                out.push((n, None, id));
            }
        }
        match opening.checked_add(movements) {
            Some(sum) if sum == closing => {}
            sum => {
                return Err(format!(
                    "{what}: opening balance {opening} + booked entries {movements} = {}, but the closing balance is {closing}",
                    sum.map_or_else(|| "overflow".to_string(), |s| s.to_string())
                ));
            }
        }
    }
    Ok(out)
}

/// The fee of an entry: its charge records summed.
fn fees(fees: &[String]) -> std::result::Result<Option<Decimal>, FieldError> {
    let mut sum: Option<Decimal> = None;
    for f in fees {
        let v = number(f, '.')?;
        sum = Some(
            sum.unwrap_or_default()
                .checked_add(v)
                .ok_or_else(|| ferr(RejectReason::AmountOverflow, "the charges overflow"))?,
        );
    }
    Ok(sum)
}

fn entry(n: Ntry, amount: Decimal, id: String, tz: chrono_tz::Tz) -> Entry {
    let date = n
        .booking_date
        .as_deref()
        .or(n.value_date.as_deref())
        .map(str::trim)
        .filter(|d| !d.is_empty());
    Entry {
        statement_id: id,
        transaction_id: if n.tx_details > 1 {
            None
        } else {
            n.end_to_end_id.as_deref().and_then(reference_id)
        },
        posting_date: date.map_or_else(
            || {
                Err(ferr(
                    RejectReason::MissingField,
                    "`posting_date` is empty or missing",
                ))
            },
            |d| iso_date(d, tz),
        ),
        amount,
        fee: fees(&n.fees),
        merchant_id: n.merchant,
        reference: n.remittance.join(" ").trim().to_string(),
        record_type: n.bank_code,
    }
}

/// Reads a camt.053 document: checks every statement, then hands each `<Ntry>` to `sink`.
pub fn read(ctx: &FormatContext, bytes: &[u8], sink: &mut impl EntrySink) -> FileResult<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "camt.053 must be UTF-8 XML: {e}; a Latin-1 or Windows-1252 file needs `encoding` in the source mapping"
        )
    })?;
    if text.trim().is_empty() {
        return Ok(());
    }
    let entries = settle(statements(text)?, ctx.account)?;
    for (i, (n, amount, id)) in entries.into_iter().enumerate() {
        let no = i as u64 + 1;
        let raw = Raw::Verbatim(bytes.get(n.span.0..n.span.1).unwrap_or_default());
        if let Some(at) = n.nested {
            sink.entry(
                no,
                raw,
                Err(ferr(
                    RejectReason::MalformedRow,
                    format!(
                        "the entry holds another <Ntry> (at byte {at}): entries cannot nest; the bank must send each entry directly under <Stmt>"
                    ),
                )),
            );
            continue;
        }
        match amount {
            Some(amount) => sink.entry(no, raw, Ok(entry(n, amount, id, ctx.tz))),
            None => sink.entry(
                no,
                raw,
                Err(ferr(
                    RejectReason::InvalidEnum,
                    format!(
                        "entry status `{}` is not BOOK: only booked entries are statement lines",
                        n.status.as_deref().unwrap_or_default().trim()
                    ),
                )),
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
