//! Denial-of-service policy (analysis §6) as plain state over injected time: per-peer proposal
//! rate, session capacity, message size, a per-peer budget of signature verifications,
//! proof-of-work for proposals to open groups, and the blacklist.
//!
//! Every check here is cheap — counters, map lookups and at most one hash — so the runtime
//! runs them *before* any curve operation. Every structure is bounded: old timestamps are
//! pruned on use, tracked peers are capped with least-recently-used eviction, and session and
//! blacklist sizes are fixed at construction.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use lotus::hash::tagged_hash;

use crate::group::{Admission, Limits};
use crate::messages::MAX_REASON_BYTES;

/// The sliding window of the proposal rate limit and the default verification budget.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;
/// Signature verifications one delivering peer may cause per window. A member coming back
/// catches up through one peer (a relay or an always-on member) that passes on every pool,
/// proposal and round message it missed; 600 per minute covers that burst for several
/// sessions while capping a flood at 10 verifications per second. (The node's default and
/// this one are the same number, from here.)
pub const DEFAULT_VERIFICATIONS_PER_WINDOW: usize = 600;
/// Delivering peers a node's verification budget tracks at once.
pub const DEFAULT_BUDGET_TRACKED_PEERS: usize = 10_000;
/// Peers tracked at once by a rate limiter; beyond this the least recently seen is forgotten.
pub const DEFAULT_MAX_TRACKED_PEERS: usize = 1024;
pub const DEFAULT_MAX_BLACKLIST_ENTRIES: usize = 10_000;
/// Message ids the replay cache remembers within its window (when full the oldest is dropped;
/// a replay of it still meets the session's own duplicate checks).
pub const DEFAULT_SEEN_CAPACITY: usize = 200_000;
/// Proof-of-work difficulty cap: 2^32 hashes is hours of work for a proposer already, and a
/// descriptor asking for more would make proposing (mining) effectively never finish.
pub const MAX_POW_BITS: u8 = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "more than {limit} proposals in {window_ms} ms from this peer{}",
        retry_hint(*retry_after_ms)
    )]
    ProposalRateExceeded {
        limit: usize,
        window_ms: u64,
        retry_after_ms: Option<u64>,
    },
    #[error(
        "verifying {requested} more signatures would exceed this sender's budget of {limit} \
         per {window_ms} ms{}",
        retry_hint(*retry_after_ms)
    )]
    VerificationBudgetExhausted {
        limit: usize,
        window_ms: u64,
        requested: usize,
        retry_after_ms: Option<u64>,
    },
    #[error("message of {len} bytes exceeds the group's {max}-byte limit")]
    MessageTooLarge { len: usize, max: usize },
    #[error("{max} sessions are already active")]
    ActiveSessionsFull { max: usize },
    #[error("the group allows no pending sessions")]
    NoPendingCapacity,
    #[error("the session is already tracked")]
    SessionAlreadyTracked,
    #[error("the session is not pending")]
    SessionNotPending,
    #[error("proof of work has {got_bits} leading zero bits; the group requires {required_bits}")]
    InsufficientWork { required_bits: u8, got_bits: u32 },
    #[error("no proof of work found for {bits} bits (at most {MAX_POW_BITS} bits are minable)")]
    PowUnattainable { bits: u8 },
    #[error("blacklisted: {reason}")]
    Blacklisted { reason: String },
    #[error("the blacklist is full ({max} entries)")]
    BlacklistFull { max: usize },
    #[error("blacklist reason is {len} bytes, above {max}")]
    ReasonTooLong { len: usize, max: usize },
}

fn retry_hint(retry_after_ms: Option<u64>) -> String {
    match retry_after_ms {
        Some(ms) => format!(" (retry in {ms} ms)"),
        None => " (the request alone exceeds the limit)".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Sliding-window limiter

/// A refused [`WindowLimiter::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub limit: usize,
    pub window_ms: u64,
    pub requested: usize,
    /// When enough old events leave the window; `None` if `requested` exceeds `limit`.
    pub retry_after_ms: Option<u64>,
}

/// Events of one key inside the window, oldest first.
#[derive(Debug, Clone, Default)]
struct EventLog {
    /// (time, cost); times never decrease, so pruning pops from the front.
    events: VecDeque<(u64, usize)>,
    in_window: usize,
    /// Position in the recency order.
    touch: u64,
}

impl EventLog {
    /// An event at `t` counts while `now - t < window`: it leaves exactly `window` ms later.
    fn prune(&mut self, now_ms: u64, window_ms: u64) {
        while let Some(&(t, cost)) = self.events.front() {
            if now_ms.saturating_sub(t) < window_ms {
                break;
            }
            self.events.pop_front();
            self.in_window -= cost;
        }
    }

    /// How long until `cost` more fits under `limit`, given events already pruned to `now`.
    fn retry_after(&self, cost: usize, limit: usize, now_ms: u64, window_ms: u64) -> u64 {
        let must_free = (self.in_window + cost).saturating_sub(limit);
        let mut freed = 0;
        for &(t, c) in &self.events {
            freed += c;
            if freed >= must_free {
                return (t + window_ms).saturating_sub(now_ms);
            }
        }
        window_ms
    }

    fn record(&mut self, now_ms: u64, cost: usize) {
        // Keep times sorted even if the injected clock steps back.
        let t = self
            .events
            .back()
            .map_or(now_ms, |&(last, _)| last.max(now_ms));
        self.events.push_back((t, cost));
        self.in_window += cost;
    }
}

/// At most `limit` units of cost per key in any sliding window of `window_ms`, for at most
/// `max_keys` keys. Memory: at most `max_keys × limit` events (every event costs ≥ 1).
///
/// Forgetting a key (LRU eviction when a new key arrives at capacity) resets its count. With
/// keys an attacker mints for free (peer ids) that is unavoidable; key by signer key where
/// identities are bounded (the group's members).
#[derive(Debug, Clone)]
pub struct WindowLimiter<K> {
    limit: usize,
    window_ms: u64,
    max_keys: usize,
    logs: BTreeMap<K, EventLog>,
    /// touch counter → key; the first entry is the least recently used key.
    recency: BTreeMap<u64, K>,
    next_touch: u64,
}

impl<K: Ord + Clone> WindowLimiter<K> {
    /// `window_ms` and `max_keys` are at least 1.
    pub fn new(limit: usize, window_ms: u64, max_keys: usize) -> Self {
        Self {
            limit,
            window_ms: window_ms.max(1),
            max_keys: max_keys.max(1),
            logs: BTreeMap::new(),
            recency: BTreeMap::new(),
            next_touch: 0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Records `cost` units for `key` at `now_ms` if they fit in its window; refused
    /// attempts are not recorded.
    pub fn try_acquire(&mut self, key: &K, cost: usize, now_ms: u64) -> Result<(), Throttled> {
        if cost == 0 {
            return Ok(());
        }
        if cost > self.limit {
            return Err(self.throttled(cost, None));
        }
        let touch = self.touch(key);
        let (limit, window_ms) = (self.limit, self.window_ms);
        let log = self.logs.entry(key.clone()).or_default();
        log.touch = touch;
        log.prune(now_ms, window_ms);
        if log.in_window + cost > limit {
            let retry = log.retry_after(cost, limit, now_ms, window_ms);
            return Err(self.throttled(cost, Some(retry)));
        }
        log.record(now_ms, cost);
        Ok(())
    }

    fn throttled(&self, requested: usize, retry_after_ms: Option<u64>) -> Throttled {
        Throttled {
            limit: self.limit,
            window_ms: self.window_ms,
            requested,
            retry_after_ms,
        }
    }

    /// Moves `key` to the most-recent end, evicting the least recently used key if a new key
    /// would exceed `max_keys`. Returns the key's new touch value.
    fn touch(&mut self, key: &K) -> u64 {
        match self.logs.get(key) {
            Some(log) => {
                self.recency.remove(&log.touch);
            }
            None if self.logs.len() >= self.max_keys => self.evict_least_recent(),
            None => {}
        }
        let touch = self.next_touch;
        self.next_touch += 1;
        self.recency.insert(touch, key.clone());
        touch
    }

    fn evict_least_recent(&mut self) {
        if let Some((_, key)) = self.recency.pop_first() {
            self.logs.remove(&key);
        }
    }

    /// Units `key` has used in the window ending at `now_ms`.
    pub fn used(&self, key: &K, now_ms: u64) -> usize {
        self.logs.get(key).map_or(0, |log| {
            log.events
                .iter()
                .filter(|&&(t, _)| now_ms.saturating_sub(t) < self.window_ms)
                .map(|&(_, c)| c)
                .sum()
        })
    }

    pub fn tracked_keys(&self) -> usize {
        self.logs.len()
    }

    pub fn is_tracked(&self, key: &K) -> bool {
        self.logs.contains_key(key)
    }

    pub fn forget(&mut self, key: &K) {
        if let Some(log) = self.logs.remove(key) {
            self.recency.remove(&log.touch);
        }
    }

    /// Drops keys with nothing left in their window (call on a periodic tick).
    pub fn prune_idle(&mut self, now_ms: u64) {
        let window_ms = self.window_ms;
        let recency = &mut self.recency;
        self.logs.retain(|_, log| {
            log.prune(now_ms, window_ms);
            let keep = log.in_window > 0;
            if !keep {
                recency.remove(&log.touch);
            }
            keep
        });
    }
}

/// Proposals per peer per minute (analysis §6.1; default 5), keyed by signer key in the
/// engine and by peer id in the network layer.
#[derive(Debug, Clone)]
pub struct ProposalRateLimit<K>(WindowLimiter<K>);

impl<K: Ord + Clone> ProposalRateLimit<K> {
    pub fn new(per_minute: usize, max_peers: usize) -> Self {
        Self(WindowLimiter::new(per_minute, DEFAULT_WINDOW_MS, max_peers))
    }

    /// The group's `proposals_per_minute` over [`DEFAULT_MAX_TRACKED_PEERS`] peers.
    pub fn from_limits(limits: &Limits) -> Self {
        Self::new(
            usize::from(limits.proposals_per_minute),
            DEFAULT_MAX_TRACKED_PEERS,
        )
    }

    /// Counts one proposal from `peer` if it is within the limit.
    pub fn check(&mut self, peer: &K, now_ms: u64) -> Result<(), PolicyError> {
        self.0
            .try_acquire(peer, 1, now_ms)
            .map_err(|t| PolicyError::ProposalRateExceeded {
                limit: t.limit,
                window_ms: t.window_ms,
                retry_after_ms: t.retry_after_ms,
            })
    }

    pub fn limiter(&self) -> &WindowLimiter<K> {
        &self.0
    }

    pub fn prune_idle(&mut self, now_ms: u64) {
        self.0.prune_idle(now_ms);
    }
}

/// Signature verifications a sender may cause per window (analysis §6.2), charged before the
/// curve operations run, so a flood of well-formed junk costs the receiver counters, not CPU.
#[derive(Debug, Clone)]
pub struct VerificationBudget<K>(WindowLimiter<K>);

impl<K: Ord + Clone> Default for VerificationBudget<K> {
    fn default() -> Self {
        Self::new(
            DEFAULT_VERIFICATIONS_PER_WINDOW,
            DEFAULT_WINDOW_MS,
            DEFAULT_BUDGET_TRACKED_PEERS,
        )
    }
}

impl<K: Ord + Clone> VerificationBudget<K> {
    pub fn new(per_window: usize, window_ms: u64, max_senders: usize) -> Self {
        Self(WindowLimiter::new(per_window, window_ms, max_senders))
    }

    /// Charges `verifications` (e.g. 1 for an envelope, plus one per partial signature) to
    /// `sender`; on `Err` the caller drops the message without verifying anything.
    pub fn spend(
        &mut self,
        sender: &K,
        verifications: usize,
        now_ms: u64,
    ) -> Result<(), PolicyError> {
        self.0
            .try_acquire(sender, verifications, now_ms)
            .map_err(|t| PolicyError::VerificationBudgetExhausted {
                limit: t.limit,
                window_ms: t.window_ms,
                requested: t.requested,
                retry_after_ms: t.retry_after_ms,
            })
    }

    pub fn limiter(&self) -> &WindowLimiter<K> {
        &self.0
    }

    pub fn prune_idle(&mut self, now_ms: u64) {
        self.0.prune_idle(now_ms);
    }
}

// ---------------------------------------------------------------------------------------------
// Session capacity

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSlot {
    /// Received and waiting (for the person's approval, for its first round).
    Pending,
    /// Signing.
    Active,
}

/// Bounded session table (analysis §6.1): at most `max_active` active and `max_pending`
/// pending sessions. A new pending session when pending is full evicts the oldest pending one
/// (by admission order), so a flood displaces its own earlier sessions rather than being able
/// to lock new ones out; active sessions are never evicted — promotion fails instead.
#[derive(Debug, Clone)]
pub struct SessionCapacity<S> {
    max_active: usize,
    max_pending: usize,
    active: BTreeSet<S>,
    /// id → admission number
    pending: BTreeMap<S, u64>,
    /// admission number → id; the first entry is the oldest pending session.
    pending_by_age: BTreeMap<u64, S>,
    next_admission: u64,
}

impl<S: Ord + Clone> SessionCapacity<S> {
    pub fn new(max_active: usize, max_pending: usize) -> Self {
        Self {
            max_active,
            max_pending,
            active: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_by_age: BTreeMap::new(),
            next_admission: 0,
        }
    }

    pub fn from_limits(limits: &Limits) -> Self {
        Self::new(
            usize::from(limits.max_active_sessions),
            usize::from(limits.max_pending_sessions),
        )
    }

    /// Admits `id` as pending. Returns the session evicted to make room, if any; the caller
    /// drops that session's state.
    pub fn admit_pending(&mut self, id: S) -> Result<Option<S>, PolicyError> {
        if self.max_pending == 0 {
            return Err(PolicyError::NoPendingCapacity);
        }
        if self.slot(&id).is_some() {
            return Err(PolicyError::SessionAlreadyTracked);
        }
        let evicted = if self.pending.len() >= self.max_pending {
            self.evict_oldest_pending()
        } else {
            None
        };
        let admission = self.next_admission;
        self.next_admission += 1;
        self.pending.insert(id.clone(), admission);
        self.pending_by_age.insert(admission, id);
        Ok(evicted)
    }

    fn evict_oldest_pending(&mut self) -> Option<S> {
        let (_, oldest) = self.pending_by_age.pop_first()?;
        self.pending.remove(&oldest);
        Some(oldest)
    }

    /// Moves a pending session to active; when active is full the session stays pending.
    pub fn promote(&mut self, id: &S) -> Result<(), PolicyError> {
        let Some(&admission) = self.pending.get(id) else {
            return Err(PolicyError::SessionNotPending);
        };
        if self.active.len() >= self.max_active {
            return Err(PolicyError::ActiveSessionsFull {
                max: self.max_active,
            });
        }
        self.pending.remove(id);
        self.pending_by_age.remove(&admission);
        self.active.insert(id.clone());
        Ok(())
    }

    /// Forgets a session (finished, aborted, expired); returns where it was.
    pub fn remove(&mut self, id: &S) -> Option<SessionSlot> {
        if self.active.remove(id) {
            return Some(SessionSlot::Active);
        }
        let admission = self.pending.remove(id)?;
        self.pending_by_age.remove(&admission);
        Some(SessionSlot::Pending)
    }

    pub fn slot(&self, id: &S) -> Option<SessionSlot> {
        if self.active.contains(id) {
            Some(SessionSlot::Active)
        } else if self.pending.contains_key(id) {
            Some(SessionSlot::Pending)
        } else {
            None
        }
    }

    /// The pending session the next full admission would evict.
    pub fn oldest_pending(&self) -> Option<&S> {
        self.pending_by_age.values().next()
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Message size

/// Analysis §6.3: the group's message limit (64 KiB by default), checked before decoding.
pub fn check_message_size(len: usize, limits: &Limits) -> Result<(), PolicyError> {
    // u32 → usize is lossless on every supported target.
    let max = limits.max_message_bytes as usize;
    if len > max {
        return Err(PolicyError::MessageTooLarge { len, max });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Proof of work

/// TH("LotusCosigner/pow", digest ‖ nonce as u64 big-endian).
pub fn pow_hash(digest: &[u8; 32], nonce: u64) -> [u8; 32] {
    tagged_hash("LotusCosigner/pow", &[digest, &nonce.to_be_bytes()])
}

pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for &byte in hash {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// Whether `nonce` gives `digest` at least `bits` leading zero bits (one hash).
pub fn pow_ok(digest: &[u8; 32], nonce: u64, bits: u8) -> bool {
    leading_zero_bits(&pow_hash(digest, nonce)) >= u32::from(bits)
}

/// Searches nonces upward from `start_nonce` (wrapping) for one that satisfies `bits`.
/// Expected work is 2^bits hashes; difficulties above [`MAX_POW_BITS`] are refused rather
/// than searched for practically forever.
pub fn mine_pow(digest: &[u8; 32], bits: u8, start_nonce: u64) -> Result<u64, PolicyError> {
    if bits > MAX_POW_BITS {
        return Err(PolicyError::PowUnattainable { bits });
    }
    let mut nonce = start_nonce;
    loop {
        if pow_ok(digest, nonce, bits) {
            return Ok(nonce);
        }
        nonce = nonce.wrapping_add(1);
        // A full cycle without a solution has probability about e^(-2^32) at 32 bits.
        if nonce == start_nonce {
            return Err(PolicyError::PowUnattainable { bits });
        }
    }
}

/// Open groups require proof of work over `digest` (the proposal's); invite-only groups
/// need none. A missing nonce counts as zero work.
pub fn check_admission_work(
    admission: &Admission,
    digest: &[u8; 32],
    nonce: Option<u64>,
) -> Result<(), PolicyError> {
    let Admission::Open { pow_bits } = *admission else {
        return Ok(());
    };
    let got_bits = nonce.map_or(0, |n| leading_zero_bits(&pow_hash(digest, n)));
    if got_bits >= u32::from(pow_bits) {
        Ok(())
    } else {
        Err(PolicyError::InsufficientWork {
            required_bits: pow_bits,
            got_bits,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Blacklist

/// Signer keys this user refuses to work with, each with the user's reason. Entries are the
/// user's decisions, so a full list refuses new entries instead of evicting old ones.
#[derive(Debug, Clone)]
pub struct Blacklist<K> {
    entries: BTreeMap<K, String>,
    max_entries: usize,
}

impl<K: Ord + Clone> Default for Blacklist<K> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BLACKLIST_ENTRIES)
    }
}

impl<K: Ord + Clone> Blacklist<K> {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            max_entries,
        }
    }

    /// Adds `key`, or replaces its reason if already listed.
    pub fn insert(&mut self, key: K, reason: &str) -> Result<(), PolicyError> {
        if reason.len() > MAX_REASON_BYTES {
            return Err(PolicyError::ReasonTooLong {
                len: reason.len(),
                max: MAX_REASON_BYTES,
            });
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            return Err(PolicyError::BlacklistFull {
                max: self.max_entries,
            });
        }
        self.entries.insert(key, reason.to_string());
        Ok(())
    }

    pub fn remove(&mut self, key: &K) -> Option<String> {
        self.entries.remove(key)
    }

    pub fn check(&self, key: &K) -> Result<(), PolicyError> {
        match self.entries.get(key) {
            Some(reason) => Err(PolicyError::Blacklisted {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn reason(&self, key: &K) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &str)> {
        self.entries.iter().map(|(k, r)| (k, r.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
