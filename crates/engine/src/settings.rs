//! `settings.json` in the data folder: the few choices a person makes that are not secrets.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which Lotus network addresses are shown for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Mainnet,
    Testnet,
    Regtest,
}

impl Network {
    pub fn lotus(self) -> lotus::address::Network {
        match self {
            Network::Mainnet => lotus::address::Network::Mainnet,
            Network::Testnet => lotus::address::Network::Testnet,
            Network::Regtest => lotus::address::Network::Regtest,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub network: Network,
    /// Chain backends in `--chain` syntax (`rpc://…`, `chronik+https://…`); the command
    /// line's `--chain` replaces them for one run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// How many backends must report a transaction before it counts as seen.
    #[serde(default = "default_seen_quorum")]
    pub seen_quorum: usize,
    /// The default fee rate of payments, in satoshis per 1000 bytes (the relay floor).
    #[serde(default = "default_fee_rate")]
    pub fee_rate_per_kb: i64,
    /// Trusted bootstrap and relay nodes (multiaddrs ending in `/p2p/<peer id>`), dialled
    /// on start besides the command line's `--bootstrap` and the nodes groups name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap: Vec<String>,
    /// Above this many satoshis sent, approving needs the proposer's confirmation code read
    /// out on a call (see [`crate::confirmation`]); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_above_sats: Option<i64>,
    /// Desktop notifications (new proposal, about to expire, blame, failover, confirmed).
    #[serde(default = "default_notifications")]
    pub notifications: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            network: Network::default(),
            chain: Vec::new(),
            seen_quorum: default_seen_quorum(),
            fee_rate_per_kb: default_fee_rate(),
            bootstrap: Vec::new(),
            confirm_above_sats: None,
            notifications: default_notifications(),
        }
    }
}

fn default_seen_quorum() -> usize {
    1
}

fn default_notifications() -> bool {
    true
}

fn default_fee_rate() -> i64 {
    lotus::policy::DEFAULT_RELAY_FEE_PER_KB
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid settings file: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Settings {
    /// Reads the file, or writes the defaults there if it does not exist yet.
    pub fn load_or_init(path: &Path) -> Result<Self, SettingsError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| SettingsError::Invalid {
                path: path.to_owned(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let settings = Self::default();
                settings.save(path)?;
                Ok(settings)
            }
            Err(source) => Err(SettingsError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write {
            path: path.to_owned(),
            source,
        };
        let mut json = serde_json::to_vec_pretty(self).expect("settings always serialize");
        json.push(b'\n');
        let tmp = path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp).map_err(write_err)?;
        file.write_all(&json).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        fs::rename(&tmp, path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_load_writes_defaults_and_later_loads_read_them() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("settings.json");
        assert_eq!(Settings::load_or_init(&path).unwrap(), Settings::default());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\n  \"network\": \"mainnet\",\n  \"seen_quorum\": 1,\n  \"fee_rate_per_kb\": 1000,\n  \"notifications\": true\n}\n"
        );
        fs::write(&path, r#"{"network":"testnet"}"#).unwrap();
        assert_eq!(
            Settings::load_or_init(&path).unwrap().network,
            Network::Testnet
        );
    }

    #[test]
    fn a_broken_file_is_an_error_not_a_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("settings.json");
        fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            Settings::load_or_init(&path),
            Err(SettingsError::Invalid { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "{ not json");
    }
}
