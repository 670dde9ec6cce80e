//! The cheap checks every incoming message passes before any curve operation: size, bounded
//! decode, version, group and sender known, kind/sequence slot, timestamp window.
//! Only then does the caller verify the signature (see `node`), and only an authenticated
//! message enters the dedup set, so nobody can pre-empt a member's message with junk.
//!
//! Replay protection does not rest on "the message is recent": co-signers may be offline for
//! hours. The window only bounds how old a message can be at all (the longest proposal
//! lifetime); what keeps a replay harmless is that every message is bound to its session, its
//! proposal digest, its attempt and its slot, and that closed or expired sessions refuse all.

use std::collections::{HashMap, VecDeque};

use crate::envelope::{Envelope, PROTOCOL_VERSION};
use crate::failover::Millis;
use crate::wire::DecodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How old a message may be: the longest proposal lifetime any group may set (7 days)
    /// plus the clock skew. A session's own expiry is checked when the message is routed.
    pub past_ms: Millis,
    /// How far in the future (clock skew: 1 minute).
    pub future_ms: Millis,
}

/// The longest lifetime a proposal may have (groups may configure less).
pub const MAX_PROPOSAL_LIFETIME_MS: Millis = 7 * 24 * 3_600_000;

impl Default for Window {
    fn default() -> Self {
        Self {
            past_ms: MAX_PROPOSAL_LIFETIME_MS + 60_000,
            future_ms: 60_000,
        }
    }
}

/// Why a message was dropped before (or at) signature verification. Counted for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("unknown group")]
    UnknownGroup,
    #[error("unknown session")]
    UnknownSession,
    #[error("sender {0} is not a member")]
    NotAMember(u16),
    #[error("sequence {got} does not match the message kind (expected {expected})")]
    Sequence { got: u64, expected: u64 },
    #[error("timestamp {age_ms} ms in the past is outside the window")]
    TooOld { age_ms: u64 },
    #[error("timestamp {ahead_ms} ms in the future is outside the window")]
    FromFuture { ahead_ms: u64 },
    #[error("duplicate message")]
    Duplicate,
    #[error("rate limit: {0}")]
    RateLimited(String),
    #[error("signature check failed: {0}")]
    Signature(String),
    #[error("blacklisted sender")]
    Blacklisted,
    #[error("the message names another group than its session's")]
    CrossGroup,
    #[error("the session is closed or expired")]
    SessionClosed,
    #[error("the session is suspended after a storage failure")]
    Suspended,
    #[error("too many early messages: {0}")]
    EarlyBufferFull(&'static str),
}

impl Rejection {
    /// True when the bytes are invalid on their own (anyone can check it): a relay that
    /// forwarded them misbehaved. Other refusals (duplicate, late, unknown session, rate limit)
    /// can happen to honest traffic and are ignored without penalty.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Rejection::TooLarge { .. }
                | Rejection::Malformed(_)
                | Rejection::Version(_)
                | Rejection::NotAMember(_)
                | Rejection::Sequence { .. }
                | Rejection::Signature(_)
                | Rejection::CrossGroup
        )
    }

    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::Version(_) => "version",
            Rejection::UnknownGroup => "unknown_group",
            Rejection::UnknownSession => "unknown_session",
            Rejection::NotAMember(_) => "not_a_member",
            Rejection::Sequence { .. } => "sequence",
            Rejection::TooOld { .. } => "too_old",
            Rejection::FromFuture { .. } => "from_future",
            Rejection::Duplicate => "duplicate",
            Rejection::RateLimited(_) => "rate_limited",
            Rejection::Signature(_) => "bad_signature",
            Rejection::Blacklisted => "blacklisted",
            Rejection::CrossGroup => "cross_group",
            Rejection::SessionClosed => "session_closed",
            Rejection::Suspended => "suspended",
            Rejection::EarlyBufferFull(_) => "early_buffer_full",
        }
    }
}

/// Size, decode, version, sequence slot and timestamp window: all without state.
pub fn precheck(
    bytes: &[u8],
    max_len: usize,
    now: Millis,
    window: Window,
) -> Result<Envelope, Rejection> {
    if bytes.len() > max_len {
        return Err(Rejection::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let envelope = Envelope::decode(bytes, max_len)?;
    let header = &envelope.header;
    if header.version != PROTOCOL_VERSION {
        return Err(Rejection::Version(header.version));
    }
    if header.sequence != header.kind.sequence() {
        return Err(Rejection::Sequence {
            got: header.sequence,
            expected: header.kind.sequence(),
        });
    }
    // Saturating: a timestamp of u64::MAX (or a clock near it) must not overflow.
    if header.timestamp_ms.saturating_add(window.past_ms) < now {
        return Err(Rejection::TooOld {
            age_ms: now - header.timestamp_ms,
        });
    }
    if header.timestamp_ms > now.saturating_add(window.future_ms) {
        return Err(Rejection::FromFuture {
            ahead_ms: header.timestamp_ms - now,
        });
    }
    Ok(envelope)
}

/// Ids of authenticated envelopes seen recently, so a resend costs no second signature check.
/// Entries older than the timestamp window are forgotten (a replay of them fails the window
/// check instead); bounded by `capacity` (oldest dropped — a replay that gets past an evicted
/// entry is still caught by its session's slot dedup).
#[derive(Debug, Clone)]
pub struct SeenSet {
    expiry: HashMap<[u8; 32], Millis>,
    order: VecDeque<([u8; 32], Millis)>,
    keep_ms: Millis,
    capacity: usize,
}

impl SeenSet {
    pub fn new(window: Window, capacity: usize) -> Self {
        Self {
            expiry: HashMap::new(),
            order: VecDeque::new(),
            keep_ms: window.past_ms + window.future_ms,
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&mut self, id: &[u8; 32], now: Millis) -> bool {
        self.prune(now);
        self.expiry.contains_key(id)
    }

    /// Records `id`; false if it was already there.
    pub fn insert(&mut self, id: [u8; 32], now: Millis) -> bool {
        self.prune(now);
        if self.expiry.contains_key(&id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.expiry.remove(&old);
            }
        }
        let until = now + self.keep_ms;
        self.expiry.insert(id, until);
        self.order.push_back((id, until));
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn prune(&mut self, now: Millis) {
        while let Some(&(id, until)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            self.expiry.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Header, MessageKind};
    use crate::group::GroupId;
    use lotus::PrivateKey;

    fn envelope_bytes(kind: MessageKind, sequence: u64, timestamp: Millis) -> Vec<u8> {
        let key = PrivateKey::from_bytes(&[5; 32]).unwrap();
        let mut header = Header::new(kind, GroupId([0; 32]), [1; 32], [2; 32], 0, 0, timestamp);
        header.sequence = sequence;
        Envelope::sign(header, vec![1, 2, 3], &key).encode()
    }

    #[test]
    fn cheap_checks() {
        let w = Window::default();
        let now = 1_800_000_000_000;
        let ok = envelope_bytes(MessageKind::Nonces, MessageKind::Nonces.sequence(), now);
        precheck(&ok, 65536, now, w).unwrap();
        assert!(matches!(
            precheck(&ok, 10, now, w),
            Err(Rejection::TooLarge { .. })
        ));
        assert!(matches!(
            precheck(&ok[..50], 65536, now, w),
            Err(Rejection::Malformed(_))
        ));
        let wrong_seq = envelope_bytes(MessageKind::Nonces, 9, now);
        assert!(matches!(
            precheck(&wrong_seq, 65536, now, w),
            Err(Rejection::Sequence { .. })
        ));
        let old = envelope_bytes(MessageKind::Nonces, 3, now - w.past_ms - 1);
        assert!(matches!(
            precheck(&old, 65536, now, w),
            Err(Rejection::TooOld { .. })
        ));
        let edge = envelope_bytes(MessageKind::Nonces, 3, now - w.past_ms);
        precheck(&edge, 65536, now, w).unwrap();
        let future = envelope_bytes(MessageKind::Nonces, 3, now + w.future_ms + 1);
        assert!(matches!(
            precheck(&future, 65536, now, w),
            Err(Rejection::FromFuture { .. })
        ));
        let mut bad_version = ok.clone();
        bad_version[0] = 9;
        assert_eq!(
            precheck(&bad_version, 65536, now, w).unwrap_err(),
            Rejection::Version(9)
        );
    }

    /// Defect: `timestamp + window` overflowed, so debug builds panicked on a u64::MAX
    /// timestamp before any membership check.
    #[test]
    fn u64_max_timestamp_is_refused_without_overflow() {
        let w = Window::default();
        let now = 1_800_000_000_000;
        let far = envelope_bytes(MessageKind::Nonces, 3, u64::MAX);
        assert!(matches!(
            precheck(&far, 65536, now, w),
            Err(Rejection::FromFuture { .. })
        ));
        let ok = envelope_bytes(MessageKind::Nonces, 3, now);
        assert!(matches!(
            precheck(&ok, 65536, u64::MAX, w),
            Err(Rejection::TooOld { .. })
        ));
    }

    #[test]
    fn seen_set_dedups_forgets_after_the_window_and_stays_bounded() {
        let w = Window {
            past_ms: 100,
            future_ms: 10,
        };
        let mut seen = SeenSet::new(w, 3);
        assert!(seen.insert([1; 32], 0));
        assert!(!seen.insert([1; 32], 50));
        assert!(
            seen.insert([1; 32], 110),
            "forgotten once its window passed"
        );
        for i in 2..10u8 {
            seen.insert([i; 32], 111);
        }
        assert_eq!(seen.len(), 3);
    }
}
