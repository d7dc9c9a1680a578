use chrono::TimeZone;
use rust_decimal::dec;

use super::*;

const ID: &str = "brk_0123456789abcdef0123";

fn bank() -> Result<BankId> {
    BankId::new("bank_a")
}

fn date() -> Result<BusinessDate> {
    BusinessDate::parse("2026-11-20")
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, minute, 0)
        .single()
        .unwrap_or_default()
}

fn amounts(disc: Decimal) -> Amounts {
    Amounts {
        expected_amount: Some(dec!(100.00)),
        amount_posted: Some(dec!(100.00) + disc),
        discrepancy: Some(disc),
        fee_variance: Some(dec!(0.00)),
    }
}

fn facts(kind: MismatchType) -> Result<BreakFacts> {
    Ok(BreakFacts {
        break_id: ID.into(),
        bank_id: bank()?,
        business_date: date()?,
        mismatch_type: kind,
        currency: Currency::new("EUR")?,
        amounts: amounts(dec!(2.00)),
        first_seen: Some(date()?.date()),
        age_days: Some(0),
        transaction_ids: vec!["T1".into()],
        statement_ids: vec!["L1".into()],
    })
}

fn chain(actions: Vec<Action>) -> Result<Vec<BreakEvent>> {
    let mut out: Vec<BreakEvent> = Vec::new();
    for (i, a) in actions.into_iter().enumerate() {
        let e = BreakEvent::next(
            out.last(),
            ID,
            bank()?,
            a,
            "alice",
            at(i as u32),
            (date()?, amounts(dec!(2.00))),
        )?;
        out.push(e);
    }
    Ok(out)
}

fn resolve(reason: ResolveReason, note: &str) -> Action {
    Action::Resolve {
        reason,
        note: note.into(),
        transaction_ids: vec![],
        statement_ids: vec![],
    }
}

#[test]
fn a_chain_verifies_and_any_change_is_found_at_its_event() -> Result<()> {
    let events = chain(vec![
        Action::Assign {
            owner: "bob".into(),
        },
        Action::Comment {
            text: "bank says fee".into(),
        },
        resolve(ResolveReason::WriteOff, "below threshold"),
    ])?;
    assert_eq!(verify(&events), Ok(()));
    assert_eq!(events[0].prev_hash, GENESIS);
    assert_eq!(events[2].prev_hash, events[1].hash);

    // A changed comment: its own hash no longer matches.
    let mut tampered = events.clone();
    tampered[1].action = Action::Comment {
        text: "bank says nothing".into(),
    };
    let b = verify(&tampered).err();
    assert_eq!(b.map(|b| b.seq), Some(2));

    // A changed comment re-hashed: the next event's link breaks.
    tampered[1].hash = tampered[1].computed_hash()?;
    let b = verify(&tampered).err();
    assert!(
        b.as_ref()
            .is_some_and(|b| b.seq == 3 && b.reason.contains("prev_hash")),
        "{b:?}"
    );

    // A removed event: the numbering says so.
    let mut removed = events.clone();
    removed.remove(1);
    assert_eq!(verify(&removed).err().map(|b| b.seq), Some(3));

    // Incremental checking from a known head agrees.
    assert_eq!(verify_after(Some(&events[0]), &events[1..]), Ok(()));
    assert!(verify_after(Some(&events[1]), &events[1..]).is_err());
    Ok(())
}

#[test]
fn the_hash_is_over_sorted_canonical_json() -> Result<()> {
    let events = chain(vec![Action::Comment { text: "x".into() }])?;
    let mut v = serde_json::to_value(&events[0])?;
    if let Value::Object(m) = &mut v {
        m.remove("hash");
    }
    let text = canonical_json(&v);
    assert!(
        text.starts_with("{\"action\":\"COMMENT\",\"actor\":\"alice\",\"amounts\":{"),
        "{text}"
    );
    assert!(!text.contains(' ') || text.contains("\"text\":\"x\""));
    assert_eq!(
        events[0].hash,
        sha256_hex(format!("{GENESIS}{text}").as_bytes())
    );
    // The JSON an event is stored as reads back to the same event (and hash).
    let back: BreakEvent = serde_json::from_slice(&serde_json::to_vec(&events[0])?)?;
    assert_eq!(back, events[0]);
    assert_eq!(back.computed_hash()?, back.hash);
    Ok(())
}

#[test]
fn state_folds_assign_comment_resolve_reopen() -> Result<()> {
    let events = chain(vec![
        Action::Assign {
            owner: "bob".into(),
        },
        Action::Comment { text: "a".into() },
        resolve(ResolveReason::WriteOff, "small"),
    ])?;
    let s = BreakState::of(&events);
    assert_eq!(s.owner.as_deref(), Some("bob"));
    assert_eq!(s.comments, 1);
    assert_eq!(s.events, 3);
    assert!(
        s.resolution
            .as_ref()
            .is_some_and(|r| r.reason == ResolveReason::WriteOff && r.seq == 3)
    );
    let events = chain(vec![
        resolve(ResolveReason::WriteOff, "small"),
        Action::Reopen { note: "no".into() },
    ])?;
    assert_eq!(BreakState::of(&events).resolution, None);
    Ok(())
}

#[test]
fn refusals_name_what_is_wrong() -> Result<()> {
    let f = facts(MismatchType::Amount)?;
    let ctx = Context {
        facts: &f,
        items: &[],
        tolerance_minor: 1,
    };
    let open = BreakState::default();
    let resolved = BreakState::of(&chain(vec![resolve(ResolveReason::WriteOff, "x")])?);
    let invalid = |r: std::result::Result<(), Refusal>| matches!(r, Err(Refusal::Invalid(_)));
    let conflict = |r: std::result::Result<(), Refusal>| matches!(r, Err(Refusal::Conflict(_)));

    assert!(invalid(check(
        &open,
        &Action::Assign { owner: " ".into() },
        &ctx
    )));
    assert!(invalid(check(
        &open,
        &Action::Comment {
            text: String::new()
        },
        &ctx
    )));
    assert!(invalid(check(
        &open,
        &Action::Comment {
            text: "a\u{7}".into()
        },
        &ctx
    )));
    assert!(invalid(check(
        &open,
        &Action::Comment {
            text: "x".repeat(MAX_TEXT + 1)
        },
        &ctx
    )));
    // A write-off needs a note; a resolved break cannot be resolved again; an open one cannot
    // be reopened.
    assert!(invalid(check(
        &open,
        &resolve(ResolveReason::WriteOff, ""),
        &ctx
    )));
    assert_eq!(
        check(&open, &resolve(ResolveReason::WriteOff, "small"), &ctx),
        Ok(())
    );
    assert!(conflict(check(
        &resolved,
        &resolve(ResolveReason::Other, "again"),
        &ctx
    )));
    assert!(conflict(check(
        &open,
        &Action::Reopen {
            note: String::new()
        },
        &ctx
    )));
    assert_eq!(
        check(
            &resolved,
            &Action::Reopen {
                note: String::new()
            },
            &ctx
        ),
        Ok(())
    );
    // Reasons that fit the kind of break only (a fact of the break: 409).
    assert!(conflict(check(
        &open,
        &resolve(ResolveReason::DuplicateConfirmed, ""),
        &ctx
    )));
    assert_eq!(
        check(&open, &resolve(ResolveReason::AcceptedVariance, "ok"), &ctx),
        Ok(())
    );
    let dup = facts(MismatchType::Duplicate)?;
    let dup_ctx = Context { facts: &dup, ..ctx };
    assert_eq!(
        check(
            &open,
            &resolve(ResolveReason::DuplicateConfirmed, ""),
            &dup_ctx
        ),
        Ok(())
    );
    assert!(conflict(check(
        &open,
        &resolve(ResolveReason::AcceptedVariance, "ok"),
        &dup_ctx
    )));
    // Only a manual match names items.
    let named = Action::Resolve {
        reason: ResolveReason::WriteOff,
        note: "x".into(),
        transaction_ids: vec!["T1".into()],
        statement_ids: vec![],
    };
    assert!(invalid(check(&open, &named, &ctx)));
    Ok(())
}

#[test]
fn a_manual_match_needs_open_items_that_add_up_or_a_note() -> Result<()> {
    let f = facts(MismatchType::MissingAtBank)?;
    let eur = Currency::new("EUR")?;
    let item = |id: &str, line: bool, amount: Decimal| {
        (
            id.to_string(),
            Some(OpenItem {
                id: id.into(),
                line,
                amount: Some(amount),
                currency: eur,
            }),
        )
    };
    let manual = |t: &[&str], l: &[&str], note: &str| Action::Resolve {
        reason: ResolveReason::ManualMatch,
        note: note.into(),
        transaction_ids: t.iter().map(|s| s.to_string()).collect(),
        statement_ids: l.iter().map(|s| s.to_string()).collect(),
    };
    let open = BreakState::default();
    let items = [
        item("T1", false, dec!(100.00)),
        item("L9", true, dec!(100.01)),
    ];
    let ctx = Context {
        facts: &f,
        items: &items,
        tolerance_minor: 1,
    };
    // Within tolerance (one cent): no note needed.
    assert_eq!(check(&open, &manual(&["T1"], &["L9"], ""), &ctx), Ok(()));
    // Two cents apart: a note is needed.
    let far = [
        item("T1", false, dec!(100.00)),
        item("L9", true, dec!(100.02)),
    ];
    let far_ctx = Context { items: &far, ..ctx };
    assert!(matches!(
        check(&open, &manual(&["T1"], &["L9"], ""), &far_ctx),
        Err(Refusal::Conflict(m)) if m.contains("note")
    ));
    assert_eq!(
        check(&open, &manual(&["T1"], &["L9"], "bank rounding"), &far_ctx),
        Ok(())
    );
    // An item the close does not hold open: 404.
    let missing = [item("T1", false, dec!(100.00)), ("L404".to_string(), None)];
    let missing_ctx = Context {
        items: &missing,
        ..ctx
    };
    assert!(matches!(
        check(&open, &manual(&["T1"], &["L404"], ""), &missing_ctx),
        Err(Refusal::NotFound(_))
    ));
    // Both sides, none twice, and one of the break's own items.
    assert!(matches!(
        check(&open, &manual(&["T1"], &[], ""), &ctx),
        Err(Refusal::Invalid(_))
    ));
    assert!(matches!(
        check(&open, &manual(&["T1", "T1"], &["L9"], ""), &ctx),
        Err(Refusal::Invalid(_))
    ));
    assert!(matches!(
        check(&open, &manual(&["T7"], &["L9"], ""), &ctx),
        Err(Refusal::Conflict(_))
    ));
    Ok(())
}

#[test]
fn decisions_keep_resolutions_in_force_only() -> Result<()> {
    let mut events = chain(vec![resolve(ResolveReason::WriteOff, "small")])?;
    let other = "brk_ffffffffffffffffffff";
    let mut second: Vec<BreakEvent> = Vec::new();
    for a in [
        Action::Resolve {
            reason: ResolveReason::ManualMatch,
            note: String::new(),
            transaction_ids: vec!["T1".into()],
            statement_ids: vec!["L9".into()],
        },
        Action::Reopen {
            note: "wrong".into(),
        },
        Action::Resolve {
            reason: ResolveReason::ManualMatch,
            note: String::new(),
            transaction_ids: vec!["T1".into()],
            statement_ids: vec!["L8".into()],
        },
    ] {
        let e = BreakEvent::next(
            second.last(),
            other,
            bank()?,
            a,
            "carol",
            at(5),
            (date()?, Amounts::default()),
        )?;
        second.push(e);
    }
    events.extend(second.into_iter().rev());
    let d = Decisions::of(events);
    assert_eq!(d.resolved.len(), 1);
    assert!(
        d.resolved
            .get(ID)
            .is_some_and(|h| h.reason == ResolveReason::WriteOff && h.seq == 1)
    );
    assert_eq!(d.manual.len(), 1);
    assert_eq!(d.manual[0].statement_ids, vec!["L8".to_string()]);
    assert!(is_break_id(ID) && !is_break_id("brk_0123") && !is_break_id("../etc/passwd"));
    Ok(())
}

#[test]
fn a_reopen_note_says_what_changed() {
    let note = amounts(dec!(3.00)).changes_from(&amounts(dec!(2.00)));
    assert_eq!(
        note,
        "amounts changed since the resolution: amount_posted 102.00 -> 103.00, discrepancy 2.00 -> 3.00"
    );
}
