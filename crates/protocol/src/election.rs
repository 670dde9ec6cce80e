//! Coordinator election: every method is a pure function of data all participants share, and
//! returns the full priority list (coordinator first, then backups) plus a proof hash that
//! binds the method, its inputs and the result. Each participant puts the proof it computed in
//! its signed round-2 message, so a disagreement is detected and attributable.
//!
//! Indices are positions in the group's member order (not the MuSig2 sorted order).
//!
//! Grinding cost of `Salted`: the salt hashes every participant's round-1 salt share. Without
//! round 0, the last participant to send sees all other shares first and can try 2^k shares
//! offline to pick among outcomes; each try is one SHA-256 per member, so steering the
//! coordinator slot to itself costs about n tries on average (cheap) — the salt only stops
//! *precomputed* grinding (key grinding across sessions). With round 0 (hash commitments to
//! round-1 contributions, revealed after all commitments are in), no one can choose their share
//! after seeing the others: the outcome is uniformly random unless every participant colludes.

use lotus::hash::{sha256, tagged_hash};
use lotus::secp256k1::PublicKey;

use crate::wire::{DecodeError, Reader, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElectionMethod {
    /// Smallest 33-byte key first (lotus-sdk default); backups in ascending key order.
    Lexicographic,
    /// lotus-sdk HASH_BASED: start at u32(SHA256(sorted lowercase hex keys)[0..4]) mod n in
    /// sorted order, then wrap.
    HashBased,
    /// The group's first member, then the rest in member order.
    FirstSigner,
    /// The group's last member, then backwards in member order.
    LastSigner,
    /// Sorted by SHA256(salt || key), salt from every participant's round-1 contribution.
    Salted,
    /// Member order rotated by the proposal's group sequence number.
    RoundRobin,
    /// Lexicographic, but members with verifiable misbehaviour evidence attached to the
    /// proposal move last.
    ReputationAware,
}

impl ElectionMethod {
    pub const ALL: [ElectionMethod; 7] = [
        ElectionMethod::Lexicographic,
        ElectionMethod::HashBased,
        ElectionMethod::FirstSigner,
        ElectionMethod::LastSigner,
        ElectionMethod::Salted,
        ElectionMethod::RoundRobin,
        ElectionMethod::ReputationAware,
    ];

    pub fn code(self) -> u8 {
        match self {
            ElectionMethod::Lexicographic => 0,
            ElectionMethod::HashBased => 1,
            ElectionMethod::FirstSigner => 2,
            ElectionMethod::LastSigner => 3,
            ElectionMethod::Salted => 4,
            ElectionMethod::RoundRobin => 5,
            ElectionMethod::ReputationAware => 6,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            ElectionMethod::Lexicographic => "lexicographic",
            ElectionMethod::HashBased => "hash-based",
            ElectionMethod::FirstSigner => "first signer",
            ElectionMethod::LastSigner => "last signer",
            ElectionMethod::Salted => "salted",
            ElectionMethod::RoundRobin => "round-robin",
            ElectionMethod::ReputationAware => "reputation-aware",
        }
    }

    /// Whether the method needs the round-1 salt (and so can only run after round 1).
    pub fn needs_salt(self) -> bool {
        self == ElectionMethod::Salted
    }

    pub fn encode(self, w: &mut Writer) {
        w.u8(self.code());
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = r.u8("election method")?;
        Self::from_code(code)
            .ok_or_else(|| DecodeError::invalid("election method", format!("code {code}")))
    }
}

/// Everything an election may depend on. All fields are known to every participant.
#[derive(Debug, Clone)]
pub struct ElectionInput<'a> {
    pub members: &'a [PublicKey],
    pub session_id: [u8; 32],
    pub attempt: u32,
    /// Group sequence number of the proposal (round-robin).
    pub sequence: u64,
    /// Salt from round 1 (salted); ignored by other methods.
    pub salt: Option<[u8; 32]>,
    /// Members with verifiable misbehaviour evidence in the proposal (reputation-aware).
    pub penalized: &'a [u16],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    #[error("a group needs at least one member")]
    NoMembers,
    #[error("the salted election needs the round-1 salt")]
    MissingSalt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub method: ElectionMethod,
    /// Member indices, coordinator first, then backups in failover order.
    pub priority: Vec<u16>,
    /// TH("LotusCosigner/election", method, inputs, priority): what round-2 messages carry.
    pub proof: [u8; 32],
}

impl Election {
    pub fn coordinator(&self) -> u16 {
        self.priority[0]
    }

    /// The failover slot of a member (0 = coordinator).
    pub fn slot_of(&self, member: u16) -> Option<usize> {
        self.priority.iter().position(|&m| m == member)
    }
}

/// Member indices sorted by their 33-byte key encoding (the MuSig2 order); ties keep member
/// order so duplicate keys stay deterministic.
fn sorted_positions(members: &[PublicKey]) -> Vec<u16> {
    let mut order: Vec<u16> = (0..members.len() as u16).collect();
    order.sort_by_key(|&i| (members[i as usize].serialize(), i));
    order
}

/// lotus-sdk `computeElectionProof`: lowercase hex of SHA256 over the concatenated lowercase
/// hex keys sorted as strings. Kept for compatibility checks; our own proof is `Election::proof`.
pub fn sdk_election_proof(members: &[PublicKey]) -> String {
    hex_lower(&sha256(sdk_election_proof_preimage(members).as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rotate(order: &[u16], start: usize) -> Vec<u16> {
    order
        .iter()
        .cycle()
        .skip(start)
        .take(order.len())
        .copied()
        .collect()
}

/// Runs `method` over `input`.
pub fn elect(method: ElectionMethod, input: &ElectionInput<'_>) -> Result<Election, ElectionError> {
    let n = input.members.len();
    if n == 0 {
        return Err(ElectionError::NoMembers);
    }
    let member_order: Vec<u16> = (0..n as u16).collect();
    let priority = match method {
        ElectionMethod::Lexicographic => sorted_positions(input.members),
        ElectionMethod::HashBased => {
            let proof = sha256(sdk_election_proof_preimage(input.members).as_bytes());
            let start = u32::from_be_bytes(proof[..4].try_into().expect("4 bytes")) as usize % n;
            rotate(&sorted_positions(input.members), start)
        }
        ElectionMethod::FirstSigner => member_order,
        ElectionMethod::LastSigner => member_order.into_iter().rev().collect(),
        ElectionMethod::Salted => {
            let salt = input.salt.ok_or(ElectionError::MissingSalt)?;
            let mut order = member_order;
            order.sort_by_key(|&i| {
                (
                    sha256(&[&salt[..], &input.members[i as usize].serialize()].concat()),
                    i,
                )
            });
            order
        }
        ElectionMethod::RoundRobin => rotate(&member_order, (input.sequence % n as u64) as usize),
        ElectionMethod::ReputationAware => {
            let (clean, penalized): (Vec<u16>, Vec<u16>) = sorted_positions(input.members)
                .into_iter()
                .partition(|i| !input.penalized.contains(i));
            clean.into_iter().chain(penalized).collect()
        }
    };
    let proof = election_proof(method, input, &priority);
    Ok(Election {
        method,
        priority,
        proof,
    })
}

/// The string lotus-sdk hashes (proof and hash-based start).
fn sdk_election_proof_preimage(members: &[PublicKey]) -> String {
    let mut hex_keys: Vec<String> = members.iter().map(|k| hex_lower(&k.serialize())).collect();
    hex_keys.sort();
    hex_keys.concat()
}

fn election_proof(method: ElectionMethod, input: &ElectionInput<'_>, priority: &[u16]) -> [u8; 32] {
    let mut w = Writer::new();
    method.encode(&mut w);
    w.raw(&input.session_id)
        .u32(input.attempt)
        .u64(input.sequence);
    match input.salt {
        Some(salt) if method.needs_salt() => {
            w.u8(1).raw(&salt);
        }
        _ => {
            w.u8(0);
        }
    }
    w.count(input.members.len());
    for key in input.members {
        w.public_key(key);
    }
    let mut penalized = input.penalized.to_vec();
    penalized.sort_unstable();
    penalized.dedup();
    w.count(penalized.len());
    for p in penalized {
        w.u16(p);
    }
    w.count(priority.len());
    for &p in priority {
        w.u16(p);
    }
    tagged_hash("LotusCosigner/election", &[&w.into_bytes()])
}

/// salt = TH("LotusCosigner/election-salt", session_id || attempt || shares in member order).
pub fn derive_salt(session_id: &[u8; 32], attempt: u32, shares: &[[u8; 32]]) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(session_id).u32(attempt).count(shares.len());
    for share in shares {
        w.raw(share);
    }
    tagged_hash("LotusCosigner/election-salt", &[&w.into_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::PrivateKey;

    fn keys(n: usize) -> Vec<PublicKey> {
        (0..n)
            .map(|i| {
                PrivateKey::from_bytes(&sha256(&[i as u8, 9]))
                    .unwrap()
                    .public_key()
            })
            .collect()
    }

    fn input(members: &[PublicKey]) -> ElectionInput<'_> {
        ElectionInput {
            members,
            session_id: [3; 32],
            attempt: 0,
            sequence: 0,
            salt: Some([5; 32]),
            penalized: &[],
        }
    }

    #[test]
    fn every_method_yields_a_permutation_and_a_binding_proof() {
        let members = keys(7);
        for method in ElectionMethod::ALL {
            let e = elect(method, &input(&members)).unwrap();
            let mut sorted = e.priority.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..7).collect::<Vec<u16>>(), "{method:?}");
            let mut other = input(&members);
            other.session_id = [4; 32];
            assert_ne!(
                elect(method, &other).unwrap().proof,
                e.proof,
                "proof binds the session"
            );
        }
    }

    #[test]
    fn member_order_methods() {
        let members = keys(5);
        let first = elect(ElectionMethod::FirstSigner, &input(&members)).unwrap();
        assert_eq!(first.priority, vec![0, 1, 2, 3, 4]);
        let last = elect(ElectionMethod::LastSigner, &input(&members)).unwrap();
        assert_eq!(last.priority, vec![4, 3, 2, 1, 0]);
        for seq in 0..12u64 {
            let mut i = input(&members);
            i.sequence = seq;
            let rr = elect(ElectionMethod::RoundRobin, &i).unwrap();
            assert_eq!(rr.coordinator() as u64, seq % 5);
            assert_eq!(rr.priority[1] as u64, (seq + 1) % 5);
        }
    }

    #[test]
    fn salted_depends_on_the_salt_and_needs_it() {
        let members = keys(16);
        let mut coordinators = std::collections::BTreeSet::new();
        for s in 0..40u8 {
            let mut i = input(&members);
            i.salt = Some(sha256(&[s]));
            coordinators.insert(elect(ElectionMethod::Salted, &i).unwrap().coordinator());
        }
        assert!(
            coordinators.len() > 5,
            "salt must move the coordinator around: {coordinators:?}"
        );
        let mut i = input(&members);
        i.salt = None;
        assert_eq!(
            elect(ElectionMethod::Salted, &i).unwrap_err(),
            ElectionError::MissingSalt
        );
    }

    #[test]
    fn reputation_aware_moves_penalized_members_last() {
        let members = keys(6);
        let lex = elect(ElectionMethod::Lexicographic, &input(&members)).unwrap();
        let penalized = [lex.priority[0], lex.priority[2]];
        let mut i = input(&members);
        i.penalized = &penalized;
        let rep = elect(ElectionMethod::ReputationAware, &i).unwrap();
        assert_eq!(&rep.priority[4..], &penalized);
        assert_eq!(rep.priority[0], lex.priority[1]);
    }

    #[test]
    fn salt_derivation_binds_every_share() {
        let shares = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let salt = derive_salt(&[0; 32], 0, &shares);
        for k in 0..3 {
            let mut changed = shares;
            changed[k][0] ^= 1;
            assert_ne!(derive_salt(&[0; 32], 0, &changed), salt);
        }
        assert_ne!(derive_salt(&[0; 32], 1, &shares), salt);
    }
}
