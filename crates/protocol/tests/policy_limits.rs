//! DoS policy: window edges (an event leaves the window exactly `window` ms later), bounded
//! memory (pruning, LRU eviction of tracked peers), session capacity and eviction order,
//! message size, proof-of-work at 0/8/16 bits, blacklist. Time is always a parameter.

use protocol::group::{Admission, Limits};
use protocol::policy::*;

const MINUTE: u64 = 60_000;

// ---------------------------------------------------------------------------------------------
// Sliding window

#[test]
fn an_event_leaves_the_window_exactly_window_ms_later() {
    let mut limiter = WindowLimiter::new(5, MINUTE, 16);
    for t in [0, 10_000, 20_000, 30_000, 40_000] {
        limiter.try_acquire(&"peer", 1, t).expect("under the limit");
    }
    assert_eq!(
        limiter.try_acquire(&"peer", 1, 59_999),
        Err(Throttled {
            limit: 5,
            window_ms: MINUTE,
            requested: 1,
            retry_after_ms: Some(1)
        })
    );
    assert_eq!(limiter.used(&"peer", 59_999), 5);
    assert_eq!(limiter.used(&"peer", 60_000), 4, "the event at 0 has left");
    limiter
        .try_acquire(&"peer", 1, 60_000)
        .expect("the event at 0 left");
    // Full again; the event at 10 s leaves at 70 s.
    assert_eq!(
        limiter
            .try_acquire(&"peer", 1, 60_001)
            .unwrap_err()
            .retry_after_ms,
        Some(9_999)
    );
    limiter
        .try_acquire(&"peer", 1, 70_000)
        .expect("10 s event left");
}

#[test]
fn refusals_are_not_counted_and_keys_are_independent() {
    let mut limiter = WindowLimiter::new(2, MINUTE, 16);
    limiter.try_acquire(&1u8, 2, 0).unwrap();
    for t in 1..100 {
        assert!(limiter.try_acquire(&1u8, 1, t).is_err());
    }
    assert_eq!(
        limiter.used(&1u8, 100),
        2,
        "refused attempts are not recorded"
    );
    limiter
        .try_acquire(&1u8, 2, MINUTE)
        .expect("a flood of refusals does not extend the window");
    limiter
        .try_acquire(&2u8, 2, 0)
        .expect("another key has its own window");
}

#[test]
fn costs_above_the_limit_and_zero_costs() {
    let mut limiter = WindowLimiter::new(3, MINUTE, 16);
    let err = limiter.try_acquire(&"k", 4, 0).unwrap_err();
    assert_eq!(err.retry_after_ms, None, "never fits");
    assert!(
        !limiter.is_tracked(&"k"),
        "nothing tracked for a request that never fits"
    );
    limiter.try_acquire(&"k", 0, 0).expect("free");
    assert!(!limiter.is_tracked(&"k"));

    let mut none = WindowLimiter::new(0, MINUTE, 16);
    assert_eq!(
        none.try_acquire(&"k", 1, 0).unwrap_err().retry_after_ms,
        None
    );
}

#[test]
fn retry_after_accounts_for_costs() {
    let mut limiter = WindowLimiter::new(10, MINUTE, 16);
    limiter.try_acquire(&"k", 3, 0).unwrap();
    limiter.try_acquire(&"k", 3, 5_000).unwrap();
    limiter.try_acquire(&"k", 3, 10_000).unwrap();
    // 9 used; 5 more needs 4 freed: the first two events (3 + 3), the second leaves at 65 s.
    assert_eq!(
        limiter
            .try_acquire(&"k", 5, 20_000)
            .unwrap_err()
            .retry_after_ms,
        Some(45_000)
    );
    limiter
        .try_acquire(&"k", 5, 65_000)
        .expect("freed as predicted");
}

#[test]
fn a_clock_stepping_back_never_shortens_the_window() {
    let mut limiter = WindowLimiter::new(1, MINUTE, 16);
    limiter.try_acquire(&"k", 1, 10_000).unwrap();
    assert!(limiter.try_acquire(&"k", 1, 5_000).is_err());
    assert!(limiter.try_acquire(&"k", 1, 69_999).is_err());
    limiter.try_acquire(&"k", 1, 70_000).unwrap();
    // Recorded at 5 s it would leave at 65 s; it is kept at the latest time seen.
    let mut limiter = WindowLimiter::new(2, MINUTE, 16);
    limiter.try_acquire(&"k", 1, 10_000).unwrap();
    limiter.try_acquire(&"k", 1, 5_000).unwrap();
    assert_eq!(limiter.used(&"k", 65_000), 2);
    assert_eq!(limiter.used(&"k", 70_000), 0);
}

#[test]
fn tracked_peers_are_capped_least_recently_used_first() {
    let mut limiter = WindowLimiter::new(5, MINUTE, 3);
    for (t, peer) in ["a", "b", "c"].into_iter().enumerate() {
        limiter.try_acquire(&peer, 1, t as u64).unwrap();
    }
    limiter.try_acquire(&"a", 1, 10).unwrap(); // a is now the most recent
    limiter.try_acquire(&"d", 1, 11).unwrap(); // evicts b
    assert_eq!(limiter.tracked_keys(), 3);
    assert!(!limiter.is_tracked(&"b"));
    assert!(["a", "c", "d"].iter().all(|p| limiter.is_tracked(p)));
    // A refused attempt also counts as recent activity.
    for t in 12..16 {
        limiter.try_acquire(&"c", 1, t).unwrap();
    }
    assert!(limiter.try_acquire(&"c", 1, 16).is_err());
    limiter.try_acquire(&"e", 1, 17).unwrap(); // evicts a (touched at 10)
    assert!(!limiter.is_tracked(&"a"));
    assert!(limiter.is_tracked(&"c"));

    for i in 0..1_000u32 {
        limiter.try_acquire(&"x", 0, 0).unwrap();
        let _ = limiter.try_acquire(&"many", 1, u64::from(i));
        assert!(limiter.tracked_keys() <= 3);
        assert!(limiter.used(&"many", u64::from(i)) <= 5);
    }
}

#[test]
fn idle_keys_are_pruned() {
    let mut limiter = WindowLimiter::new(5, MINUTE, 16);
    limiter.try_acquire(&"old", 1, 0).unwrap();
    limiter.try_acquire(&"new", 1, 30_000).unwrap();
    limiter.prune_idle(59_999);
    assert_eq!(limiter.tracked_keys(), 2);
    limiter.prune_idle(60_000);
    assert!(!limiter.is_tracked(&"old"));
    assert!(limiter.is_tracked(&"new"));
    limiter.forget(&"new");
    assert_eq!(limiter.tracked_keys(), 0);
    // Forgetting and pruning keep the recency order consistent: the cap still holds.
    let mut small = WindowLimiter::new(1, MINUTE, 2);
    small.try_acquire(&1, 1, 0).unwrap();
    small.try_acquire(&2, 1, 0).unwrap();
    small.forget(&1);
    small.try_acquire(&3, 1, 0).unwrap();
    small.try_acquire(&4, 1, 0).unwrap(); // evicts 2, the least recent left
    assert!(small.is_tracked(&3) && small.is_tracked(&4) && !small.is_tracked(&2));
}

#[test]
fn proposal_rate_defaults_to_five_per_minute() {
    let mut rate = ProposalRateLimit::from_limits(&Limits::default());
    assert_eq!(rate.limiter().limit(), 5);
    assert_eq!(rate.limiter().window_ms(), MINUTE);
    for t in 0..5 {
        rate.check(&"peer", t * 1_000).unwrap();
    }
    assert_eq!(
        rate.check(&"peer", 5_000),
        Err(PolicyError::ProposalRateExceeded {
            limit: 5,
            window_ms: MINUTE,
            retry_after_ms: Some(55_000)
        })
    );
    rate.check(&"other", 5_000).unwrap();
    rate.check(&"peer", MINUTE).unwrap();
    rate.prune_idle(10 * MINUTE);
    assert_eq!(rate.limiter().tracked_keys(), 0);
}

#[test]
fn verification_budget_is_charged_per_signature() {
    let mut budget = VerificationBudget::default();
    let limit = DEFAULT_VERIFICATIONS_PER_WINDOW;
    assert_eq!(budget.limiter().limit(), limit);
    budget.spend(&7u16, limit - 50, 0).unwrap();
    assert_eq!(
        budget.spend(&7u16, 51, 1),
        Err(PolicyError::VerificationBudgetExhausted {
            limit,
            window_ms: MINUTE,
            requested: 51,
            retry_after_ms: Some(MINUTE - 1)
        })
    );
    budget.spend(&7u16, 50, 1).unwrap();
    assert!(budget.spend(&7u16, 1, 2).is_err());
    budget.spend(&7u16, limit - 50, MINUTE).unwrap();
    assert!(matches!(
        budget.spend(&8u16, limit + 1, 0),
        Err(PolicyError::VerificationBudgetExhausted {
            retry_after_ms: None,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Session capacity

#[test]
fn a_full_pending_table_evicts_the_oldest_pending_session() {
    let mut sessions = SessionCapacity::new(2, 3);
    for id in ["a", "b", "c"] {
        assert_eq!(sessions.admit_pending(id), Ok(None));
    }
    assert_eq!(sessions.oldest_pending(), Some(&"a"));
    assert_eq!(sessions.admit_pending("d"), Ok(Some("a")));
    assert_eq!(sessions.slot(&"a"), None);
    assert_eq!(sessions.pending_len(), 3);

    // Promoting from the middle keeps the age order of the rest.
    sessions.promote(&"c").unwrap();
    assert_eq!(sessions.slot(&"c"), Some(SessionSlot::Active));
    sessions.admit_pending("e").unwrap();
    assert_eq!(sessions.admit_pending("f"), Ok(Some("b")));
    assert_eq!(sessions.admit_pending("g"), Ok(Some("d")));
    assert_eq!(sessions.oldest_pending(), Some(&"e"));
}

#[test]
fn active_sessions_are_never_evicted_promotion_fails_instead() {
    let mut sessions = SessionCapacity::new(2, 3);
    for id in [1, 2, 3] {
        sessions.admit_pending(id).unwrap();
    }
    sessions.promote(&1).unwrap();
    sessions.promote(&2).unwrap();
    assert_eq!(
        sessions.promote(&3),
        Err(PolicyError::ActiveSessionsFull { max: 2 })
    );
    assert_eq!(sessions.slot(&3), Some(SessionSlot::Pending));
    assert_eq!(sessions.promote(&9), Err(PolicyError::SessionNotPending));
    assert_eq!(sessions.promote(&1), Err(PolicyError::SessionNotPending));
    assert_eq!(
        sessions.admit_pending(1),
        Err(PolicyError::SessionAlreadyTracked)
    );
    assert_eq!(
        sessions.admit_pending(3),
        Err(PolicyError::SessionAlreadyTracked)
    );

    assert_eq!(sessions.remove(&1), Some(SessionSlot::Active));
    sessions.promote(&3).unwrap();
    assert_eq!(sessions.active_len(), 2);
    assert_eq!(sessions.remove(&3), Some(SessionSlot::Active));
    sessions.admit_pending(4).unwrap();
    assert_eq!(sessions.remove(&4), Some(SessionSlot::Pending));
    assert_eq!(sessions.remove(&4), None);
    assert_eq!(sessions.oldest_pending(), None);
}

#[test]
fn default_capacity_is_100_active_and_50_pending() {
    let mut sessions = SessionCapacity::from_limits(&Limits::default());
    for id in 0..50u32 {
        assert_eq!(sessions.admit_pending(id), Ok(None));
    }
    assert_eq!(sessions.admit_pending(50), Ok(Some(0)));
    for id in 100..250u32 {
        sessions.admit_pending(id).unwrap();
        let _ = sessions.promote(&id);
        assert!(sessions.active_len() <= 100 && sessions.pending_len() <= 50);
    }
    assert_eq!(sessions.active_len(), 100);

    let mut none = SessionCapacity::new(1, 0);
    assert_eq!(none.admit_pending(1), Err(PolicyError::NoPendingCapacity));
}

// ---------------------------------------------------------------------------------------------
// Message size

#[test]
fn message_size_limit() {
    let limits = Limits::default();
    check_message_size(64 * 1024, &limits).unwrap();
    assert_eq!(
        check_message_size(64 * 1024 + 1, &limits),
        Err(PolicyError::MessageTooLarge {
            len: 65_537,
            max: 65_536
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Proof of work

#[test]
fn leading_zero_bits_counts_across_bytes() {
    assert_eq!(leading_zero_bits(&[0; 32]), 256);
    let mut h = [0u8; 32];
    h[0] = 0x80;
    assert_eq!(leading_zero_bits(&h), 0);
    h[0] = 0;
    h[1] = 0x01;
    h[2] = 0xff;
    assert_eq!(leading_zero_bits(&h), 15);
}

#[test]
fn pow_at_0_8_and_16_bits() {
    let digest = [0x42; 32];
    assert!(pow_ok(&digest, 12345, 0), "zero bits: any nonce");
    assert_eq!(mine_pow(&digest, 0, 777), Ok(777));

    for bits in [8u8, 16] {
        let start = 1_000;
        let nonce = mine_pow(&digest, bits, start).expect("minable");
        assert!(pow_ok(&digest, nonce, bits));
        assert!(leading_zero_bits(&pow_hash(&digest, nonce)) >= u32::from(bits));
        assert!(
            (start..nonce).all(|n| !pow_ok(&digest, n, bits)),
            "the first solution from start"
        );
        // The work is bound to the digest.
        let other = [0x43; 32];
        let other_nonce = mine_pow(&other, bits, start).unwrap();
        assert!(pow_ok(&other, other_nonce, bits));
        assert_ne!(
            pow_hash(&digest, nonce),
            pow_hash(&other, nonce),
            "hash depends on the digest"
        );
    }
    assert_eq!(
        pow_hash(&digest, 1),
        lotus::hash::tagged_hash("LotusCosigner/pow", &[&digest, &1u64.to_be_bytes()])
    );
    assert_eq!(
        mine_pow(&digest, MAX_POW_BITS + 1, 0),
        Err(PolicyError::PowUnattainable { bits: 33 })
    );
    // Mining wraps around u64::MAX.
    let wrapped = mine_pow(&digest, 8, u64::MAX - 1).unwrap();
    assert!(pow_ok(&digest, wrapped, 8));
}

#[test]
fn open_groups_require_work_invite_only_groups_do_not() {
    let digest = [7; 32];
    check_admission_work(&Admission::InviteOnly, &digest, None).unwrap();
    let open = Admission::Open { pow_bits: 8 };
    assert_eq!(
        check_admission_work(&open, &digest, None),
        Err(PolicyError::InsufficientWork {
            required_bits: 8,
            got_bits: 0
        })
    );
    let nonce = mine_pow(&digest, 8, 0).unwrap();
    check_admission_work(&open, &digest, Some(nonce)).unwrap();
    let weak = (0..).find(|&n| !pow_ok(&digest, n, 8)).unwrap();
    assert!(matches!(
        check_admission_work(&open, &digest, Some(weak)),
        Err(PolicyError::InsufficientWork { required_bits: 8, got_bits }) if got_bits < 8
    ));
    check_admission_work(&Admission::Open { pow_bits: 0 }, &digest, None).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Blacklist

#[test]
fn blacklist_with_reasons() {
    let mut list = Blacklist::new(2);
    assert!(list.is_empty());
    list.check(&"alice").unwrap();
    list.insert("mallory", "equivocated in session 3f2a")
        .unwrap();
    assert_eq!(
        list.check(&"mallory"),
        Err(PolicyError::Blacklisted {
            reason: "equivocated in session 3f2a".into()
        })
    );
    assert_eq!(list.reason(&"mallory"), Some("equivocated in session 3f2a"));
    list.insert("trudy", "").unwrap();
    assert_eq!(
        list.insert("eve", "x"),
        Err(PolicyError::BlacklistFull { max: 2 })
    );
    list.insert("trudy", "spam proposals")
        .expect("updating a listed key needs no room");
    assert_eq!(list.len(), 2);
    assert_eq!(
        list.iter().collect::<Vec<_>>(),
        vec![
            (&"mallory", "equivocated in session 3f2a"),
            (&"trudy", "spam proposals")
        ]
    );
    let long = "r".repeat(protocol::messages::MAX_REASON_BYTES + 1);
    assert!(matches!(
        list.insert("trudy", &long),
        Err(PolicyError::ReasonTooLong { .. })
    ));
    assert_eq!(
        list.remove(&"mallory"),
        Some("equivocated in session 3f2a".into())
    );
    list.check(&"mallory").unwrap();
    list.insert("eve", "x").unwrap();
}

#[test]
fn errors_read_as_sentences() {
    let e = PolicyError::ProposalRateExceeded {
        limit: 5,
        window_ms: MINUTE,
        retry_after_ms: Some(1_500),
    };
    assert_eq!(
        e.to_string(),
        "more than 5 proposals in 60000 ms from this peer (retry in 1500 ms)"
    );
    let e = PolicyError::VerificationBudgetExhausted {
        limit: 200,
        window_ms: MINUTE,
        requested: 201,
        retry_after_ms: None,
    };
    assert!(e
        .to_string()
        .ends_with("(the request alone exceeds the limit)"));
}
