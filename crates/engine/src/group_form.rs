//! A new group as a person describes it (names, pasted keys, choices) turned into a checked
//! [`GroupDescriptor`]. Shared by the app's "create group" form and `lotus-cosigner group create`.

use lotus::address::Network;
use lotus::secp256k1::PublicKey;
use protocol::election::ElectionMethod;
use protocol::group::{GroupDescriptor, GroupError, OutputType};
use serde::Deserialize;
use ts_rs::TS;

/// What the create-group form sends.
#[derive(Clone, Debug, Deserialize, TS)]
pub struct CreateGroupRequest {
    pub name: String,
    /// Members' public keys (hex), in order; include your own.
    pub members: Vec<String>,
    /// "taproot" or "p2pkh".
    pub output: String,
    /// An election method's name with dashes: "salted", "hash-based", "round-robin", …
    pub election: String,
    /// "mainnet", "testnet" or "regtest"; `null`: the profile's network.
    pub network: Option<String>,
    /// How long each signing round may wait for every member; `null`: the default.
    #[ts(type = "number | null")]
    pub round_timeout_s: Option<u64>,
    /// Each backup coordinator's broadcast slot; `null`: the default.
    #[ts(type = "number | null")]
    pub broadcast_slot_s: Option<u64>,
    /// Bootstrap/relay nodes the group names (`/ip4/…/tcp/…/p2p/<peer id>`).
    pub peers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupFormError {
    #[error("member {index}: {reason}")]
    Member { index: usize, reason: String },
    #[error("unknown network {0:?} (mainnet, testnet or regtest)")]
    Network(String),
    #[error("unknown output type {0:?} (taproot or p2pkh)")]
    Output(String),
    #[error("unknown election method {0:?} ({1})")]
    Election(String, String),
    #[error("peer {0}")]
    Peer(String),
    #[error(transparent)]
    Group(#[from] GroupError),
}

/// The election methods by the names forms and the command line use.
pub fn election_names() -> Vec<String> {
    ElectionMethod::ALL
        .into_iter()
        .map(|m| m.name().replace(' ', "-"))
        .collect()
}

impl CreateGroupRequest {
    /// The group this describes, checked; `default_network` when none is named.
    pub fn descriptor(&self, default_network: Network) -> Result<GroupDescriptor, GroupFormError> {
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let bad = |reason: String| GroupFormError::Member {
                    index: i + 1,
                    reason,
                };
                let bytes = hex::decode(text.trim()).map_err(|e| bad(format!("not hex: {e}")))?;
                PublicKey::from_slice(&bytes).map_err(|_| {
                    bad("not a 33-byte compressed public key (66 hex digits, 02… or 03…)".into())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let network = match self.network.as_deref() {
            None => default_network,
            Some("mainnet") => Network::Mainnet,
            Some("testnet") => Network::Testnet,
            Some("regtest") => Network::Regtest,
            Some(other) => return Err(GroupFormError::Network(other.to_owned())),
        };
        let mut group = GroupDescriptor::new(self.name.trim(), network, members)?;
        group.output = match self.output.as_str() {
            "taproot" => OutputType::Taproot,
            "p2pkh" => OutputType::P2pkh,
            other => return Err(GroupFormError::Output(other.to_owned())),
        };
        group.election = ElectionMethod::ALL
            .into_iter()
            .find(|m| m.name().replace(' ', "-") == self.election)
            .ok_or_else(|| {
                GroupFormError::Election(self.election.clone(), election_names().join(", "))
            })?;
        if let Some(seconds) = self.round_timeout_s {
            group.timeouts.round_ms = seconds.saturating_mul(1000);
        }
        if let Some(seconds) = self.broadcast_slot_s {
            group.timeouts.broadcast_slot_ms = seconds.saturating_mul(1000);
        }
        for peer in &self.peers {
            net::peer_address(peer).map_err(|e| GroupFormError::Peer(e.to_string()))?;
            group.peers.push(peer.clone());
        }
        group.validate()?;
        Ok(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(members: Vec<String>) -> CreateGroupRequest {
        CreateGroupRequest {
            name: " till ".into(),
            members,
            output: "taproot".into(),
            election: "salted".into(),
            network: None,
            round_timeout_s: Some(30),
            broadcast_slot_s: None,
            peers: vec![],
        }
    }

    fn key(byte: u8) -> String {
        let key = lotus::PrivateKey::from_bytes(&[byte; 32]).unwrap();
        hex::encode(key.public_key().serialize())
    }

    #[test]
    fn a_form_becomes_the_group_it_describes() {
        let group = request(vec![key(1), format!(" {} ", key(2))])
            .descriptor(Network::Regtest)
            .unwrap();
        assert_eq!(group.name, "till");
        assert_eq!(group.members.len(), 2);
        assert_eq!(group.timeouts.round_ms, 30_000);
        assert_eq!(group.election.name(), "salted");
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = request(vec![key(1), "02abcd".into()]).descriptor(Network::Regtest);
        assert!(
            matches!(bad, Err(GroupFormError::Member { index: 2, .. })),
            "{bad:?}"
        );
        let mut r = request(vec![key(1), key(2)]);
        r.election = "coin-toss".into();
        let e = r.descriptor(Network::Regtest).unwrap_err().to_string();
        assert!(e.contains("coin-toss") && e.contains("round-robin"), "{e}");
        let mut r = request(vec![key(1), key(1)]);
        r.output = "p2pkh".into();
        assert!(matches!(
            r.descriptor(Network::Regtest),
            Err(GroupFormError::Group(GroupError::DuplicateMember { .. }))
        ));
        let mut r = request(vec![key(1), key(2)]);
        r.peers = vec!["/ip4/1.2.3.4/tcp/1".into()];
        assert!(matches!(
            r.descriptor(Network::Regtest),
            Err(GroupFormError::Peer(_))
        ));
    }
}
