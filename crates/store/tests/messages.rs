//! The message log and sessions: exact bytes, idempotent on the envelope hash, indexed header
//! fields, evidence queries in member order, the session row from the proposal, pruning.

mod common;

use common::*;
use lotus::hash::sha256;
use protocol::envelope::MessageKind;
use protocol::session::{AbortReason, Durable, Event, Outcome};
use store::{Direction, Error};

#[test]
fn messages_are_stored_exactly_once_with_their_header_fields() {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    let s = session(1);
    let bytes = envelope(&k, &g, MessageKind::Nonces, s, 2, 1, 5_000);
    f.store
        .apply(&message(bytes.clone(), s, false), 6_000)
        .unwrap();
    // The same bytes again (a resend, or after a restart) change nothing.
    f.store
        .apply(&message(bytes.clone(), s, false), 7_000)
        .unwrap();
    assert_eq!(f.store.message_count().unwrap(), 1);
    let stored = f.store.message(&sha256(&bytes)).unwrap().unwrap();
    assert_eq!(stored.bytes, bytes);
    assert_eq!(stored.session_id, s);
    assert_eq!(stored.group_id, g.id().0);
    assert_eq!(
        (stored.attempt, stored.sender, stored.kind),
        (2, 1, MessageKind::Nonces)
    );
    assert_eq!(stored.direction, Direction::Incoming);
    assert_eq!((stored.sent_ms, stored.received_ms), (5_000, 6_000));
    stored.envelope().unwrap().verify_signature(&g).unwrap();
}

#[test]
fn bad_messages_are_refused() {
    let mut f = Fixture::new();
    let k = keys(2);
    let g = group(&k);
    let bytes = envelope(&k, &g, MessageKind::Nonces, session(1), 0, 1, 5_000);
    assert!(matches!(
        f.store.apply(&message(bytes, session(2), false), 6_000),
        Err(Error::MessageSessionMismatch { .. })
    ));
    assert!(matches!(
        f.store
            .apply(&message(vec![1, 2, 3], session(1), false), 6_000),
        Err(Error::Envelope(_))
    ));
    assert_eq!(f.store.message_count().unwrap(), 0);
}

#[test]
fn evidence_queries_return_member_order_with_equivocations_in_arrival_order() {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    let s = session(1);
    let arrivals = [(2u16, 100u64), (0, 110), (1, 120), (2, 130)];
    for (sender, at) in arrivals {
        let bytes = envelope(&k, &g, MessageKind::Nonces, s, 1, sender, at);
        f.store.apply(&message(bytes, s, sender == 0), at).unwrap();
    }
    let other_kind = envelope(&k, &g, MessageKind::Partials, s, 1, 1, 140);
    f.store.apply(&message(other_kind, s, false), 140).unwrap();
    let other_attempt = envelope(&k, &g, MessageKind::Nonces, s, 2, 1, 150);
    f.store
        .apply(&message(other_attempt, s, false), 150)
        .unwrap();
    let nonces = f
        .store
        .attempt_messages(&s, 1, MessageKind::Nonces)
        .unwrap();
    let order: Vec<(u16, u64)> = nonces.iter().map(|m| (m.sender, m.received_ms)).collect();
    assert_eq!(order, vec![(0, 110), (1, 120), (2, 100), (2, 130)]);
    let all: Vec<u64> = f
        .store
        .session_messages(&s)
        .unwrap()
        .iter()
        .map(|m| m.received_ms)
        .collect();
    assert_eq!(all, vec![100, 110, 120, 130, 140, 150]);
}

#[test]
fn the_accepted_proposal_opens_the_session_and_a_different_one_is_refused() {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    let s = session(4);
    propose(&mut f.store, &k, &g, s, 2, 0, 1_000);
    let first = f.store.session(&s).unwrap().unwrap();
    assert_eq!(first.proposer, 2);
    assert!(!first.proposed_by_me);
    assert_eq!(first.group_id, g.id().0);
    assert_eq!(first.proposal_hash, sha256(&first.proposal_envelope));
    assert_eq!(first.created_ms, 1_000);
    // A second, different proposal envelope for the same session id is refused as a whole
    // (the step is one transaction: not even its message row stays).
    let second = envelope(&k, &g, MessageKind::Proposal, s, 0, 2, 2_000);
    let accept_second = Durable::SessionAccepted {
        session_id: s,
        envelope: second,
        outgoing: false,
    };
    assert!(matches!(
        f.store.apply(&accept_second, 2_000),
        Err(store::Error::ProposalConflict(_))
    ));
    let again = f.store.session(&s).unwrap().unwrap();
    assert_eq!(again.proposal_envelope, first.proposal_envelope);
    assert_eq!(
        f.store
            .attempt_messages(&s, 0, MessageKind::Proposal)
            .unwrap()
            .len(),
        1
    );
    // Our own proposal.
    propose(&mut f.store, &k, &g, session(5), 0, 0, 3_000);
    assert!(
        f.store
            .session(&session(5))
            .unwrap()
            .unwrap()
            .proposed_by_me
    );
    assert_eq!(f.store.sessions(Some(&g.id().0)).unwrap().len(), 2);
    assert_eq!(f.store.sessions(Some(&[0; 32])).unwrap().len(), 0);
    // The signed transaction is stored once; a different one is a conflict.
    let signed = |tx: Vec<u8>| Durable::Signed { session_id: s, tx };
    f.store.apply(&signed(vec![1, 2]), 4_000).unwrap();
    f.store.apply(&signed(vec![1, 2]), 4_001).unwrap();
    assert!(matches!(
        f.store.apply(&signed(vec![3]), 4_002),
        Err(Error::SignedTxConflict(_))
    ));
    assert!(matches!(
        f.store.apply(
            &Durable::Signed {
                session_id: session(9),
                tx: vec![1]
            },
            4_003
        ),
        Err(Error::UnknownSession(_))
    ));
}

#[test]
fn pruning_drops_messages_of_long_closed_sessions_only() {
    let mut f = Fixture::new();
    let k = keys(2);
    let g = group(&k);
    let (closed, open, orphan) = (session(1), session(2), session(3));
    propose(&mut f.store, &k, &g, closed, 1, 0, 1_000);
    propose(&mut f.store, &k, &g, open, 1, 0, 1_000);
    for s in [closed, open, orphan] {
        let bytes = envelope(&k, &g, MessageKind::Nonces, s, 0, 1, 1_100);
        f.store.apply(&message(bytes, s, false), 1_100).unwrap();
    }
    f.store.apply(&nonce(closed, 0, 0, 0x77), 1_200).unwrap();
    f.store
        .record_event(
            &g,
            closed,
            &Event::Closed {
                outcome: Outcome::Aborted(AbortReason::Expired),
            },
            2_000,
        )
        .unwrap();
    assert_eq!(f.store.message_count().unwrap(), 5);
    assert_eq!(
        f.store.prune_messages(1_500).unwrap(),
        1,
        "only the orphan is old enough"
    );
    assert_eq!(f.store.prune_messages(10_000).unwrap(), 2);
    assert!(f.store.session_messages(&closed).unwrap().is_empty());
    assert_eq!(f.store.session_messages(&open).unwrap().len(), 2);
    // The session row, its nonce rows and the audit stay.
    assert!(f.store.session(&closed).unwrap().is_some());
    assert!(f.store.nonce_used(&[0x77; 32]).unwrap());
    f.store.verify_audit().unwrap();
}
