//! Lotus network upgrades the wallet must respect, as data. A session whose signing window
//! straddles a change of sighash rules is refused: signatures made before the change could be
//! invalid after it (or the reverse), and a group cannot re-sign quickly.
//!
//! Sources: lotusd src/chainparams.cpp and doc/upgrades (2nd Samuel), lotusd v11.4.14 release
//! (2nd Kings); see ../shared/reference/lotus.md §1.5 and §9.

use lotus::address::Network;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade {
    pub name: &'static str,
    /// Activation by the chain's median time past, Unix seconds.
    pub activation: u64,
    pub changes_sighash: bool,
    pub what: &'static str,
}

/// Median time past lags wall time by about an hour; a window this wide around an activation
/// counts as "during the upgrade".
pub const UNCERTAINTY_SECONDS: u64 = 2 * 3600;

const SECOND_SAMUEL: u64 = 1_766_329_380; // 2025-12-21 15:03:00 UTC
const SECOND_KINGS: u64 = 1_798_074_180; // 2026-12-24 01:03:00 UTC

pub fn upgrades(network: Network) -> Vec<Upgrade> {
    // Testnet activated 2nd Samuel 21 days before mainnet; regtest uses mainnet's times. For
    // 2nd Kings the reference gives mainnet's time only, used for every network.
    let samuel = match network {
        Network::Testnet => SECOND_SAMUEL - 21 * 86_400,
        Network::Mainnet | Network::Regtest => SECOND_SAMUEL,
    };
    vec![
        Upgrade {
            name: "2nd Samuel",
            activation: samuel,
            changes_sighash: true,
            what: "Taproot outputs and SIGHASH_LOTUS become valid again",
        },
        Upgrade {
            name: "2nd Kings",
            activation: SECOND_KINGS,
            changes_sighash: true,
            what: "nodes that do not upgrade switch to replay-protected signatures (fork value \
                   0xdead); this wallet keeps signing with fork value 0, as upgraded nodes expect",
        },
    ]
}

/// The fork value this wallet signs with on `network` (shown in the chain status).
pub fn fork_value(_network: Network) -> u32 {
    0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this session could still be signing when the {name} upgrade activates (around {when} UTC): \
     {what}. Signatures made on one side of it may be refused on the other. Let the session \
     expire at least {margin_hours} hours before it, or propose it after it."
)]
pub struct StraddlesUpgrade {
    pub name: &'static str,
    pub when: String,
    pub what: &'static str,
    pub margin_hours: u64,
}

/// Refuses a signing window `[now, expires]` (Unix seconds) that comes within
/// [`UNCERTAINTY_SECONDS`] of a sighash-changing upgrade.
pub fn check_window(network: Network, now: u64, expires: u64) -> Result<(), StraddlesUpgrade> {
    for upgrade in upgrades(network).into_iter().filter(|u| u.changes_sighash) {
        let start = upgrade.activation.saturating_sub(UNCERTAINTY_SECONDS);
        let end = upgrade.activation + UNCERTAINTY_SECONDS;
        if now <= end && expires >= start {
            return Err(StraddlesUpgrade {
                name: upgrade.name,
                when: utc(upgrade.activation),
                what: upgrade.what,
                margin_hours: UNCERTAINTY_SECONDS / 3600,
            });
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` (UTC) without a date library (days-from-civil inverse).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_printed_in_utc() {
        assert_eq!(utc(SECOND_KINGS), "2026-12-24 01:03");
        assert_eq!(utc(SECOND_SAMUEL), "2025-12-21 15:03");
        assert_eq!(utc(0), "1970-01-01 00:00");
    }

    #[test]
    fn a_window_across_2nd_kings_is_refused_and_one_before_it_is_not() {
        let day = 86_400;
        // A day-long session proposed 12 hours before activation.
        let err = check_window(
            Network::Mainnet,
            SECOND_KINGS - day / 2,
            SECOND_KINGS + day / 2,
        )
        .unwrap_err();
        assert_eq!(err.name, "2nd Kings");
        assert!(err.to_string().contains("2026-12-24 01:03"), "{err}");
        // Expiring three hours before: fine. One hour before: inside the uncertainty.
        assert!(check_window(
            Network::Mainnet,
            SECOND_KINGS - day,
            SECOND_KINGS - 3 * 3600
        )
        .is_ok());
        assert!(check_window(Network::Mainnet, SECOND_KINGS - day, SECOND_KINGS - 3600).is_err());
        // Long after: fine.
        assert!(check_window(Network::Mainnet, SECOND_KINGS + day, SECOND_KINGS + 2 * day).is_ok());
    }
}
