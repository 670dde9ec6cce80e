//! Amounts: the wallet counts satoshis (`i64`); lotusd's JSON counts XPI with six decimals.

pub use lotus::policy::SATS_PER_XPI;

/// An amount in XPI as lotusd prints it, e.g. `0.000546` for 546 satoshis.
pub fn to_xpi_json(sats: i64) -> serde_json::Value {
    // Exact: every satoshi amount below 2^53 is a float the decimal string round-trips.
    serde_json::Value::from(sats as f64 / SATS_PER_XPI as f64)
}

/// The satoshis in an XPI amount from lotusd's JSON; `None` if it is not a finite number, is
/// negative or has more than six decimals' worth of precision loss.
pub fn from_xpi_json(value: &serde_json::Value) -> Option<i64> {
    let xpi = value.as_f64()?;
    let max_xpi = (lotus::policy::MAX_AMOUNT / SATS_PER_XPI) as f64;
    if !xpi.is_finite() || !(0.0..=max_xpi).contains(&xpi) {
        return None;
    }
    let sats = (xpi * SATS_PER_XPI as f64).round();
    ((xpi * SATS_PER_XPI as f64) - sats)
        .abs()
        .lt(&1e-3)
        .then_some(sats as i64)
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
        assert_eq!(from_xpi_json(&serde_json::json!("1")), None);
        assert_eq!(format_xpi(1_500_001), "1.500001 XPI");
    }
}
