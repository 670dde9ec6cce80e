//! Group descriptors: who signs together and under which rules.
//!
//! The descriptor's canonical encoding is hashed into the group_id, so every member agrees on
//! every rule (members, output type, election, timeouts, limits, admission) by agreeing on one
//! 32-byte value — and reads a short fingerprint of it to each other out of band.

use lotus::address::{p2pkh_address, taproot_address, Network};
use lotus::hash::{hash160, tagged_hash};
use lotus::schnorr::{self, Signature};
use lotus::script::Script;
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use musig::{KeyAggContext, SpendPath};

use crate::election::ElectionMethod;
use crate::wire::{DecodeError, Reader, Writer};

pub const MIN_MEMBERS: usize = 2;
pub const MAX_MEMBERS: usize = 100;
const MAX_NAME_BYTES: usize = 64;
const DESCRIPTOR_VERSION: u8 = 1;
/// Bootstrap/relay nodes a group may name, and the longest address text.
pub const MAX_GROUP_PEERS: usize = 8;
const MAX_PEER_BYTES: usize = 256;
pub const INVITE_PREFIX: &str = "lotus-cosigner://invite/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub [u8; 32]);

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// How the group's funds are locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputType {
    /// Lotus Taproot key path with the zero-root tweak (lotus-web-wallet shared wallets).
    Taproot,
    /// P2PKH of hash160(Q), signed with SIGHASH_FORKID; valid on every Lotus epoch.
    P2pkh,
}

impl OutputType {
    pub fn spend_path(self) -> SpendPath {
        match self {
            OutputType::Taproot => SpendPath::TaprootKeyPath,
            OutputType::P2pkh => SpendPath::Plain,
        }
    }
}

/// Protocol timeouts, milliseconds. Configurable down to milliseconds for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// How long each signing round may wait for all members.
    pub round_ms: u64,
    /// Per failover slot.
    pub broadcast_slot_ms: u64,
    /// Longest proposal lifetime a member accepts.
    pub max_proposal_ttl_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            round_ms: 10 * 60_000,
            broadcast_slot_ms: 5 * 60_000,
            max_proposal_ttl_ms: 24 * 3_600_000,
        }
    }
}

/// DoS limits (analysis §6), all configurable per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    pub max_message_bytes: u32,
    pub proposals_per_minute: u16,
    pub max_active_sessions: u16,
    pub max_pending_sessions: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            proposals_per_minute: 5,
            max_active_sessions: 100,
            max_pending_sessions: 50,
        }
    }
}

/// Who may propose: members of an invite-only group are known; an open group (announced
/// publicly) asks proposals for proof-of-work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Admission {
    InviteOnly,
    Open { pow_bits: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescriptor {
    pub name: String,
    pub network: Network,
    /// Ordered member keys; a member's index is its position here.
    pub members: Vec<PublicKey>,
    pub output: OutputType,
    pub election: ElectionMethod,
    /// Whether sessions run round 0 (nonce/salt commitments) before round 1.
    pub commit_round: bool,
    /// How many top failover slots broadcast at once.
    pub parallel_broadcasts: u8,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub admission: Admission,
    /// Bootstrap and relay nodes the group names (multiaddrs ending in `/p2p/<peer id>`, as
    /// text: this crate does not parse them). Every member dials them as trusted bootstrap
    /// nodes. Encoded only when present, so a group without them keeps its id.
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("a group has {min} to {max} members, got {got}")]
    MemberCount { min: usize, max: usize, got: usize },
    #[error("member {second} repeats member {first}'s key")]
    DuplicateMember { first: usize, second: usize },
    #[error("the group name is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("timeouts must be at least 1 ms")]
    ZeroTimeout,
    #[error("a proposal may live at most 7 days (the longest any member keeps its messages)")]
    LifetimeTooLong,
    #[error("parallel broadcasts must be between 1 and the member count")]
    ParallelBroadcasts,
    #[error("message size limit must be between 1 KiB and 1 MiB")]
    MessageLimit,
    #[error("rate and session limits must be at least 1")]
    ZeroLimit,
    #[error("proof-of-work difficulty {0} bits is above the {max} bits a proposer can mine", max = crate::policy::MAX_POW_BITS)]
    PowTooHard(u8),
    #[error("the members' keys aggregate to the point at infinity")]
    AggregateKey,
    #[error("a group names at most {MAX_GROUP_PEERS} distinct peer addresses of 1 to {MAX_PEER_BYTES} printable ASCII characters")]
    Peers,
    #[error("invite is not a Lotus Cosigner invite (expected {INVITE_PREFIX}…)")]
    NotAnInvite,
    #[error("invite is damaged: {0}")]
    DamagedInvite(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

fn network_code(network: Network) -> u8 {
    match network {
        Network::Mainnet => 0,
        Network::Testnet => 1,
        Network::Regtest => 2,
    }
}

impl GroupDescriptor {
    /// A group with default rules (Taproot output, salted election, round 0 on).
    pub fn new(name: &str, network: Network, members: Vec<PublicKey>) -> Result<Self, GroupError> {
        let descriptor = Self {
            name: name.to_string(),
            network,
            members,
            output: OutputType::Taproot,
            election: ElectionMethod::Salted,
            commit_round: true,
            parallel_broadcasts: 1,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            admission: Admission::InviteOnly,
            peers: Vec::new(),
        };
        descriptor.validate()?;
        Ok(descriptor)
    }

    pub fn validate(&self) -> Result<(), GroupError> {
        let n = self.members.len();
        if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&n) {
            return Err(GroupError::MemberCount {
                min: MIN_MEMBERS,
                max: MAX_MEMBERS,
                got: n,
            });
        }
        for second in 1..n {
            if let Some(first) = self.members[..second]
                .iter()
                .position(|k| *k == self.members[second])
            {
                return Err(GroupError::DuplicateMember { first, second });
            }
        }
        if self.name.len() > MAX_NAME_BYTES {
            return Err(GroupError::NameTooLong);
        }
        let t = &self.timeouts;
        if t.round_ms == 0 || t.broadcast_slot_ms == 0 || t.max_proposal_ttl_ms == 0 {
            return Err(GroupError::ZeroTimeout);
        }
        if t.max_proposal_ttl_ms > crate::gate::MAX_PROPOSAL_LIFETIME_MS {
            return Err(GroupError::LifetimeTooLong);
        }
        if self.parallel_broadcasts == 0 || self.parallel_broadcasts as usize > n {
            return Err(GroupError::ParallelBroadcasts);
        }
        if !(1024..=1 << 20).contains(&self.limits.max_message_bytes) {
            return Err(GroupError::MessageLimit);
        }
        let l = &self.limits;
        if l.proposals_per_minute == 0 || l.max_active_sessions == 0 || l.max_pending_sessions == 0
        {
            return Err(GroupError::ZeroLimit);
        }
        if let Admission::Open { pow_bits } = self.admission {
            if pow_bits > crate::policy::MAX_POW_BITS {
                return Err(GroupError::PowTooHard(pow_bits));
            }
        }
        let printable = |p: &String| {
            (1..=MAX_PEER_BYTES).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_graphic())
        };
        let distinct = self
            .peers
            .iter()
            .enumerate()
            .all(|(i, p)| !self.peers[..i].contains(p));
        if self.peers.len() > MAX_GROUP_PEERS || !self.peers.iter().all(printable) || !distinct {
            return Err(GroupError::Peers);
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(DESCRIPTOR_VERSION)
            .string(&self.name)
            .u8(network_code(self.network));
        w.count(self.members.len());
        for key in &self.members {
            w.public_key(key);
        }
        w.u8(match self.output {
            OutputType::Taproot => 0,
            OutputType::P2pkh => 1,
        });
        self.election.encode(&mut w);
        w.bool(self.commit_round).u8(self.parallel_broadcasts);
        w.u64(self.timeouts.round_ms)
            .u64(self.timeouts.broadcast_slot_ms)
            .u64(self.timeouts.max_proposal_ttl_ms);
        w.u32(self.limits.max_message_bytes)
            .u16(self.limits.proposals_per_minute)
            .u16(self.limits.max_active_sessions)
            .u16(self.limits.max_pending_sessions);
        match self.admission {
            Admission::InviteOnly => w.u8(0),
            Admission::Open { pow_bits } => w.u8(1).u8(pow_bits),
        };
        if !self.peers.is_empty() {
            w.count(self.peers.len());
            for peer in &self.peers {
                w.string(peer);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("descriptor version")?;
        if version != DESCRIPTOR_VERSION {
            return Err(DecodeError::invalid(
                "descriptor version",
                format!("unsupported version {version}"),
            )
            .into());
        }
        let name = r.string(MAX_NAME_BYTES, "group name")?;
        let network = match r.u8("network")? {
            0 => Network::Mainnet,
            1 => Network::Testnet,
            2 => Network::Regtest,
            other => return Err(DecodeError::invalid("network", format!("code {other}")).into()),
        };
        let n = r.count(MAX_MEMBERS, 33, "members")?;
        let members = (0..n)
            .map(|_| r.public_key("member key"))
            .collect::<Result<Vec<_>, _>>()?;
        let output = match r.u8("output type")? {
            0 => OutputType::Taproot,
            1 => OutputType::P2pkh,
            other => {
                return Err(DecodeError::invalid("output type", format!("code {other}")).into())
            }
        };
        let election = ElectionMethod::decode(&mut r)?;
        let commit_round = r.bool("commit round")?;
        let parallel_broadcasts = r.u8("parallel broadcasts")?;
        let timeouts = Timeouts {
            round_ms: r.u64("round timeout")?,
            broadcast_slot_ms: r.u64("broadcast slot")?,
            max_proposal_ttl_ms: r.u64("proposal ttl")?,
        };
        let limits = Limits {
            max_message_bytes: r.u32("message limit")?,
            proposals_per_minute: r.u16("proposal rate")?,
            max_active_sessions: r.u16("active sessions")?,
            max_pending_sessions: r.u16("pending sessions")?,
        };
        let admission = match r.u8("admission")? {
            0 => Admission::InviteOnly,
            1 => Admission::Open {
                pow_bits: r.u8("pow bits")?,
            },
            other => return Err(DecodeError::invalid("admission", format!("code {other}")).into()),
        };
        let mut peers = Vec::new();
        if r.remaining() > 0 {
            // Present only when there are some: an empty list would be a second encoding.
            let count = r.count(MAX_GROUP_PEERS, 2, "peers")?;
            if count == 0 {
                return Err(DecodeError::invalid("peers", "an empty list is not encoded").into());
            }
            for _ in 0..count {
                peers.push(r.string(MAX_PEER_BYTES, "peer address")?);
            }
        }
        r.finish()?;
        let descriptor = Self {
            name,
            network,
            members,
            output,
            election,
            commit_round,
            parallel_broadcasts,
            timeouts,
            limits,
            admission,
            peers,
        };
        descriptor.validate()?;
        Ok(descriptor)
    }

    /// group_id = TH("LotusCosigner/group", canonical encoding).
    pub fn id(&self) -> GroupId {
        GroupId(tagged_hash("LotusCosigner/group", &[&self.encode()]))
    }

    /// Four groups of four Crockford base32 characters from the group id, e.g. `7K2M-9QXD-…`,
    /// for members to read to each other on a call.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.id().0)
    }

    pub fn member_index(&self, key: &PublicKey) -> Option<u16> {
        self.members.iter().position(|k| k == key).map(|i| i as u16)
    }

    pub fn key_agg(&self) -> Result<KeyAggContext, GroupError> {
        KeyAggContext::new(&self.members).map_err(|_| GroupError::AggregateKey)
    }

    /// The group's scriptPubKey (where its funds live).
    pub fn script_pubkey(&self) -> Result<Script, GroupError> {
        let context = self.key_agg()?;
        Ok(match self.output {
            OutputType::Taproot => {
                Script::taproot_key_path(&context.signing_key(SpendPath::TaprootKeyPath).key, None)
            }
            OutputType::P2pkh => Script::p2pkh(&hash160(&context.aggregated_key().serialize())),
        })
    }

    pub fn address(&self) -> Result<String, GroupError> {
        let context = self.key_agg()?;
        Ok(match self.output {
            OutputType::Taproot => taproot_address(
                &context.signing_key(SpendPath::TaprootKeyPath).key,
                self.network,
            ),
            OutputType::P2pkh => p2pkh_address(context.aggregated_key(), self.network),
        })
    }

    /// `lotus-cosigner://invite/<base58 descriptor>`: text to paste and the QR payload.
    pub fn invite(&self) -> String {
        format!(
            "{INVITE_PREFIX}{}",
            bs58::encode(self.encode()).into_string()
        )
    }

    pub fn from_invite(invite: &str) -> Result<Self, GroupError> {
        let body = invite
            .trim()
            .strip_prefix(INVITE_PREFIX)
            .ok_or(GroupError::NotAnInvite)?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|e| GroupError::DamagedInvite(e.to_string()))?;
        Self::decode(&bytes)
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub fn fingerprint(bytes: &[u8; 32]) -> String {
    // 16 characters × 5 bits = the first 80 bits.
    let mut acc: u128 = 0;
    for &b in &bytes[..10] {
        acc = (acc << 8) | b as u128;
    }
    let chars: Vec<char> = (0..16)
        .rev()
        .map(|i| CROCKFORD[((acc >> (i * 5)) & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A member's signed acceptance of a group descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub group_id: GroupId,
    pub member: u16,
    pub signature: Signature,
}

fn acceptance_digest(group_id: &GroupId, member: u16) -> [u8; 32] {
    tagged_hash(
        "LotusCosigner/accept",
        &[&group_id.0, &member.to_be_bytes()],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptanceError {
    #[error("this key is not a member of the group")]
    NotAMember,
    #[error("the acceptance is for another group")]
    WrongGroup,
    #[error("member index {0} is out of range")]
    UnknownMember(u16),
    #[error("the acceptance signature does not verify")]
    BadSignature,
}

impl Acceptance {
    pub fn sign(group: &GroupDescriptor, key: &PrivateKey) -> Result<Self, AcceptanceError> {
        let member = group
            .member_index(&key.public_key())
            .ok_or(AcceptanceError::NotAMember)?;
        let group_id = group.id();
        Ok(Self {
            group_id,
            member,
            signature: schnorr::sign(key, &acceptance_digest(&group_id, member)),
        })
    }

    pub fn verify(&self, group: &GroupDescriptor) -> Result<(), AcceptanceError> {
        if self.group_id != group.id() {
            return Err(AcceptanceError::WrongGroup);
        }
        let key = group
            .members
            .get(self.member as usize)
            .ok_or(AcceptanceError::UnknownMember(self.member))?;
        if schnorr::verify(
            &self.signature,
            &acceptance_digest(&self.group_id, self.member),
            key,
        ) {
            Ok(())
        } else {
            Err(AcceptanceError::BadSignature)
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.group_id.0)
            .u16(self.member)
            .raw(&self.signature.to_bytes());
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let acceptance = Self {
            group_id: GroupId(r.array("group id")?),
            member: r.u16("member")?,
            signature: Signature::from_bytes(r.array("signature")?),
        };
        r.finish()?;
        Ok(acceptance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::hash::sha256;

    fn keys(n: usize) -> Vec<PrivateKey> {
        (0..n)
            .map(|i| PrivateKey::from_bytes(&sha256(&[i as u8, 1])).unwrap())
            .collect()
    }

    fn group(n: usize) -> (GroupDescriptor, Vec<PrivateKey>) {
        let keys = keys(n);
        let g = GroupDescriptor::new(
            "treasury",
            Network::Mainnet,
            keys.iter().map(|k| k.public_key()).collect(),
        )
        .unwrap();
        (g, keys)
    }

    /// Proposals live 24 h by default and a group may allow up to 7 days, never more (members
    /// keep a session's messages for pulls that long).
    #[test]
    fn proposal_lifetime_defaults_to_a_day_and_is_capped_at_a_week() {
        let (mut g, _) = group(3);
        assert_eq!(g.timeouts.max_proposal_ttl_ms, 24 * 3_600_000);
        g.timeouts.max_proposal_ttl_ms = 7 * 24 * 3_600_000;
        g.validate().unwrap();
        g.timeouts.max_proposal_ttl_ms += 1;
        assert_eq!(g.validate(), Err(GroupError::LifetimeTooLong));
    }

    #[test]
    fn encoding_roundtrips_and_id_binds_every_rule() {
        let (g, _) = group(3);
        assert_eq!(GroupDescriptor::decode(&g.encode()).unwrap(), g);
        assert_eq!(GroupDescriptor::from_invite(&g.invite()).unwrap(), g);
        let mut other = g.clone();
        other.timeouts.broadcast_slot_ms += 1;
        assert_ne!(other.id(), g.id());
        let mut other = g.clone();
        other.members.swap(0, 1);
        assert_ne!(other.id(), g.id(), "member order is part of the group");
        assert_eq!(g.fingerprint().len(), 19);
        assert_eq!(g.fingerprint(), g.clone().fingerprint());
        assert!(g.address().unwrap().starts_with("lotus_"));
    }

    #[test]
    fn named_peers_roundtrip_bind_the_id_and_leave_other_groups_unchanged() {
        let (g, _) = group(3);
        let plain = g.encode();
        let mut named = g.clone();
        named.peers = vec!["/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWExample".into()];
        named.validate().unwrap();
        assert_eq!(GroupDescriptor::decode(&named.encode()).unwrap(), named);
        assert_ne!(named.id(), g.id(), "the named peers are part of the group");
        assert!(
            named.encode().starts_with(&plain),
            "appended after the rules"
        );
        // An empty list written out would be a second encoding of the same group.
        let mut empty = plain.clone();
        empty.extend([0, 0]);
        assert!(GroupDescriptor::decode(&empty).is_err());
        for bad in [
            vec!["".to_string()],
            vec!["has space".to_string()],
            vec!["x".repeat(MAX_PEER_BYTES + 1)],
            vec!["/dns/a".to_string(), "/dns/a".to_string()],
            (0..=MAX_GROUP_PEERS)
                .map(|i| format!("/dns/n{i}"))
                .collect(),
        ] {
            let mut g = g.clone();
            g.peers = bad;
            assert_eq!(g.validate(), Err(GroupError::Peers), "{:?}", g.peers);
        }
    }

    #[test]
    fn bad_descriptors_are_refused() {
        let keys = keys(3);
        let one = vec![keys[0].public_key()];
        assert!(matches!(
            GroupDescriptor::new("x", Network::Mainnet, one),
            Err(GroupError::MemberCount { .. })
        ));
        let dup = vec![
            keys[0].public_key(),
            keys[1].public_key(),
            keys[0].public_key(),
        ];
        assert_eq!(
            GroupDescriptor::new("x", Network::Mainnet, dup).unwrap_err(),
            GroupError::DuplicateMember {
                first: 0,
                second: 2
            }
        );
        let (g, _) = group(2);
        let bytes = g.encode();
        for cut in 0..bytes.len() {
            assert!(GroupDescriptor::decode(&bytes[..cut]).is_err());
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(GroupDescriptor::decode(&trailing).is_err());
        assert_eq!(
            GroupDescriptor::from_invite("https://example.com").unwrap_err(),
            GroupError::NotAnInvite
        );
        assert!(matches!(
            GroupDescriptor::from_invite("lotus-cosigner://invite/0OIl"),
            Err(GroupError::DamagedInvite(_))
        ));
    }

    #[test]
    fn acceptances_verify_only_for_their_member_and_group() {
        let (g, keys) = group(3);
        let a = Acceptance::sign(&g, &keys[1]).unwrap();
        assert_eq!(a.member, 1);
        a.verify(&g).unwrap();
        assert_eq!(Acceptance::decode(&a.encode()).unwrap(), a);
        let mut forged = a.clone();
        forged.member = 2;
        assert_eq!(
            forged.verify(&g).unwrap_err(),
            AcceptanceError::BadSignature
        );
        let (other, _) = group(4);
        assert_eq!(a.verify(&other).unwrap_err(), AcceptanceError::WrongGroup);
        let outsider = PrivateKey::from_bytes(&[9; 32]).unwrap();
        assert_eq!(
            Acceptance::sign(&g, &outsider).unwrap_err(),
            AcceptanceError::NotAMember
        );
    }
}
