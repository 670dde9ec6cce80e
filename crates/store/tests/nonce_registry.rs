//! The used-nonce registry: a repeated public nonce anywhere is `NonceReuse`; attempt states
//! only move forward; signing needs a durable approval; what a restarted node resumes from.

mod common;

use common::*;
use protocol::envelope::MessageKind;
use protocol::session::Durable;
use store::{AttemptState, Error, NonceSlot};

fn signing(session_id: [u8; 32], attempt: u32) -> Durable {
    Durable::AttemptSigning {
        session_id,
        attempt,
        digest: digest(session_id),
    }
}

fn closed(session_id: [u8; 32], attempt: u32, signed: bool) -> Durable {
    Durable::AttemptClosed {
        session_id,
        attempt,
        signed,
    }
}

/// A store with one approved session (id 1) proposed by member 1, seen by member 0.
fn approved() -> Fixture {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    propose(&mut f.store, &k, &g, session(1), 1, 0, 1_000);
    f.store
        .record_approval(session(1), digest(session(1)), 1_001)
        .unwrap();
    f
}

#[test]
fn a_nonce_released_twice_in_one_session_is_refused() {
    let mut f = approved();
    f.store
        .apply(&nonce(session(1), 0, 0, 0x11), 2_000)
        .unwrap();
    f.store
        .apply(&nonce(session(1), 0, 1, 0x12), 2_000)
        .unwrap();
    // The same public nonce for another input, in a later attempt, or replayed exactly.
    for again in [
        nonce(session(1), 0, 2, 0x11),
        nonce(session(1), 1, 0, 0x12),
        nonce(session(1), 0, 0, 0x11),
    ] {
        let err = f.store.apply(&again, 2_001).unwrap_err();
        assert!(err.is_nonce_conflict(), "{err}");
        match err {
            Error::NonceReuse {
                nonce_hash, first, ..
            } => {
                assert_eq!(first.session_id, session(1));
                assert_eq!(first.attempt, 0);
                assert!(nonce_hash == [0x11; 32] || nonce_hash == [0x12; 32]);
            }
            other => panic!("expected NonceReuse, got {other}"),
        }
    }
    // Nothing of the refused records was written.
    assert_eq!(f.store.attempt_state(&session(1), 1).unwrap(), None);
    assert_eq!(
        f.store.attempts(&session(1)).unwrap()[0].nonce_hashes.len(),
        2
    );
}

#[test]
fn a_nonce_released_in_another_session_is_refused() {
    let mut f = approved();
    f.store
        .apply(&nonce(session(1), 0, 0, 0x21), 2_000)
        .unwrap();
    let err = f
        .store
        .apply(&nonce(session(9), 0, 0, 0x21), 3_000)
        .unwrap_err();
    match err {
        Error::NonceReuse {
            nonce_hash,
            first,
            second,
        } => {
            assert_eq!(nonce_hash, [0x21; 32]);
            assert_eq!(
                first,
                NonceSlot {
                    session_id: session(1),
                    attempt: 0,
                    input: 0
                }
            );
            assert_eq!(
                second,
                NonceSlot {
                    session_id: session(9),
                    attempt: 0,
                    input: 0
                }
            );
        }
        other => panic!("expected NonceReuse, got {other}"),
    }
    assert_eq!(f.store.attempt_state(&session(9), 0).unwrap(), None);
}

#[test]
fn a_second_nonce_for_one_input_is_refused() {
    let mut f = approved();
    f.store
        .apply(&nonce(session(1), 0, 0, 0x31), 2_000)
        .unwrap();
    let err = f
        .store
        .apply(&nonce(session(1), 0, 0, 0x32), 2_001)
        .unwrap_err();
    assert!(
        matches!(err, Error::NonceSlotTaken { existing_hash, .. } if existing_hash == [0x31; 32])
    );
    assert!(err.is_nonce_conflict());
    assert!(!f.store.nonce_used(&[0x32; 32]).unwrap());
}

#[test]
fn the_unique_indexes_hold_even_for_raw_inserts() {
    let mut f = approved();
    f.store
        .apply(&nonce(session(1), 0, 0, 0x41), 2_000)
        .unwrap();
    let raw = f.raw();
    let dup_hash = raw.execute(
        "INSERT INTO nonces (nonce_hash, session_id, attempt, input, released_ms)
         VALUES (?1, ?2, 0, 1, 0)",
        rusqlite::params![[0x41u8; 32], session(1)],
    );
    assert!(dup_hash.is_err(), "UNIQUE on nonce_hash");
    let dup_slot = raw.execute(
        "INSERT INTO nonces (nonce_hash, session_id, attempt, input, released_ms)
         VALUES (?1, ?2, 0, 0, 0)",
        rusqlite::params![[0x42u8; 32], session(1)],
    );
    assert!(dup_slot.is_err(), "UNIQUE on (session, attempt, input)");
}

#[test]
fn attempt_states_move_forward_only() {
    let mut f = approved();
    let s = session(1);
    f.store.apply(&nonce(s, 0, 0, 0x51), 2_000).unwrap();
    assert_eq!(
        f.store.attempt_state(&s, 0).unwrap(),
        Some(AttemptState::Released)
    );
    f.store.apply(&signing(s, 0), 2_001).unwrap();
    assert_eq!(
        f.store.attempt_state(&s, 0).unwrap(),
        Some(AttemptState::Signing)
    );
    // Signing twice, releasing into a signing attempt, are refused.
    let twice = f.store.apply(&signing(s, 0), 2_002).unwrap_err();
    assert!(matches!(
        twice,
        Error::InvalidTransition {
            from: Some(AttemptState::Signing),
            to: AttemptState::Signing,
            ..
        }
    ));
    let late_nonce = f.store.apply(&nonce(s, 0, 1, 0x52), 2_002).unwrap_err();
    assert!(matches!(
        late_nonce,
        Error::InvalidTransition {
            from: Some(AttemptState::Signing),
            to: AttemptState::Released,
            ..
        }
    ));
    f.store.apply(&closed(s, 0, true), 2_003).unwrap();
    assert_eq!(
        f.store.attempt_state(&s, 0).unwrap(),
        Some(AttemptState::Signed)
    );
    // Nothing leaves signed.
    for after in [signing(s, 0), closed(s, 0, false), closed(s, 0, true)] {
        let err = f.store.apply(&after, 2_004).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidTransition {
                    from: Some(AttemptState::Signed),
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn no_signing_without_released_nonces_or_after_an_abort() {
    let mut f = approved();
    let s = session(1);
    let never = f.store.apply(&signing(s, 0), 2_000).unwrap_err();
    assert!(matches!(never, Error::InvalidTransition { from: None, .. }));
    f.store.apply(&nonce(s, 0, 0, 0x61), 2_001).unwrap();
    f.store.apply(&closed(s, 0, false), 2_002).unwrap();
    let aborted = f.store.apply(&signing(s, 0), 2_003).unwrap_err();
    assert!(matches!(
        aborted,
        Error::InvalidTransition {
            from: Some(AttemptState::Aborted),
            to: AttemptState::Signing,
            ..
        }
    ));
    let reopen = f.store.apply(&nonce(s, 0, 1, 0x62), 2_004).unwrap_err();
    assert!(matches!(reopen, Error::InvalidTransition { .. }));
}

#[test]
fn released_can_close_signed_and_unreleased_can_close_aborted() {
    let mut f = approved();
    let s = session(1);
    // Finished with everyone's signatures (a Completed message) before our own round 2.
    f.store.apply(&nonce(s, 0, 0, 0x71), 2_000).unwrap();
    f.store.apply(&closed(s, 0, true), 2_001).unwrap();
    assert_eq!(
        f.store.attempt_state(&s, 0).unwrap(),
        Some(AttemptState::Signed)
    );
    // An attempt that failed before any nonce left (e.g. the first nonce conflicted).
    f.store.apply(&closed(s, 1, false), 2_002).unwrap();
    assert_eq!(
        f.store.attempt_state(&s, 1).unwrap(),
        Some(AttemptState::Aborted)
    );
    let signed_from_nothing = f.store.apply(&closed(s, 2, true), 2_003).unwrap_err();
    assert!(matches!(
        signed_from_nothing,
        Error::InvalidTransition { from: None, .. }
    ));
}

#[test]
fn attempts_never_go_back() {
    let mut f = approved();
    let s = session(1);
    f.store.apply(&nonce(s, 3, 0, 0x81), 2_000).unwrap();
    let back = f.store.apply(&nonce(s, 2, 0, 0x82), 2_001).unwrap_err();
    assert!(matches!(
        back,
        Error::StaleAttempt {
            attempt: 2,
            latest: 3,
            ..
        }
    ));
    f.store.apply(&nonce(s, 4, 0, 0x83), 2_002).unwrap();
}

#[test]
fn signing_needs_a_durable_approval() {
    let mut f = Fixture::new();
    let k = keys(2);
    let g = group(&k);
    let s = session(5);
    f.store.apply(&nonce(s, 0, 0, 0x91), 1_000).unwrap();
    assert!(matches!(
        f.store.apply(&signing(s, 0), 1_001),
        Err(Error::UnknownSession(_))
    ));
    propose(&mut f.store, &k, &g, s, 1, 0, 1_002);
    assert!(matches!(
        f.store.apply(&signing(s, 0), 1_003),
        Err(Error::NotApproved(_))
    ));
    // Approval is by digest, and only the digest of the proposal the store holds counts.
    assert!(matches!(
        f.store.record_approval(s, [0xAC; 32], 1_003),
        Err(Error::ApprovalMismatch(_))
    ));
    f.store.record_approval(s, digest(s), 1_004).unwrap();
    f.store.record_approval(s, digest(s), 1_005).unwrap();
    f.store.apply(&signing(s, 0), 1_007).unwrap();
}

/// Defect (protocol v1): the store let partials out when any approval existed. The signing
/// mark now names the digest it signs for, and the store refuses it unless the user approved
/// exactly that digest and it is the digest of the proposal held for the session.
#[test]
fn signing_mark_for_a_digest_the_user_did_not_approve_is_refused() {
    let mut f = approved();
    let s = session(1);
    f.store.apply(&nonce(s, 0, 0, 0xC1), 2_000).unwrap();
    let other = Durable::AttemptSigning {
        session_id: s,
        attempt: 0,
        digest: [0xEE; 32],
    };
    assert!(matches!(
        f.store.apply(&other, 2_001),
        Err(Error::ApprovalMismatch(_))
    ));
    assert_eq!(
        f.store.attempt_state(&s, 0).unwrap(),
        Some(AttemptState::Released),
        "nothing moved to signing"
    );
    f.store.apply(&signing(s, 0), 2_002).unwrap();
}

/// Defect (protocol v1): the session row kept the first proposal envelope *seen* for a session
/// id (even one the node refused), so a restart could restore a proposal nobody approved. Only
/// an accepted proposal opens the row, and a second, different one is refused.
#[test]
fn a_second_proposal_for_a_session_never_replaces_the_accepted_one() {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    let s = session(8);
    propose(&mut f.store, &k, &g, s, 1, 0, 1_000);
    let held = f.store.session(&s).unwrap().unwrap().proposal_envelope;
    // A refused proposal is at most a logged message: it never opens or replaces the row.
    let other = envelope(&k, &g, MessageKind::Proposal, s, 0, 2, 1_001);
    f.store
        .apply(&message(other.clone(), s, false), 1_001)
        .unwrap();
    assert_eq!(
        f.store.session(&s).unwrap().unwrap().proposal_envelope,
        held
    );
    let accept_other = Durable::SessionAccepted {
        session_id: s,
        envelope: other,
        outgoing: false,
    };
    assert!(matches!(
        f.store.apply(&accept_other, 1_002),
        Err(Error::ProposalConflict(_))
    ));
    assert_eq!(
        f.store.session(&s).unwrap().unwrap().proposal_envelope,
        held
    );
    // A message log entry alone never makes a session.
    let lone = session(9);
    let stray = envelope(&k, &g, MessageKind::Proposal, lone, 0, 1, 1_003);
    f.store.apply(&message(stray, lone, false), 1_003).unwrap();
    assert!(f.store.session(&lone).unwrap().is_none());
}

#[test]
fn last_active_attempt_counts_nonces_and_anything_sent() {
    let mut f = approved();
    let k = keys(3);
    let g = group(&k);
    let s = session(1);
    assert_eq!(f.store.last_active_attempt(&s).unwrap(), None);
    f.store.apply(&nonce(s, 0, 0, 0xB1), 2_000).unwrap();
    assert_eq!(f.store.last_active_attempt(&s).unwrap(), Some(0));
    // Received messages of a later attempt do not count …
    let theirs = envelope(&k, &g, MessageKind::Nonces, s, 2, 1, 2_001);
    f.store.apply(&message(theirs, s, false), 2_001).unwrap();
    assert_eq!(f.store.last_active_attempt(&s).unwrap(), Some(0));
    // … anything this node sent does, nonces or not (a round-0 commitment here).
    let ours = envelope(&k, &g, MessageKind::Commitment, s, 3, 0, 2_002);
    f.store.apply(&message(ours, s, true), 2_002).unwrap();
    assert_eq!(f.store.last_active_attempt(&s).unwrap(), Some(3));
    f.store.apply(&nonce(s, 4, 0, 0xB2), 2_003).unwrap();
    assert_eq!(f.store.last_active_attempt(&s).unwrap(), Some(4));
    // Per session.
    assert_eq!(f.store.last_active_attempt(&session(2)).unwrap(), None);
}

#[test]
fn a_restart_aborts_unfinished_attempts_and_restores_sessions() {
    let mut f = approved();
    let k = keys(3);
    let g = group(&k);
    let (s1, s2, s3, s4) = (session(1), session(2), session(3), session(4));
    for s in [s2, s3, s4] {
        propose(&mut f.store, &k, &g, s, 0, 0, 1_100);
    }
    // s1: approved, signing in attempt 1 when the process died.
    f.store.apply(&nonce(s1, 0, 0, 0xC1), 2_000).unwrap();
    f.store.apply(&closed(s1, 0, false), 2_001).unwrap();
    f.store.apply(&nonce(s1, 1, 0, 0xC2), 2_002).unwrap();
    f.store.apply(&signing(s1, 1), 2_003).unwrap();
    // s2: signed and its transaction stored.
    f.store.record_approval(s2, digest(s2), 2_004).unwrap();
    f.store.apply(&nonce(s2, 0, 0, 0xC3), 2_005).unwrap();
    f.store.apply(&signing(s2, 0), 2_006).unwrap();
    f.store.apply(&closed(s2, 0, true), 2_007).unwrap();
    f.store
        .apply(
            &Durable::Signed {
                session_id: s2,
                tx: vec![1, 2, 3],
            },
            2_008,
        )
        .unwrap();
    // s3: signed but the transaction never became durable: not restored (as the simulator).
    f.store.record_approval(s3, digest(s3), 2_009).unwrap();
    f.store.apply(&nonce(s3, 0, 0, 0xC4), 2_010).unwrap();
    f.store.apply(&closed(s3, 0, true), 2_011).unwrap();
    // s4: released nonces in attempt 0, nothing else.
    f.store.apply(&nonce(s4, 0, 0, 0xC5), 2_012).unwrap();

    let path = f.path();
    drop(f.store);
    let mut store = store::Store::open(&path).unwrap();
    let abandoned = store.abort_unfinished_attempts(10_000).unwrap();
    let mut found: Vec<_> = abandoned
        .iter()
        .map(|a| (a.session_id, a.attempt, a.state))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (s1, 1, AttemptState::Signing),
            (s4, 0, AttemptState::Released)
        ]
    );
    assert_eq!(
        store.attempt_state(&s1, 1).unwrap(),
        Some(AttemptState::Aborted)
    );
    // The abandoned attempt can never sign now.
    assert!(store.apply(&signing(s1, 1), 10_001).is_err());
    let restore = store.sessions_to_restore().unwrap();
    let by_id = |s: [u8; 32]| restore.iter().find(|r| r.session_id == s);
    let r1 = by_id(s1).expect("s1 restored");
    assert_eq!(r1.last_active_attempt, Some(1));
    assert_eq!(r1.approval.map(|a| a.digest), Some(digest(s1)));
    assert!(r1.signed_before, "s1 reached signing before the restart");
    assert!(r1.signed_tx.is_none());
    let r2 = by_id(s2).expect("s2 restored");
    assert_eq!(r2.signed_tx.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(by_id(s3).is_none());
    let r4 = by_id(s4).expect("s4 restored");
    assert_eq!(r4.last_active_attempt, Some(0));
    assert!(r4.approval.is_none());
    assert_eq!(r4.group_id, g.id().0);
    // Audited, and a second start finds nothing left to abort.
    let audit = store.audit_entries(0, 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| matches!(e.event, store::AuditEvent::AttemptAbandonedAtStart { .. }))
            .count(),
        2
    );
    assert!(store.abort_unfinished_attempts(11_000).unwrap().is_empty());
    store.verify_audit().unwrap();
}

#[test]
fn a_batch_is_all_or_nothing() {
    let mut f = approved();
    let s = session(1);
    let result = f.store.batch(|b| {
        b.apply(&nonce(s, 0, 0, 0xE1), 2_000)?;
        b.apply(&nonce(s, 0, 1, 0xE2), 2_000)?;
        b.apply(&nonce(s, 0, 2, 0xE1), 2_000) // reuse: the whole batch rolls back
    });
    assert!(matches!(result, Err(Error::NonceReuse { .. })));
    assert!(!f.store.nonce_used(&[0xE1; 32]).unwrap());
    assert!(!f.store.nonce_used(&[0xE2; 32]).unwrap());
    assert_eq!(f.store.attempt_state(&s, 0).unwrap(), None);
}

/// Review 3: a rejection is durable before the Reject leaves; after it the store never lets
/// the session sign and a restart never resumes it (it used to restore it with the approval).
#[test]
fn a_rejected_session_never_signs_and_is_not_restored() {
    let mut f = approved();
    let s = session(1);
    f.store.apply(&nonce(s, 0, 0, 0xE1), 2_000).unwrap();
    f.store
        .apply(
            &Durable::Rejected {
                session_id: s,
                member: 0,
                reason: "changed my mind".into(),
            },
            2_001,
        )
        .unwrap();
    assert!(matches!(
        f.store.apply(&signing(s, 0), 2_002),
        Err(Error::SessionEnded(_))
    ));
    assert!(f
        .store
        .sessions_to_restore()
        .unwrap()
        .iter()
        .all(|r| r.session_id != s));
}
