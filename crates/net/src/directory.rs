//! Who is who: the members of our groups, the newest verified presence record of each signer,
//! and which network peer has proved (by a hello) that it speaks for which signer. Plus the
//! DHT-side bookkeeping: the key a signer's record lives under, and per-publisher quotas.

use std::collections::{BTreeMap, BTreeSet};

use libp2p::{kad, Multiaddr, PeerId};
use lotus::secp256k1::PublicKey;
use protocol::group::GroupDescriptor;
use protocol::presence::{Presence, PresenceError};

pub type SignerBytes = [u8; 33];

/// The DHT key of a signer's presence record.
pub fn record_key(signer: &PublicKey) -> kad::RecordKey {
    kad::RecordKey::new(&lotus::hash::tagged_hash(
        "LotusCosigner/presence-key",
        &[&signer.serialize()],
    ))
}

/// Records one publisher may have us store (the analysis: 100 per publisher).
pub const RECORDS_PER_PUBLISHER: usize = 100;

#[derive(Default)]
pub struct Directory {
    /// Every member key of every group we belong to (ourselves included).
    members: BTreeSet<SignerBytes>,
    /// Group topics (hex group ids) and their members.
    pub groups: BTreeMap<String, Vec<PublicKey>>,
    presence: BTreeMap<SignerBytes, Presence>,
    /// Peers that proved a signer key, and the reverse.
    peer_signer: BTreeMap<PeerId, PublicKey>,
    signer_peer: BTreeMap<SignerBytes, PeerId>,
    /// DHT records stored for others, by the subnet (or peer) that put them.
    stored_by: BTreeMap<String, BTreeSet<Vec<u8>>>,
}

/// Why a presence record was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RecordRefusal {
    #[error(transparent)]
    Invalid(#[from] PresenceError),
    #[error("the record's peer id does not parse")]
    BadPeerId,
    #[error("the record is stored under another signer's key")]
    WrongKey,
    #[error("the publisher is over its quota of {RECORDS_PER_PUBLISHER} records")]
    Quota,
    #[error("an equal or newer record of this signer is already known")]
    Stale,
}

impl Directory {
    pub fn set_groups(&mut self, groups: &[GroupDescriptor]) {
        self.members.clear();
        self.groups.clear();
        for group in groups {
            self.groups.insert(topic_name(group), group.members.clone());
            for member in &group.members {
                self.members.insert(member.serialize());
            }
        }
    }

    pub fn is_member(&self, signer: &PublicKey) -> bool {
        self.members.contains(&signer.serialize())
    }

    pub fn member_keys(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.groups.values().flatten().copied()
    }

    /// Verifies a record and keeps it if it is the newest of its signer.
    pub fn learn(&mut self, record: Presence, now_ms: u64) -> Result<bool, RecordRefusal> {
        record.verify(now_ms)?;
        PeerId::from_bytes(&record.peer_id).map_err(|_| RecordRefusal::BadPeerId)?;
        let signer = record.signer.serialize();
        if let Some(known) = self.presence.get(&signer) {
            if known.seq >= record.seq {
                return Ok(false);
            }
        }
        self.presence.insert(signer, record);
        Ok(true)
    }

    pub fn presence_of(&self, signer: &PublicKey) -> Option<&Presence> {
        self.presence.get(&signer.serialize())
    }

    /// Addresses a member's record lists, with its peer id.
    pub fn addresses_of(&self, signer: &PublicKey) -> Option<(PeerId, Vec<Multiaddr>)> {
        let record = self.presence.get(&signer.serialize())?;
        let peer = PeerId::from_bytes(&record.peer_id).ok()?;
        let addresses = record
            .addresses
            .iter()
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .collect();
        Some((peer, addresses))
    }

    /// `peer` proved `signer` (its hello's record verified for that peer).
    pub fn bind(&mut self, peer: PeerId, signer: PublicKey) {
        if let Some(old) = self.signer_peer.insert(signer.serialize(), peer) {
            if old != peer {
                self.peer_signer.remove(&old);
            }
        }
        self.peer_signer.insert(peer, signer);
    }

    pub fn unbind(&mut self, peer: &PeerId) {
        if let Some(signer) = self.peer_signer.remove(peer) {
            if self.signer_peer.get(&signer.serialize()) == Some(peer) {
                self.signer_peer.remove(&signer.serialize());
            }
        }
    }

    pub fn signer_of(&self, peer: &PeerId) -> Option<PublicKey> {
        self.peer_signer.get(peer).copied()
    }

    pub fn peer_of(&self, signer: &PublicKey) -> Option<PeerId> {
        self.signer_peer.get(&signer.serialize()).copied()
    }

    /// Records of members that share a group with `asker`, for a hello answer: a member that
    /// reaches one of us finds the others.
    pub fn records_for(&self, asker: &PublicKey) -> Vec<Vec<u8>> {
        let asker = asker.serialize();
        let mut shared = BTreeSet::new();
        for members in self.groups.values() {
            if members.iter().any(|m| m.serialize() == asker) {
                shared.extend(members.iter().map(|m| m.serialize()));
            }
        }
        shared.remove(&asker);
        shared
            .iter()
            .filter_map(|signer| self.presence.get(signer))
            .take(crate::wire::MAX_RECORDS)
            .map(Presence::encode)
            .collect()
    }

    /// Validation of a record someone asks us (a DHT server) to store.
    /// `publisher` is whom the quota is charged to (the sender's subnet). The quota is
    /// checked before the signature, so a publisher over it costs no curve operation.
    pub fn check_dht_record(
        &mut self,
        publisher: String,
        record: &kad::Record,
        now_ms: u64,
    ) -> Result<Presence, RecordRefusal> {
        let over_quota = self.stored_by.get(&publisher).is_some_and(|keys| {
            !keys.contains(record.key.as_ref()) && keys.len() >= RECORDS_PER_PUBLISHER
        });
        if over_quota {
            return Err(RecordRefusal::Quota);
        }
        let presence = Presence::decode_verified(&record.value, now_ms)?;
        if record.key != record_key(&presence.signer) {
            return Err(RecordRefusal::WrongKey);
        }
        PeerId::from_bytes(&presence.peer_id).map_err(|_| RecordRefusal::BadPeerId)?;
        self.stored_by
            .entry(publisher)
            .or_default()
            .insert(record.key.to_vec());
        Ok(presence)
    }
}

/// The gossip topic of a group.
pub fn topic_name(group: &GroupDescriptor) -> String {
    format!("lotus-cosigner/group/{}", hex::encode(group.id().0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::PrivateKey;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_bytes(&[n; 32]).unwrap()
    }

    fn record(signer: u8, seq: u64) -> Presence {
        let peer = crate::identity::network_keypair(&key(signer))
            .public()
            .to_peer_id();
        Presence::sign(&key(signer), peer.to_bytes(), vec![], seq, 100_000)
    }

    #[test]
    fn only_a_newer_valid_record_replaces_a_known_one() {
        let mut directory = Directory::default();
        assert!(directory.learn(record(1, 2), 0).unwrap());
        assert!(!directory.learn(record(1, 1), 0).unwrap(), "older");
        assert!(!directory.learn(record(1, 2), 0).unwrap(), "same");
        assert!(directory.learn(record(1, 3), 0).unwrap());
        let mut forged = record(1, 9);
        forged.peer_id = record(2, 1).peer_id;
        assert!(matches!(
            directory.learn(forged, 0),
            Err(RecordRefusal::Invalid(PresenceError::BadSignature))
        ));
        assert_eq!(directory.presence_of(&key(1).public_key()).unwrap().seq, 3);
    }

    #[test]
    fn a_publisher_cannot_fill_the_dht_store_past_its_quota() {
        let mut directory = Directory::default();
        let publisher = "10.0.0.0/24".to_string();
        for n in 1..=RECORDS_PER_PUBLISHER {
            let secret = PrivateKey::from_bytes(&lotus::hash::sha256(&n.to_be_bytes())).unwrap();
            let presence = Presence::sign(&secret, PeerId::random().to_bytes(), vec![], 1, 1000);
            let dht = kad::Record::new(record_key(&secret.public_key()), presence.encode());
            directory
                .check_dht_record(publisher.clone(), &dht, 0)
                .unwrap();
        }
        let extra = record(1, 1);
        let dht = kad::Record::new(record_key(&key(1).public_key()), extra.encode());
        assert!(matches!(
            directory.check_dht_record(publisher, &dht, 0),
            Err(RecordRefusal::Quota)
        ));
        assert!(directory
            .check_dht_record("10.0.1.0/24".into(), &dht, 0)
            .is_ok());
        let misplaced = kad::Record::new(record_key(&key(2).public_key()), extra.encode());
        assert!(matches!(
            directory.check_dht_record("10.0.2.0/24".into(), &misplaced, 0),
            Err(RecordRefusal::WrongKey)
        ));
    }
}
