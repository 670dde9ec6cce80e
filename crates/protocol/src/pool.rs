//! Nonce pools: round 1 done ahead of time, so co-signers who are never online together can
//! still sign (DESIGN §5, "nonces ahead").
//!
//! Two sequential rounds need every member online after every other member's first visit: a
//! member who visits twice before another member's first visit can never see that member's
//! nonces. MuSig2 allows round 1 before the message is known, so each member publishes a
//! signed pool of public nonces for its group whenever it is online; a proposal names, per
//! member, the pool and the entries its attempt 0 uses, and each member signs in a single
//! visit. The secrets live in memory only (a laptop that sleeps keeps them; a restart loses
//! them and the session falls back to interactive attempts).
//!
//! Single use: a member's own entries are taken out of its pool when a session binds them
//! (a second proposal naming the same entries finds them gone and that session moves on to an
//! interactive attempt), and the store records each nonce hash before a partial leaves.
//! Salted elections: each entry also commits to a salt share, revealed with the partial
//! signatures; the election runs once every share opened its commitment. A proposer sees only
//! commitments while choosing the proposal, so it can't grind the election; the last member to
//! sign can withhold after seeing the salt, which costs it a forced re-roll, as the last
//! revealer of a commit round could.
//!
//! Not covered: with no commit round a member can publish its pool after seeing the others'
//! and make a nonce sum degenerate; the attempt then ends unsigned with nobody blamed and the
//! next one runs interactively (the same as that member not taking part).

use musig::{PublicNonce, SecretNonce};

use crate::audit_head::SignedHead;
use crate::envelope::{Envelope, MessageKind};
use crate::group::GroupId;
use crate::wire::{DecodeError, Reader, Writer};

/// Entries a pool reserves for each proposer (a pool has one slice per member, so two
/// members proposing at once never name the same entries).
pub const SLICE_ENTRIES: usize = 8;
/// The most entries a pool message may carry.
pub const MAX_POOL_ENTRIES: usize = 64;

/// Entries per proposer slice in a pool for a group of `members`: `SLICE_ENTRIES`, fewer in
/// big groups so the pool fits `MAX_POOL_ENTRIES`; 0 means the group is too big for pools.
pub fn slice_len(members: usize) -> usize {
    SLICE_ENTRIES.min(MAX_POOL_ENTRIES / members.max(1))
}
/// A pool is replaced once it is this old (so the ones named by new proposals are fresh
/// enough for the message window of every member who receives them later).
pub const POOL_REFRESH_MS: u64 = 24 * 3_600_000;
/// Pools kept per member (its newest ones), so a proposal made before a newer pool spread
/// still finds the one it names.
pub const POOLS_KEPT_PER_MEMBER: usize = 3;

/// The payload of a `NoncePool` envelope: public nonces, one per future input, and the
/// sender's signed audit head (pooled attempts have no Nonces message to carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoncePool {
    pub nonces: Vec<PublicNonce>,
    /// Per entry, a commitment to the salt share a salted election uses with it (revealed in
    /// the partial signatures), so nobody can predict the salt while choosing a proposal.
    pub salt_commitments: Vec<[u8; 32]>,
    pub audit_head: Option<SignedHead>,
}

/// What a pool entry commits to for a salt share.
pub fn salt_commitment(share: &[u8; 32]) -> [u8; 32] {
    lotus::hash::tagged_hash("LotusCosigner/pool-salt", &[share])
}

impl NoncePool {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.count(self.nonces.len());
        for n in &self.nonces {
            w.raw(&n.serialize());
        }
        w.count(self.salt_commitments.len());
        for c in &self.salt_commitments {
            w.raw(c);
        }
        SignedHead::encode_optional(&self.audit_head, &mut w);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw = RawPool::parse(bytes)?;
        Ok(Self {
            nonces: raw.nonces(0..raw.len())?,
            salt_commitments: (0..raw.len()).map(|i| raw.commitment(i)).collect(),
            audit_head: raw.audit_head,
        })
    }
}

/// A pool payload split into its parts without decoding any curve point, so one named range
/// costs only its own point decodings.
struct RawPool<'a> {
    nonces: &'a [u8],
    commitments: &'a [u8],
    audit_head: Option<SignedHead>,
}

impl<'a> RawPool<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.count(MAX_POOL_ENTRIES, 66, "pool nonces")?;
        let nonces = r.take(count * 66, "pool nonces")?;
        let commitments = r.count(MAX_POOL_ENTRIES, 32, "salt commitments")?;
        if commitments != count {
            return Err(DecodeError::invalid(
                "salt commitments",
                "one per pool entry".to_string(),
            ));
        }
        let commitments = r.take(count * 32, "salt commitments")?;
        let audit_head = SignedHead::decode_optional(&mut r)?;
        r.finish()?;
        Ok(Self {
            nonces,
            commitments,
            audit_head,
        })
    }

    fn len(&self) -> usize {
        self.nonces.len() / 66
    }

    fn nonces(&self, range: std::ops::Range<usize>) -> Result<Vec<PublicNonce>, DecodeError> {
        range
            .map(|i| {
                PublicNonce::from_slice(&self.nonces[i * 66..(i + 1) * 66])
                    .map_err(|e| DecodeError::invalid("public nonce", e.to_string()))
            })
            .collect()
    }

    fn commitment(&self, i: usize) -> [u8; 32] {
        self.commitments[i * 32..(i + 1) * 32]
            .try_into()
            .expect("32 bytes")
    }
}

/// Which entries of which pool one member's attempt-0 nonces are: `first .. first + inputs`
/// of the pool envelope with id `pool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolRef {
    pub pool: [u8; 32],
    pub first: u16,
}

impl PoolRef {
    pub fn encode(&self, w: &mut Writer) {
        w.raw(&self.pool).u16(self.first);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            pool: r.array("pool id")?,
            first: r.u16("first pool entry")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("not a nonce pool of this member and group")]
    NotThePool,
    #[error("the pool does not decode: {0}")]
    Malformed(String),
    #[error("the proposal names entries {first}..{end}; its proposer's slice of the pool is {start}..{limit}")]
    OutOfRange {
        first: usize,
        end: usize,
        start: usize,
        limit: usize,
    },
}

/// What one member contributes to a pooled attempt 0, read from its signed pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooled {
    pub nonces: Vec<PublicNonce>,
    /// The commitment of the first named entry: the member's salt share for the session.
    pub salt_commitment: [u8; 32],
    pub audit_head: Option<SignedHead>,
}

/// The public nonces `member` contributes to attempt 0 of a proposal by `proposer` naming
/// `pool_ref`, read from its signed pool envelope (signature checked by the caller), with the
/// audit head the pool carries. Only the proposer's own slice of the pool may be named. The
/// same function serves the session and any third party checking evidence.
pub fn pooled_nonces(
    envelope: &Envelope,
    group_id: &GroupId,
    members: usize,
    member: u16,
    proposer: u16,
    pool_ref: &PoolRef,
    inputs: usize,
) -> Result<Pooled, PoolError> {
    let h = &envelope.header;
    if h.kind != MessageKind::NoncePool
        || h.group_id != *group_id
        || h.sender != member
        || envelope.id() != pool_ref.pool
    {
        return Err(PoolError::NotThePool);
    }
    let pool =
        RawPool::parse(&envelope.payload).map_err(|e| PoolError::Malformed(e.to_string()))?;
    let first = usize::from(pool_ref.first);
    let end = first + inputs;
    let slice = slice_len(members);
    let start = usize::from(proposer) * slice;
    let limit = (start + slice).min(pool.len());
    if first < start || end > limit || inputs == 0 {
        return Err(PoolError::OutOfRange {
            first,
            end,
            start,
            limit,
        });
    }
    Ok(Pooled {
        nonces: pool
            .nonces(first..end)
            .map_err(|e| PoolError::Malformed(e.to_string()))?,
        salt_commitment: pool.commitment(first),
        audit_head: pool.audit_head,
    })
}

/// Our own pool for one group: the envelope we published and the secrets not yet taken.
pub struct OwnPool {
    pub id: [u8; 32],
    secrets: Vec<Option<SecretNonce>>,
    /// The salt shares the entries commit to (private until revealed with a partial).
    shares: Vec<[u8; 32]>,
}

impl std::fmt::Debug for OwnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnPool")
            .field("id", &self.id)
            .field("untaken", &self.untaken())
            .finish_non_exhaustive()
    }
}

impl OwnPool {
    pub fn new(envelope: &Envelope, secrets: Vec<SecretNonce>, shares: Vec<[u8; 32]>) -> Self {
        Self {
            id: envelope.id(),
            secrets: secrets.into_iter().map(Some).collect(),
            shares,
        }
    }

    /// Moves the secrets of `first .. first + count` out, all or nothing: a nonce is bound to
    /// one session, so a second proposal naming an entry finds it gone. With them, the salt
    /// share entry `first` committed to.
    pub fn take(&mut self, first: usize, count: usize) -> Option<(Vec<SecretNonce>, [u8; 32])> {
        let share = *self.shares.get(first)?;
        let range = self.secrets.get_mut(first..first.checked_add(count)?)?;
        if count == 0 || range.iter().any(Option::is_none) {
            return None;
        }
        let secrets = range
            .iter_mut()
            .map(|s| s.take().expect("checked"))
            .collect();
        Some((secrets, share))
    }

    pub fn untaken(&self) -> usize {
        self.secrets.iter().filter(|s| s.is_some()).count()
    }
}

/// A member's published pool as this node knows it, with the entries proposals it saw have
/// named in each proposer's slice (so our own proposals name fresh ones).
#[derive(Debug, Clone)]
pub struct KnownPool {
    pub envelope: Envelope,
    pub len: usize,
    pub slice: usize,
    /// Per proposer: the first entry of its slice no proposal we saw (or made) has named.
    pub next: std::collections::BTreeMap<u16, usize>,
}

impl KnownPool {
    pub fn new(envelope: Envelope, len: usize, members: usize) -> Self {
        Self {
            envelope,
            len,
            slice: slice_len(members),
            next: Default::default(),
        }
    }

    fn slice_bounds(&self, proposer: u16) -> (usize, usize) {
        let start = usize::from(proposer) * self.slice;
        (start, (start + self.slice).min(self.len))
    }

    /// The first unnamed entry of `proposer`'s slice.
    pub fn next_free(&self, proposer: u16) -> usize {
        let (start, _) = self.slice_bounds(proposer);
        self.next
            .get(&proposer)
            .copied()
            .unwrap_or(start)
            .max(start)
    }

    /// Unnamed entries left in `proposer`'s slice.
    pub fn free(&self, proposer: u16) -> usize {
        let (_, limit) = self.slice_bounds(proposer);
        limit.saturating_sub(self.next_free(proposer))
    }

    /// A proposal by `proposer` named entries up to (not including) `end`.
    pub fn mark_named(&mut self, proposer: u16, end: usize) {
        let next = self.next_free(proposer).max(end);
        self.next.insert(proposer, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Header;
    use lotus::PrivateKey;

    fn pool_envelope(key: &PrivateKey, count: usize) -> (Envelope, Vec<SecretNonce>) {
        let agg = key.public_key();
        let (secrets, publics): (Vec<_>, Vec<_>) = (0..count)
            .map(|_| SecretNonce::generate(key, &agg, None).expect("os rng"))
            .unzip();
        let header = Header::new(
            MessageKind::NoncePool,
            GroupId([4; 32]),
            [0; 32],
            [0; 32],
            0,
            0,
            1_000,
        );
        let pool = NoncePool {
            salt_commitments: (0..count as u8)
                .map(|i| salt_commitment(&[i; 32]))
                .collect(),
            nonces: publics,
            audit_head: None,
        };
        let env = Envelope::sign(header, pool.encode(), key);
        (env, secrets)
    }

    #[test]
    fn pool_round_trips_and_refuses_too_many_entries() {
        let key = PrivateKey::from_bytes(&[7; 32]).expect("valid");
        let (env, _) = pool_envelope(&key, 3);
        let pool = NoncePool::decode(&env.payload).expect("decodes");
        assert_eq!(pool.nonces.len(), 3);
        let mut w = Writer::new();
        w.count(MAX_POOL_ENTRIES + 1);
        w.count(0).u8(0);
        assert!(NoncePool::decode(&w.into_bytes()).is_err());
    }

    #[test]
    fn a_pool_entry_is_taken_once_and_all_or_nothing() {
        let key = PrivateKey::from_bytes(&[7; 32]).expect("valid");
        let (env, secrets) = pool_envelope(&key, 4);
        let mut own = OwnPool::new(&env, secrets, (0..4u8).map(|i| [i; 32]).collect());
        assert_eq!(own.take(1, 2).map(|(_, share)| share), Some([1; 32]));
        assert!(own.take(1, 1).is_none(), "taken entries never come back");
        assert!(own.take(0, 2).is_none(), "all or nothing: entry 1 is gone");
        assert_eq!(own.untaken(), 2, "a refused take leaves the rest in place");
        assert!(own.take(3, 2).is_none(), "out of range");
        assert!(own.take(0, 0).is_none());
        assert!(own.take(3, 1).is_some());
    }

    #[test]
    fn pooled_nonces_are_read_only_from_the_named_pool_and_range() {
        let key = PrivateKey::from_bytes(&[7; 32]).expect("valid");
        let (env, _) = pool_envelope(&key, 4);
        let group = GroupId([4; 32]);
        // Two members: slices of 8 entries, proposer 0 owns 0..8, proposer 1 owns 8..16.
        let good = PoolRef {
            pool: env.id(),
            first: 1,
        };
        assert_eq!(
            pooled_nonces(&env, &group, 2, 0, 0, &good, 3)
                .expect("in range")
                .nonces
                .len(),
            3
        );
        assert!(matches!(
            pooled_nonces(&env, &group, 2, 0, 0, &good, 4),
            Err(PoolError::OutOfRange { .. })
        ));
        assert!(
            matches!(
                pooled_nonces(&env, &group, 2, 0, 1, &good, 1),
                Err(PoolError::OutOfRange { .. })
            ),
            "another proposer's slice"
        );
        assert_eq!(
            pooled_nonces(&env, &group, 2, 1, 0, &good, 1),
            Err(PoolError::NotThePool),
            "another member's slot"
        );
        assert_eq!(
            pooled_nonces(&env, &GroupId([5; 32]), 2, 0, 0, &good, 1),
            Err(PoolError::NotThePool),
            "another group"
        );
        let other = PoolRef {
            pool: [9; 32],
            first: 0,
        };
        assert_eq!(
            pooled_nonces(&env, &group, 2, 0, 0, &other, 1),
            Err(PoolError::NotThePool)
        );
    }
}
