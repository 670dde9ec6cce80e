//! Amounts: the wallet counts satoshis (`i64`); lotusd's JSON counts XPI with six decimals.

pub use lotus::policy::SATS_PER_XPI;

/// An amount in XPI as lotusd prints it, e.g. `0.000546` for 546 satoshis.
pub fn to_xpi_json(sats: i64) -> serde_json::Value {
    // Exact: every satoshi amount below 2^53 is a float the decimal string round-trips.
    serde_json::Value::from(sats as f64 / SATS_PER_XPI as f64)
}

/// The satoshis in an XPI amount from lotusd's JSON; `None` if it is not a number, is
/// negative, above the sanity bound, or has more than six decimals. Read from the number's
/// decimal digits, not by float arithmetic (which misses by a satoshi on large amounts).
pub fn from_xpi_json(value: &serde_json::Value) -> Option<i64> {
    let serde_json::Value::Number(number) = value else {
        return None;
    };
    let text = number.to_string();
    let sats = if text.contains(['e', 'E']) {
        // Exponent form (tiny or huge amounts): exact enough through f64 at these scales.
        let xpi = number.as_f64()?;
        let sats = (xpi * SATS_PER_XPI as f64).round();
        ((xpi * SATS_PER_XPI as f64 - sats).abs() < 1e-3).then_some(sats as i64)?
    } else {
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        if whole.starts_with('-') || fraction.len() > 6 && fraction[6..].bytes().any(|b| b != b'0')
        {
            return None;
        }
        let fraction = &fraction[..fraction.len().min(6)];
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
        whole.checked_mul(SATS_PER_XPI)?.checked_add(fraction)?
    };
    (0..=lotus::policy::MAX_AMOUNT)
        .contains(&sats)
        .then_some(sats)
}

/// `12.345678 XPI` for people.
pub fn format_xpi(sats: i64) -> String {
    let sign = if sats < 0 { "-" } else { "" };
    let abs = sats.unsigned_abs();
    format!(
        "{sign}{}.{:06} XPI",
        abs / SATS_PER_XPI as u64,
        abs % SATS_PER_XPI as u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_large_exact_amounts() {
        // Float arithmetic missed these by the tolerance (about 3% of amounts in 1e13..1e14).
        assert_eq!(
            from_xpi_json(&serde_json::json!(33566784.119432)),
            Some(33_566_784_119_432)
        );
        for sats in (0..2000).map(|i| 10_000_000_000_000 + i * 45_000_000_001) {
            assert_eq!(from_xpi_json(&to_xpi_json(sats)), Some(sats), "{sats}");
        }
    }

    #[test]
    fn round_trips_every_scale() {
        for sats in [
            0,
            1,
            546,
            999_999,
            1_000_000,
            260_000_000,
            123_456_789_012_345,
        ] {
            assert_eq!(from_xpi_json(&to_xpi_json(sats)), Some(sats), "{sats}");
        }
        assert_eq!(from_xpi_json(&serde_json::json!(-1)), None);
        assert_eq!(
            from_xpi_json(&serde_json::json!(0.0000001)),
            None,
            "below a satoshi"
        );
        assert_eq!(from_xpi_json(&serde_json::json!(5e-6)), Some(5));
        assert_eq!(from_xpi_json(&serde_json::json!("1")), None);
        assert_eq!(format_xpi(1_500_001), "1.500001 XPI");
    }
}
