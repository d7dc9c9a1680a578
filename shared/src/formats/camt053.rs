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
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::formats::tests::{file_failure, mapping, parse};
    use crate::ids::{BankId, BusinessDate, MerchantId, StatementId, TransactionId};
    use crate::records::{RecordType, StatementLine};

    struct N<'a> {
        seq: u32,
        amount: &'a str,
        dir: &'a str,
        status: &'a str,
        e2e: &'a str,
        merchant: Option<&'a str>,
        fee: &'a str,
        ustrd: &'a str,
        kind: &'a str,
    }

    fn ntry(n: &N<'_>) -> String {
        let parties = n.merchant.map_or(String::new(), |m| {
            format!(
                "<RltdPties><Cdtr><Pty><Nm>Shop</Nm><Id><OrgId><Othr><Id>{m}</Id></Othr></OrgId></Id></Pty></Cdtr></RltdPties>"
            )
        });
        format!(
            r#"<Ntry>
        <NtryRef>{seq:08}</NtryRef>
        <Amt Ccy="JPY">{amount}</Amt>
        <CdtDbtInd>{dir}</CdtDbtInd>
        <Sts><Cd>{status}</Cd></Sts>
        <BookgDt><Dt>2026-11-20</Dt></BookgDt>
        <ValDt><Dt>2026-11-21</Dt></ValDt>
        <AcctSvcrRef>bank_x-20261120-{seq:08}</AcctSvcrRef>
        <BkTxCd><Prtry><Cd>{kind}</Cd></Prtry></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{e2e}</EndToEndId></Refs>
          <Chrgs><Rcrd><Amt Ccy="JPY">{fee}</Amt></Rcrd></Chrgs>
          {parties}
          <RmtInf><Ustrd>{ustrd}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>"#,
            seq = n.seq,
            amount = n.amount,
            dir = n.dir,
            status = n.status,
            kind = n.kind,
            e2e = n.e2e,
            fee = n.fee,
            ustrd = n.ustrd,
        )
    }

    fn bal(code: &str, amount: &str, dir: &str) -> String {
        format!(
            r#"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="JPY">{amount}</Amt><CdtDbtInd>{dir}</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>"#
        )
    }

    fn stmt(id: &str, open: &str, close: &str, entries: &[N<'_>]) -> String {
        let entries: Vec<String> = entries.iter().map(ntry).collect();
        format!(
            "<Stmt>\n      <Id>{id}</Id>\n      <Acct><Id><Othr><Id>bank_x/JPY</Id></Othr></Id><Ccy>JPY</Ccy></Acct>\n      {}\n      {}\n      {}\n    </Stmt>",
            bal("OPBD", open, "CRDT"),
            bal("CLBD", close, "CRDT"),
            entries.join("\n      ")
        )
    }

    fn doc(ns: &str, stmts: &[String]) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{ns}\">\n  <BkToCstmrStmt>\n    <GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-21T01:10:00Z</CreDtTm></GrpHdr>\n    {}\n  </BkToCstmrStmt>\n</Document>\n",
            stmts.join("\n    ")
        )
        .into_bytes()
    }

    const NS: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

    fn settlement(seq: u32, e2e: &'static str) -> N<'static> {
        N {
            seq,
            amount: "1512",
            dir: "CRDT",
            status: "BOOK",
            e2e,
            merchant: Some("M000001"),
            fee: "30",
            ustrd: "INV 1 &amp; 2, &lt;ORDER&gt; &#233;",
            kind: "SETTLEMENT",
        }
    }

    /// Two statements: a settlement, a refund without id or merchant, a pending entry (left
    /// out of the balance and rejected), then a chargeback.
    fn valid() -> Vec<u8> {
        doc(
            NS,
            &[
                stmt(
                    "S1",
                    "1000",
                    "2400",
                    &[
                        settlement(1, "TX-20261120-000000001"),
                        N {
                            seq: 2,
                            amount: "112",
                            dir: "DBIT",
                            status: "BOOK",
                            e2e: "NOTPROVIDED",
                            merchant: None,
                            fee: "0",
                            ustrd: "REFUND",
                            kind: "REFUND",
                        },
                        N {
                            status: "PDNG",
                            ..settlement(3, "TX-20261120-000000003")
                        },
                    ],
                ),
                stmt(
                    "S2",
                    "2400",
                    "2000",
                    &[N {
                        amount: "400",
                        dir: "DBIT",
                        fee: "0",
                        kind: "CHARGEBACK",
                        ..settlement(4, "TX-20261120-000000001")
                    }],
                ),
            ],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        seq: u32,
        txn: Option<&str>,
        amount: i64,
        fee: i64,
        merchant: Option<&str>,
        reference: &str,
        kind: RecordType,
    ) -> Result<StatementLine> {
        Ok(StatementLine {
            statement_id: StatementId::new(format!("bank_x-20261120-{seq:08}"))?,
            transaction_id: txn.map(TransactionId::new).transpose()?,
            bank_id: BankId::new("bank_x")?,
            posting_date: BusinessDate::parse("2026-11-20")?,
            amount_posted: Decimal::from(amount),
            currency: Currency::new("JPY")?,
            fee_charged: Decimal::from(fee),
            merchant_id: merchant.map(MerchantId::new).transpose()?,
            reference: reference.into(),
            record_type: Some(kind),
            original_amount: None,
            original_currency: None,
            fx_rate: None,
        })
    }

    #[test]
    fn a_valid_document_becomes_canonical_lines() -> Result<()> {
        let p = parse(&mapping("camt053", "JPY")?, &valid())?;
        let got: Vec<(u64, StatementLine)> = p.records;
        let refs = "INV 1 & 2, <ORDER> é";
        assert_eq!(
            got,
            vec![
                (
                    1,
                    line(
                        1,
                        Some("TX-20261120-000000001"),
                        1512,
                        30,
                        Some("M000001"),
                        refs,
                        RecordType::Settlement
                    )?
                ),
                (
                    2,
                    line(2, None, -112, 0, None, "REFUND", RecordType::Refund)?
                ),
                (
                    4,
                    line(
                        4,
                        Some("TX-20261120-000000001"),
                        -400,
                        0,
                        Some("M000001"),
                        refs,
                        RecordType::Chargeback
                    )?
                ),
            ]
        );
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].record, 3);
        assert_eq!(p.rejects[0].reason, RejectReason::InvalidEnum);
        assert!(p.rejects[0].raw.starts_with("<Ntry>") && p.rejects[0].raw.ends_with("</Ntry>"));
        assert!(p.rejects[0].raw.contains("<Cd>PDNG</Cd>"));
        Ok(())
    }

    #[test]
    fn balances_that_do_not_add_up_fail_the_file() -> Result<()> {
        let text = String::from_utf8_lossy(&valid()).replace(">2000<", ">2001<");
        let reason = file_failure(&mapping("camt053", "JPY")?, text.as_bytes())?;
        assert!(
            reason.contains("balance") && reason.contains("S2"),
            "{reason}"
        );
        let no_closing = String::from_utf8_lossy(&valid()).replace("CLBD", "XXXX");
        let reason = file_failure(&mapping("camt053", "JPY")?, no_closing.as_bytes())?;
        assert!(reason.contains("closing balance"), "{reason}");
        Ok(())
    }

    #[test]
    fn broken_xml_fails_the_file() -> Result<()> {
        let m = mapping("camt053", "JPY")?;
        let text = String::from_utf8_lossy(&valid()).into_owned();
        for broken in [
            text.replacen("</Stmt>", "", 1),
            text[..text.len() / 2].to_string(),
            text.replacen("<Ustrd>REFUND</Ustrd>", "<Ustrd>R&D</Ustrd>", 1),
            text.replacen("&amp;", "&nbsp;", 1),
            "statement_id,amount\nS1,10\n".to_string(),
        ] {
            let reason = file_failure(&m, broken.as_bytes())?;
            assert!(reason.contains("XML"), "{reason}");
        }
        Ok(())
    }

    #[test]
    fn other_namespaces_fail_the_file() -> Result<()> {
        let m = mapping("camt053", "JPY")?;
        let text = String::from_utf8_lossy(&valid()).into_owned();
        for wrong in [
            text.replace(NS, "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"),
            text.replace(&format!(" xmlns=\"{NS}\""), ""),
        ] {
            let reason = file_failure(&m, wrong.as_bytes())?;
            assert!(reason.contains("namespace"), "{reason}");
        }
        // A prefixed document of another camt.053 version reads the same.
        let prefixed = text
            .replace("<Document xmlns=", "<c:Document xmlns:c=")
            .replace("</Document>", "</c:Document>")
            .replace(NS, "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02");
        assert_eq!(parse(&m, prefixed.as_bytes())?.records.len(), 3);
        Ok(())
    }

    #[test]
    fn amounts_in_another_currency_fail_the_file() -> Result<()> {
        let reason = file_failure(&mapping("camt053", "EUR")?, &valid())?;
        assert!(reason.contains("currency"), "{reason}");
        let one_entry = String::from_utf8_lossy(&valid()).replacen(
            r#"<Amt Ccy="JPY">112</Amt>"#,
            r#"<Amt Ccy="USD">112</Amt>"#,
            1,
        );
        let reason = file_failure(&mapping("camt053", "JPY")?, one_entry.as_bytes())?;
        assert!(
            reason.contains("entry 2") && reason.contains("currency"),
            "{reason}"
        );
        Ok(())
    }

    #[test]
    fn a_bad_entry_is_rejected_and_the_others_read() -> Result<()> {
        let text = String::from_utf8_lossy(&valid())
            .replacen("TX-20261120-000000001", "TX 1", 1)
            .replacen("<Cd>REFUND</Cd>", "<Cd>PAYOUT</Cd>", 1);
        let p = parse(&mapping("camt053", "JPY")?, text.as_bytes())?;
        assert_eq!(p.records_in, 4);
        let reasons: Vec<(u64, RejectReason)> =
            p.rejects.iter().map(|r| (r.record, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (1, RejectReason::InvalidId),
                (2, RejectReason::InvalidEnum),
                (3, RejectReason::InvalidEnum)
            ]
        );
        assert_eq!(p.records.len(), 1);
        assert!(p.rejects[0].raw.contains("<EndToEndId>TX 1</EndToEndId>"));
        Ok(())
    }

    #[test]
    fn a_batch_entry_keeps_no_transaction_id_and_sums_its_fees() -> Result<()> {
        let text = String::from_utf8_lossy(&valid()).replacen(
            "</TxDtls></NtryDtls>",
            r#"</TxDtls><TxDtls><Refs><EndToEndId>TX-2</EndToEndId></Refs><Chrgs><Rcrd><Amt Ccy="JPY">12</Amt></Rcrd></Chrgs></TxDtls></NtryDtls>"#,
            1,
        );
        let p = parse(&mapping("camt053", "JPY")?, text.as_bytes())?;
        let (_, first) = &p.records[0];
        assert_eq!(first.transaction_id, None);
        assert_eq!(first.fee_charged, Decimal::from(42));
        assert_eq!(
            first.merchant_id.as_ref().map(MerchantId::as_str),
            Some("M000001")
        );
        Ok(())
    }

    #[test]
    fn an_entry_nested_in_an_entry_is_rejected_and_a_misplaced_one_fails_the_file() -> Result<()> {
        let m = mapping("camt053", "JPY")?;
        let inner = r#"<Ntry><NtryRef>99</NtryRef><Amt Ccy="JPY">5</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts></Ntry>"#;
        let nested = String::from_utf8_lossy(&valid()).replacen(
            "</NtryDtls>",
            &format!("</NtryDtls>{inner}"),
            1,
        );
        let p = parse(&m, nested.as_bytes())?;
        assert_eq!(p.records_in, 4, "the outer entry is one record");
        let reasons: Vec<(u64, RejectReason)> =
            p.rejects.iter().map(|r| (r.record, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (1, RejectReason::MalformedRow),
                (3, RejectReason::InvalidEnum)
            ]
        );
        assert!(
            p.rejects[0].detail.contains("<Ntry>"),
            "{}",
            p.rejects[0].detail
        );
        assert!(p.rejects[0].raw.contains("<NtryRef>99</NtryRef>"));
        assert_eq!(p.records.len(), 2);
        // Under another element of the statement: no entry list holds it.
        let misplaced =
            String::from_utf8_lossy(&valid()).replacen("<Bal>", &format!("<Bal>{inner}"), 1);
        let reason = file_failure(&m, misplaced.as_bytes())?;
        assert!(
            reason.contains("<Ntry>") && reason.contains("Bal"),
            "{reason}"
        );
        Ok(())
    }

    #[test]
    fn empty_input_has_no_records() -> Result<()> {
        let m = mapping("camt053", "JPY")?;
        for empty in [&b""[..], b"\n  \r\n"] {
            let p = parse(&m, empty)?;
            assert_eq!((p.records_in, p.records.len()), (0, 0));
        }
        let no_statements = format!(
            r#"<Document xmlns="{NS}"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr></BkToCstmrStmt></Document>"#
        );
        assert_eq!(parse(&m, no_statements.as_bytes())?.records_in, 0);
        Ok(())
    }
}
