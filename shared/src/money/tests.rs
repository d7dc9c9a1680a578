use super::*;
use rust_decimal::dec;

#[test]
fn rounding_to_minor_units_matches_the_decimal_rule() -> Result<()> {
    let (usd, jpy, kwd) = (
        Currency::new("USD")?,
        Currency::new("JPY")?,
        Currency::new("KWD")?,
    );
    for (c, d) in [
        (usd, dec!(10.00)),
        (usd, dec!(10.0000)),
        (usd, dec!(10.005)),
        (usd, dec!(10.015)),
        (usd, dec!(-10.0050)),
        (usd, dec!(7)),
        (usd, dec!(0.0001)),
        (jpy, dec!(1234.5)),
        (jpy, dec!(1234.0000)),
        (kwd, dec!(1.2345)),
        (kwd, dec!(-3.1)),
    ] {
        assert_eq!(c.round_to_minor(d)?, c.to_minor(c.round(d))?, "{c} {d}");
    }
    assert_eq!(usd.round_to_minor(dec!(10.0000))?, 1000);
    assert!(usd.round_to_minor(Decimal::MAX).is_err());
    Ok(())
}

#[test]
fn currencies_know_their_minor_unit() -> Result<()> {
    assert_eq!(Currency::new("usd")?.exponent(), 2);
    assert_eq!(Currency::new("JPY")?.exponent(), 0);
    assert_eq!(Currency::new("KWD")?.exponent(), 3);
    assert_eq!(Currency::new("CLF")?.exponent(), 4);
    for bad in ["", "US", "USDX", "XXX", "ABC", "€"] {
        assert!(
            matches!(Currency::new(bad), Err(Error::UnknownCurrency(_))),
            "{bad} accepted"
        );
    }
    Ok(())
}

#[test]
fn table_is_sorted_for_binary_search() {
    assert!(ISO_4217.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn rounding_is_half_away_from_zero_at_the_minor_unit() -> Result<()> {
    let usd = Currency::new("USD")?;
    assert_eq!(usd.round(dec!(1.005)), dec!(1.01));
    assert_eq!(usd.round(dec!(-1.005)), dec!(-1.01));
    assert_eq!(usd.round(dec!(2)).to_string(), "2.00");
    let jpy = Currency::new("JPY")?;
    assert_eq!(jpy.round(dec!(100.5)), dec!(101));
    Ok(())
}

#[test]
fn exact_refuses_extra_decimals() -> Result<()> {
    let usd = Currency::new("USD")?;
    assert_eq!(usd.exact(dec!(1.5))?.to_string(), "1.50");
    assert_eq!(usd.exact(dec!(1.500))?.to_string(), "1.50");
    assert!(usd.exact(dec!(1.505)).is_err());
    assert!(Currency::new("JPY")?.exact(dec!(1.5)).is_err());
    assert_eq!(usd.to_minor(dec!(12.34))?, 1234);
    assert_eq!(usd.from_minor(-1234), dec!(-12.34));
    Ok(())
}

#[test]
fn money_refuses_to_mix_currencies() -> Result<()> {
    let a = Money::new(dec!(1.10), Currency::new("USD")?);
    let b = Money::new(dec!(2.20), Currency::new("EUR")?);
    assert!(a.checked_add(b).is_err());
    assert_eq!(a.checked_add(a)?.amount, dec!(2.20));
    assert_eq!(a.checked_sub(a)?.amount, dec!(0.00));
    Ok(())
}

#[test]
fn parse_decimal_handles_separators_and_refuses_garbage() -> Result<()> {
    assert_eq!(parse_decimal("1234,56", ',')?, dec!(1234.56));
    assert_eq!(parse_decimal("-0.5", '.')?, dec!(-0.5));
    assert_eq!(parse_decimal("+7", '.')?, dec!(7));
    for bad in [
        "",
        "-",
        "1.2.3",
        "1,2",
        "abc",
        "1e5",
        "12 3",
        "99999999999999999999999999999",
        ".",
        "+.",
    ] {
        assert!(parse_decimal(bad, '.').is_err(), "{bad} accepted");
    }
    Ok(())
}

#[test]
fn too_precise_is_told_apart_from_too_large() -> Result<()> {
    let reason = |raw: &str| match parse_decimal(raw, '.') {
        Err(Error::InvalidAmount { reason, .. }) => reason,
        other => format!("{other:?}"),
    };
    // Trailing zeros and leading zeros carry no digits.
    let one = format!("1.{}", "0".repeat(30));
    assert_eq!(parse_decimal(&one, '.')?, dec!(1));
    assert_eq!(
        parse_decimal(&format!("{}7.25", "0".repeat(40)), '.')?,
        dec!(7.25)
    );
    assert_eq!(parse_decimal("10.50", '.')?.to_string(), "10.50");
    assert_eq!(
        reason(&format!("1.{}1", "0".repeat(29))),
        TOO_MANY_DECIMAL_PLACES
    );
    assert_eq!(
        reason(&format!("0.{}1", "0".repeat(29))),
        TOO_MANY_DECIMAL_PLACES
    );
    assert_eq!(reason(&"9".repeat(29)), TOO_MANY_DIGITS);
    assert_eq!(reason(&format!("{}.5", "9".repeat(29))), TOO_MANY_DIGITS);
    // 28 digits in all are exact.
    let exact = format!("{}.{}", "9".repeat(14), "9".repeat(14));
    assert_eq!(parse_decimal(&exact, '.')?.to_string(), exact);
    Ok(())
}

#[test]
fn the_amount_limit_is_that_of_the_money_columns() {
    assert!(within_amount_limit(dec!(99999999999999.9999)));
    assert!(within_amount_limit(dec!(-99999999999999.9999)));
    assert!(!within_amount_limit(dec!(100000000000000)));
    assert!(!within_amount_limit(dec!(-100000000000000)));
}

#[test]
fn fx_conversion_is_exact_and_round_trips_through_csv() -> Result<()> {
    let (eur, usd, jpy) = (
        Currency::new("EUR")?,
        Currency::new("USD")?,
        Currency::new("JPY")?,
    );
    let date = BusinessDate::parse("2026-11-20")?;
    let mut fx = FxTable::default();
    fx.insert(eur, usd, dec!(1.0845123456))?;
    fx.insert(usd, jpy, dec!(151.2345678901))?;
    assert_eq!(
        fx.convert(dec!(100.00), eur, usd, date)?,
        (dec!(108.45), dec!(1.0845123456))
    );
    assert_eq!(fx.convert(dec!(10.00), usd, jpy, date)?.0, dec!(1512));
    assert_eq!(fx.convert(dec!(5.00), usd, usd, date)?.0, dec!(5.00));
    assert!(fx.convert(dec!(1), jpy, eur, date).is_err());
    let back = FxTable::from_csv(&fx.to_csv())?;
    assert_eq!(back, fx);
    assert!(FxTable::insert(&mut FxTable::default(), eur, usd, dec!(0)).is_err());
    Ok(())
}

#[test]
fn a_bad_fx_table_names_its_file_and_the_line() {
    let file = "config/fx/2026-11-20.csv";
    let err = |text: &str| {
        FxTable::from_file(file, text.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    for (text, line, what) in [
        // Before: "invalid amount `abc`: not a number", no file, no line.
        (
            "base,quote,rate\nEUR,USD,1.08\n\nUSD,JPY,abc\n",
            "line 4:",
            "not a number",
        ),
        (
            "base,quote,rate\nEUR,USD,0\n",
            "line 2:",
            "must be positive",
        ),
        (
            "base,quote,rate\nEUR,USD,-1.2\n",
            "line 2:",
            "must be positive",
        ),
        ("base,quote,rate\nEUR,USD\n", "line 2:", "2 field(s)"),
        (
            "base,quote,rate\nEUR,XXY,1\n",
            "line 2:",
            "unknown ISO 4217",
        ),
        (
            "base,quote,rate\nEUR,USD,1.1\nEUR,USD,1.2\n",
            "line 3:",
            "first on line 2",
        ),
        ("rate,base,quote\n", "line 1:", "header"),
        ("", "line 3:", "not UTF-8"),
    ] {
        let e = if what == "not UTF-8" {
            FxTable::from_file(file, b"base,quote,rate\nEUR,USD,1.1\n\xff\n")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        } else {
            err(text)
        };
        assert!(
            e.contains(file)
                && e.contains(line)
                && e.contains(what)
                && e.contains("correct the line"),
            "{text:?}: {e}"
        );
    }
    assert!(
        FxTable::from_file(
            file,
            "\u{feff}base,quote,rate\r\nEUR,USD,1.1\r\n".as_bytes()
        )
        .is_ok()
    );
}
