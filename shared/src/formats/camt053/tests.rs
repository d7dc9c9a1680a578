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
