//! One regression test per attack found against protocol v1, each named for the attack. Every
//! one of them failed on v1 (the defect it names is in its doc comment).

mod common;

use common::*;
use protocol::envelope::{Envelope, Header, MessageKind};
use protocol::evidence::{Evidence, Offence};
use protocol::gate::Rejection;
use protocol::messages::{AbortCode, Nonces, Partials};
use protocol::node::{Node, NodeConfig, NodeError, Peer, Restore};
use protocol::session::{AbortReason, Action, Durable, Event, Outcome, Recipient, SessionError};

fn session_accepted(net: &Net, i: usize) -> Vec<Vec<u8>> {
    net.durables(i)
        .into_iter()
        .filter_map(|d| match d {
            Durable::SessionAccepted { envelope, .. } => Some(envelope.clone()),
            _ => None,
        })
        .collect()
}

/// Defect 1 (critical): every admitted envelope was persisted before routing, so a proposal the
/// node refused (here: created two minutes in the future) became the stored session, and after
/// a restart the node approved it with the digest of the harmless proposal the user saw.
#[test]
fn a_refused_proposal_from_the_future_never_becomes_the_session_after_a_restart() {
    let mut net = Net::new(3, 1);
    let session = [0x51; 32];
    // Member 2 (the attacker) sends P_M for S, created 120 s ahead: refused, and nothing kept.
    let (p_m, _) = proposal_envelope(
        &net.group,
        &net.keys,
        2,
        session,
        b"evil",
        2,
        NOW + 120_000,
        0,
    );
    // The envelope itself is fresh; only the proposal inside claims the future.
    let p_m = Envelope::sign(
        Header {
            timestamp_ms: NOW,
            ..p_m.header
        },
        p_m.payload,
        &net.keys[2],
    );
    net.deliver(2, 1, &p_m.encode()).unwrap();
    assert!(net.nodes[1].session(&session).is_none());
    assert!(
        net.durables(1).is_empty(),
        "a refused proposal persists nothing"
    );
    // Then the harmless P for S, which the user approves.
    let (p, proposal) = proposal_envelope(&net.group, &net.keys, 0, session, b"fine", 2, NOW, 0);
    net.deliver(0, 1, &p.encode()).unwrap();
    assert_eq!(session_accepted(&net, 1), vec![p.encode()]);
    net.approve(1, &session);

    // Restart: only the accepted envelope is in the store; the approval applies to it...
    let restored = |approved: [u8; 32]| {
        let mut node = Node::new(net.keys[1].public_key(), NodeConfig::default());
        node.add_group(net.group.clone()).unwrap();
        let mut out = Vec::new();
        let bytes = p.encode();
        let restore = Restore {
            proposal_envelope: &bytes,
            last_active_attempt: Some(0),
            approved_digest: Some(approved),
            signed_before: false,
            signed_tx: None,
        };
        node.restore_session(
            restore,
            NOW + 1_000,
            &net.keys[1],
            &mut Counter(9),
            &mut out,
        )
        .unwrap();
        (node, out)
    };
    let (node, _) = restored(proposal.review_digest());
    assert!(node.session(&session).unwrap().is_approved());
    // ...and an approval of any other digest (P_M's) never counts for it.
    let (_, p_m_proposal) = proposal_envelope(
        &net.group,
        &net.keys,
        2,
        session,
        b"evil",
        2,
        NOW + 120_000,
        0,
    );
    let (node, out) = restored(p_m_proposal.review_digest());
    assert!(!node.session(&session).unwrap().is_approved());
    assert!(out
        .iter()
        .any(|o| matches!(&o.action, Action::Event(Event::ReviewReady { .. }))));
}

/// Defect 1, the node's side: the signing mark names the digest it signs for, so the store can
/// refuse it unless the user approved exactly that digest.
#[test]
fn the_signing_mark_names_the_approved_digest() {
    let mut net = Net::new(3, 2);
    let session = net.propose(0, b"mark");
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
    }
    net.settle();
    let digest = net.nodes[1].session(&session).unwrap().digest();
    let marks: Vec<[u8; 32]> = net
        .durables(1)
        .into_iter()
        .filter_map(|d| match d {
            Durable::AttemptSigning { digest, .. } => Some(*digest),
            _ => None,
        })
        .collect();
    assert_eq!(marks, vec![digest]);
}

/// Defect 2: routing by session id alone let a member of group B = [V, M] speak as H in group
/// A = [V, H, M] (same index), e.g. to squat H's nonce slot.
#[test]
fn a_member_of_another_group_cannot_speak_as_the_same_index_member() {
    let keys = keys(3, 3); // V, H, M
    let group_a = group_of("A", &keys);
    let copy = |k: &lotus::PrivateKey| lotus::PrivateKey::from_bytes(&k.to_bytes()).unwrap();
    let group_b = group_of("B", &[copy(&keys[0]), copy(&keys[2])]);
    let mut v = Node::new(keys[0].public_key(), NodeConfig::default());
    v.add_group(group_a.clone()).unwrap();
    v.add_group(group_b.clone()).unwrap();
    let mut entropy = Counter(1);
    let session = [0x52; 32];
    // M's message for A's session id, under group B where M is index 1 (H's index in A),
    // arriving before the proposal: buffered under (B, S), never delivered to A's session.
    let nonces = Nonces {
        salt_share: [1; 32],
        nonces: Vec::new(),
        audit_head: None,
    };
    let (p, proposal) = proposal_envelope(&group_a, &keys, 0, session, b"A", 2, NOW, 0);
    let forged = |at: u64| {
        let header = Header::new(
            MessageKind::Nonces,
            group_b.id(),
            session,
            proposal.review_digest(),
            0,
            1,
            at,
        );
        signed(&keys[2], header, nonces.encode())
    };
    let mut out = Vec::new();
    v.receive(&forged(NOW), Peer(2), NOW, &keys[0], &mut entropy, &mut out)
        .unwrap();
    v.receive(&p.encode(), Peer(0), NOW, &keys[0], &mut entropy, &mut out)
        .unwrap();
    let s = v.session(&session).unwrap();
    assert!(s.waiting_for().contains(&1), "H's slot is still empty");
    // Once the session exists, the same trick is refused at the gate.
    assert_eq!(
        v.receive(
            &forged(NOW + 1),
            Peer(2),
            NOW + 1,
            &keys[0],
            &mut entropy,
            &mut out
        ),
        Err(Rejection::CrossGroup)
    );
    assert!(v.session(&session).unwrap().waiting_for().contains(&1));
}

/// Defect 3: evidence checked only that a member-signed proposal had the session id, and round
/// messages did not bind the proposal, so M could pair V's genuine Nonces or Partials with a
/// proposal P' of its own (one more input) and the evidence named V.
#[test]
fn evidence_pairing_a_genuine_message_with_another_proposal_names_nobody() {
    let mut net = Net::new(3, 4);
    let session = net.propose(0, b"genuine");
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
    }
    net.settle();
    let v_nonces = net.sent(MessageKind::Nonces, 1);
    let v_partials = net.sent(MessageKind::Partials, 1);
    let all_nonces: Vec<Vec<u8>> = (0..3).map(|m| net.sent(MessageKind::Nonces, m)).collect();
    // M (member 2) signs P' for the same session id with one more input.
    let (_, p_prime) = proposal_envelope(&net.group, &net.keys, 2, session, b"other", 3, NOW, 0);
    let malformed = Evidence {
        offence: Offence::MalformedContribution,
        proposal: p_prime.encode(),
        envelopes: vec![v_nonces],
    };
    assert!(malformed.verify(&net.group).is_err());
    let invalid = Evidence {
        offence: Offence::InvalidPartial,
        proposal: p_prime.encode(),
        envelopes: [vec![v_partials], all_nonces].concat(),
    };
    assert!(invalid.verify(&net.group).is_err());
    assert!(net.nodes[1]
        .session(&session)
        .unwrap()
        .signed_tx()
        .is_some());
}

/// Defect 4 (proposer): P₁ to V and P₂ to W made V and W blame each other with evidence that
/// verified; the proposer was never blamed. Now the two proposals are the evidence.
#[test]
fn a_proposer_sending_two_proposals_is_the_one_blamed() {
    let mut net = Net::new(3, 5);
    let session = [0x53; 32];
    let (p1, _) = proposal_envelope(&net.group, &net.keys, 0, session, b"one", 2, NOW, 0);
    let (p2, _) = proposal_envelope(&net.group, &net.keys, 0, session, b"two", 2, NOW, 0);
    net.deliver(0, 1, &p1.encode()).unwrap();
    net.deliver(0, 2, &p2.encode()).unwrap();
    net.approve(1, &session);
    net.approve(2, &session);
    net.settle();
    for i in [1, 2] {
        assert_eq!(net.blames(i), vec![(0, Offence::Equivocation)], "node {i}");
        let s = net.nodes[i].session(&session).unwrap();
        assert_eq!(
            s.outcome(),
            Some(&Outcome::Aborted(AbortReason::ConflictingProposals {
                proposer: 0
            }))
        );
        assert!(!s.ever_signed(), "node {i} never signs either proposal");
    }
}

/// Defect 4 (nonces): a member sending different nonces to different members made the honest
/// ones blame each other for "invalid" partials. Partials now commit to the nonce messages they
/// used; a mismatch is resolved by forwarding, and the member who signed both is blamed.
#[test]
fn a_member_sending_different_nonces_to_each_cosigner_is_the_one_blamed() {
    let mut net = Net::new(3, 6);
    net.intercepted = vec![2];
    let session = net.propose(0, b"nonces");
    net.settle();
    // Member 2's round-1 message: the genuine one to node 0, a re-signed variant to node 1.
    let held = std::mem::take(&mut net.held);
    for (from, to, bytes) in held {
        let e = Envelope::decode(&bytes, usize::MAX).unwrap();
        if e.header.kind == MessageKind::Nonces {
            let mut other = Nonces::decode(&e.payload).unwrap();
            other.salt_share[0] ^= 1;
            net.wire.push_back((from, 0, bytes.clone()));
            net.wire
                .push_back((from, 1, signed(&net.keys[2], e.header, other.encode())));
        } else {
            net.post(from, to, bytes);
        }
    }
    net.intercepted.clear();
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
    }
    net.settle();
    for i in [0, 1] {
        let blamed: Vec<u16> = net.blames(i).iter().map(|(c, _)| *c).collect();
        assert!(!blamed.is_empty(), "node {i} caught the equivocator");
        assert!(
            blamed.iter().all(|&c| c == 2),
            "node {i} blamed only member 2: {blamed:?}"
        );
    }
}

/// Defect 6: the dedup set and the verification budget were charged to the *claimed* sender
/// before the signature check, so junk claiming to be H exhausted H's budget and H's genuine
/// message was then dropped. Now junk costs the delivering peer's budget only.
#[test]
fn junk_claiming_to_be_a_member_does_not_silence_it() {
    let mut net = Net::new(3, 7);
    let session = net.propose(0, b"junk");
    // Deliver the proposal everywhere, but hold member 1's nonces back for now.
    net.intercepted = vec![1];
    net.settle();
    // Its commitment goes through; its nonces wait.
    let held = std::mem::take(&mut net.held);
    let genuine: Vec<u8> = held
        .iter()
        .find_map(|(_, _, b)| {
            let e = Envelope::decode(b, usize::MAX).unwrap();
            (e.header.kind == MessageKind::Nonces).then(|| b.clone())
        })
        .expect("member 1 released nonces");
    for (from, to, bytes) in held {
        if bytes != genuine {
            net.post(from, to, bytes);
        }
    }
    net.intercepted.clear();
    net.settle();
    let envelope = Envelope::decode(&genuine, usize::MAX).unwrap();
    let outsider = lotus::PrivateKey::from_bytes(&[0x99; 32]).unwrap();
    let mut refused_signature = 0;
    for k in 0..700u32 {
        let mut header = envelope.header;
        header.timestamp_ms += u64::from(k) + 1;
        let junk = signed(&outsider, header, envelope.payload.clone());
        match net.nodes[0].receive(
            &junk,
            Peer(99),
            net.now,
            &net.keys[0],
            &mut Counter(5),
            &mut Vec::new(),
        ) {
            Err(Rejection::Signature(_)) => refused_signature += 1,
            Err(Rejection::RateLimited(_)) => {}
            other => panic!("junk accepted: {other:?}"),
        }
    }
    assert!(
        refused_signature > 0 && refused_signature < 700,
        "the outsider's own budget ran out"
    );
    net.deliver(1, 0, &genuine)
        .expect("member 1's genuine message is accepted");
    assert_eq!(net.deliver(1, 0, &genuine), Err(Rejection::Duplicate));
    assert_eq!(
        net.nodes[0].session(&session).unwrap().phase(),
        protocol::session::Phase::Signatures,
        "every member's nonces are in"
    );
}

/// Defect 7: the early-message buffer had no byte or time bound (and was written to SQLite).
#[test]
fn an_early_message_flood_is_bounded_by_bytes_and_time() {
    let mut net = Net::new(3, 8);
    let mut accepted = 0usize;
    let mut full = 0;
    for k in 0..400u32 {
        let mut session = [0u8; 32];
        session[..4].copy_from_slice(&k.to_be_bytes());
        let header = Header::new(
            MessageKind::Nonces,
            net.group.id(),
            session,
            [1; 32],
            0,
            2,
            NOW,
        );
        let bytes = signed(&net.keys[2], header, vec![0; 2_000]);
        match net.deliver(2, 0, &bytes) {
            Ok(()) => accepted += 1,
            Err(Rejection::EarlyBufferFull(_)) => full += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let buffered = net.nodes[0].early_buffer().bytes();
    assert!(
        full > 0 && buffered <= 256 << 10,
        "{accepted} held, {buffered} bytes"
    );
    // Another member still gets its early message in.
    let header = Header::new(
        MessageKind::Nonces,
        net.group.id(),
        [0xEE; 32],
        [1; 32],
        0,
        1,
        NOW,
    );
    net.deliver(1, 0, &signed(&net.keys[1], header, vec![0; 100]))
        .expect("another sender's share is its own");
    // And everything expires.
    net.tick_all(11 * 60_000);
    assert_eq!(net.nodes[0].early_buffer().bytes(), 0);
}

/// Defect 8: the proposer chose the group sequence freely (steering round-robin) and could
/// overflow it. A proposer's sequence is used once, within a bounded step of its highest.
#[test]
fn a_far_reused_or_overflowing_sequence_is_refused() {
    let mut net = Net::new(3, 9);
    let first = net.propose(0, b"seq");
    net.settle();
    assert!(net.nodes[1].session(&first).is_some());
    let refused = |net: &mut Net, sequence: u64, tag: &[u8]| {
        net.now += 15_000; // stay under the proposal rate limit
        let session = lotus::hash::sha256(tag);
        let (p, _) =
            proposal_envelope(&net.group, &net.keys, 0, session, tag, 2, net.now, sequence);
        net.deliver(0, 1, &p.encode()).unwrap();
        net.nodes[1].session(&session).is_none()
    };
    assert!(refused(&mut net, 0, b"reused"), "reused");
    assert!(refused(&mut net, 50, b"far"), "far jump");
    assert!(refused(&mut net, u64::MAX, b"max"), "overflow");
    assert!(
        !refused(&mut net, 2, b"next"),
        "a small skip is fine (a missed proposal)"
    );
    assert!(
        !refused(&mut net, 1, b"late"),
        "a late one arrives out of order, once"
    );
    assert!(refused(&mut net, 1, b"late again"), "but never twice");
    let used: std::collections::BTreeSet<u64> = [u64::MAX - 1].into();
    assert!(
        protocol::node::check_sequence(u64::MAX, &used).is_ok(),
        "no overflow"
    );
    assert!(matches!(
        protocol::node::check_sequence(5, &Default::default()),
        Err(NodeError::Sequence { .. })
    ));
}

/// Defect 8: the last revealer of the salted election could bump the attempt until it liked
/// the salt. Restarts after the salt was known are counted against the member and capped.
#[test]
fn restarting_after_the_salt_is_known_is_counted_and_capped() {
    let mut net = Net::new(3, 10);
    let session = net.propose(0, b"reroll");
    net.settle();
    let mut rerolls = 0;
    for _ in 0..=protocol::session::MAX_REROLLS_PER_MEMBER {
        let s = net.nodes[0].session(&session).unwrap();
        if s.is_closed() {
            break;
        }
        assert_eq!(
            s.phase(),
            protocol::session::Phase::Signatures,
            "salt known; waiting for {:?}, attempt {}, node 2 at {:?}",
            s.waiting_for(),
            s.attempt(),
            net.nodes[2]
                .session(&session)
                .map(|s| (s.attempt(), s.phase()))
        );
        let header = Header::new(
            MessageKind::AttemptAborted,
            net.group.id(),
            session,
            s.digest(),
            s.attempt(),
            2,
            net.now,
        );
        // Member 2 claims a restart (and, as the attacker would, moves on itself); nobody has
        // approved, so only its notices move things.
        let notice = signed(&net.keys[2], header, AbortCode::Restart.encode());
        net.post(2, Recipient::Members, notice.clone());
        net.wire.push_back((2, 2, notice));
        net.settle();
        rerolls += 1;
    }
    let counted = net
        .events(0)
        .into_iter()
        .filter(|e| matches!(e, Event::ForcedReroll { member: 2, .. }))
        .count();
    assert_eq!(counted, rerolls);
    assert_eq!(
        net.nodes[0].session(&session).unwrap().outcome(),
        Some(&Outcome::Aborted(AbortReason::TooManyRestarts {
            member: 2
        }))
    );
}

/// Defect 8: an honest node that sent a timeout notice and then, after a crash, a restart
/// notice for the same attempt signed two different messages in one slot — evidence of
/// "equivocation" against it. Notices have no exclusive slot.
#[test]
fn two_different_notices_from_one_member_are_not_equivocation() {
    let net = Net::new(3, 11);
    let header = Header::new(
        MessageKind::AttemptAborted,
        net.group.id(),
        [0x54; 32],
        [2; 32],
        3,
        1,
        NOW,
    );
    let a = signed(&net.keys[1], header, AbortCode::Restart.encode());
    let b = signed(
        &net.keys[1],
        Header {
            timestamp_ms: NOW + 5,
            ..header
        },
        vec![9],
    );
    let evidence = Evidence {
        offence: Offence::Equivocation,
        proposal: Vec::new(),
        envelopes: vec![a, b],
    };
    assert!(evidence.verify(&net.group).is_err());
}

/// Defect 8: `reject` after our partials left reported "rejected" although the others could
/// still complete with them.
#[test]
fn rejecting_after_our_partials_left_is_refused() {
    let mut net = Net::new(3, 12);
    let session = net.propose(0, b"late reject");
    net.settle();
    net.approve(1, &session);
    net.settle();
    assert!(net.nodes[1].session(&session).unwrap().ever_signed());
    let mut out = Vec::new();
    assert_eq!(
        net.nodes[1].reject(
            &session,
            "changed my mind",
            net.now,
            &net.keys[1],
            &mut Counter(3),
            &mut out
        ),
        Err(NodeError::Session(SessionError::AlreadySigned))
    );
    assert!(out.is_empty());
}

/// Defect 5: a message was queued for resending when its step was built, so after its guarding
/// persist failed a later tick still sent it. Now the driver reports the failure and the
/// session leaves memory: nothing it guarded is ever sent.
#[test]
fn after_a_failed_persist_nothing_it_guarded_is_ever_sent() {
    let mut net = Net::new(3, 13);
    let session = net.propose(0, b"persist");
    // Node 1 receives the proposal; its first NonceReleased "fails" in the driver.
    let (_, _, proposal) = net.wire.pop_front().unwrap();
    let mut out = Vec::new();
    net.nodes[1]
        .receive(
            &proposal,
            Peer(0),
            net.now,
            &net.keys[1],
            &mut Counter(7),
            &mut out,
        )
        .unwrap();
    // The first durable step after the session row (the log of our round-0/1 message).
    let failed_at = out
        .iter()
        .position(|o| {
            matches!(
                o.action,
                Action::Persist(Durable::NonceReleased { .. } | Durable::Message { .. })
            )
        })
        .expect("our first message is persisted");
    assert!(
        out[..failed_at]
            .iter()
            .all(|o| !matches!(o.action, Action::Send { .. })),
        "nothing leaves before its durable step"
    );
    net.nodes[1].persist_failed(&session);
    assert!(net.nodes[1].is_suspended(&session));
    for k in 1..50 {
        let mut out = Vec::new();
        net.nodes[1].tick(
            net.now + k * 60_000,
            &net.keys[1],
            &mut Counter(8),
            &mut out,
        );
        assert!(
            out.iter().all(|o| !matches!(o.action, Action::Send { .. })),
            "tick {k} sent something of a suspended session"
        );
    }
    // And messages for it are refused until a restart restores it.
    let (_, _, again) = net.wire.pop_front().unwrap_or((0, 1, proposal.clone()));
    let mut out = Vec::new();
    let refused = net.nodes[1].receive(
        &again,
        Peer(0),
        net.now,
        &net.keys[1],
        &mut Counter(8),
        &mut out,
    );
    assert!(matches!(
        refused,
        Err(Rejection::Suspended) | Err(Rejection::Duplicate)
    ));
}

/// Mutation guard: a node that handed the gate an unlimited time window would accept a
/// correctly signed message from far in the future or from before any session could exist.
#[test]
fn a_correctly_signed_message_outside_the_window_is_refused() {
    let mut net = Net::new(3, 14);
    let session = net.propose(0, b"window");
    net.settle();
    let digest = net.nodes[1].session(&session).unwrap().digest();
    for (at, future) in [
        (net.now + 10 * 60_000, true),
        (net.now - 8 * 24 * 3_600_000, false),
    ] {
        let header = Header::new(
            MessageKind::Approved,
            net.group.id(),
            session,
            digest,
            0,
            2,
            at,
        );
        let result = net.deliver(2, 1, &signed(&net.keys[2], header, Vec::new()));
        if future {
            assert!(
                matches!(result, Err(Rejection::FromFuture { .. })),
                "{result:?}"
            );
        } else {
            assert!(
                matches!(result, Err(Rejection::TooOld { .. })),
                "{result:?}"
            );
        }
    }
}

/// Async: whom the session waits for, and for what, is part of its state.
#[test]
fn the_session_says_whom_it_waits_for() {
    use protocol::session::WaitingFor;
    let mut net = Net::new(3, 15);
    let session = net.propose(0, b"waiting");
    net.settle();
    net.approve(0, &session);
    net.settle();
    let waiting = net.nodes[0].waiting(&session).unwrap();
    let of = |m: u16| {
        waiting
            .iter()
            .find(|w| w.member == m)
            .map(|w| w.waiting_for.clone())
    };
    assert_eq!(of(0), None, "we approved and signed");
    assert_eq!(of(1), Some(vec![WaitingFor::Approval]));
    assert!(waiting
        .iter()
        .all(|w| w.member == 0 || w.last_heard_ms.is_some()));
    net.approve(1, &session);
    net.settle();
    let waiting = net.nodes[0].waiting(&session).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].member, 2);
}

/// Async: a member that was offline when the proposal was made gets it (and everything else)
/// by pulling when it comes back, hours later, and the session completes.
#[test]
fn a_member_offline_during_the_proposal_catches_up_by_pulling() {
    let mut net = Net::new(3, 16);
    let session = net.propose(0, b"offline");
    // Member 2 is offline: everything sent to it is lost.
    while let Some((from, to, bytes)) = net.wire.pop_front() {
        if to != 2 {
            let _ = net.deliver(from, to, &bytes);
        }
    }
    net.approve(0, &session);
    net.approve(1, &session);
    while let Some((from, to, bytes)) = net.wire.pop_front() {
        if to != 2 {
            let _ = net.deliver(from, to, &bytes);
        }
    }
    assert!(net.nodes[2].session(&session).is_none());
    // Half an hour later it comes back and pulls.
    net.now += 30 * 60_000;
    let mut out = Vec::new();
    net.nodes[2].reconnected(net.now, &net.keys[2], &mut net.entropy, &mut out);
    net.absorb(2, out);
    net.settle();
    assert!(
        net.nodes[2].session(&session).is_some(),
        "the proposal arrived"
    );
    net.approve(2, &session);
    net.settle();
    for i in 0..3 {
        assert!(
            net.nodes[i]
                .session(&session)
                .unwrap()
                .signed_tx()
                .is_some(),
            "node {i}"
        );
    }
}

// ----- found by the attacker review of protocol v2 ------------------------------------------

/// Review 1 (critical): a blame notice naming attempt u32::MAX (the attacker's own conflicting
/// commitments) overflowed `attempt + 1` — a panic in debug builds, and in release a wrap to
/// attempt 0, where honest members signed a second commitment for a slot they had used.
#[test]
fn a_blame_notice_at_attempt_u32_max_can_neither_rewind_nor_crash() {
    let mut net = Net::new(3, 20);
    let session = net.propose(0, b"overflow");
    net.settle();
    let digest = net.nodes[0].session(&session).unwrap().digest();
    let at = |attempt: u32, payload: Vec<u8>| {
        let header = Header::new(
            MessageKind::Commitment,
            net.group.id(),
            session,
            digest,
            attempt,
            2,
            NOW,
        );
        signed(&net.keys[2], header, payload)
    };
    let evidence = Evidence {
        offence: Offence::Equivocation,
        proposal: Vec::new(),
        envelopes: vec![at(u32::MAX, vec![1; 32]), at(u32::MAX, vec![2; 32])],
    };
    assert!(
        evidence.verify(&net.group).is_err(),
        "no attempt beyond the limit"
    );
    let header = Header::new(
        MessageKind::AttemptAborted,
        net.group.id(),
        session,
        digest,
        u32::MAX,
        2,
        net.now,
    );
    let notice = signed(
        &net.keys[2],
        header,
        AbortCode::Blamed(vec![evidence.encode()]).encode(),
    );
    let before = net.nodes[0].session(&session).unwrap().attempt();
    net.post(2, Recipient::Members, notice);
    net.settle();
    for i in 0..2 {
        let s = net.nodes[i].session(&session).unwrap();
        assert_eq!(s.attempt(), before, "node {i} did not move");
        assert!(net.blames(i).is_empty(), "node {i} blamed nobody");
    }
}

/// Review 2: a proposer attached evidence to its proposal in a salted group; evidence
/// verification put it into the election while the members' sessions (rightly) did not, so an
/// honest member's correct election proof "verified" as wrong.
#[test]
fn evidence_attached_to_a_proposal_in_a_salted_group_cannot_frame_an_election_proof() {
    let mut net = Net::new(3, 21);
    assert_ne!(
        net.group.election,
        protocol::election::ElectionMethod::ReputationAware
    );
    let session = net.propose(0, b"proof");
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
    }
    net.settle();
    let proposal = {
        let e = Envelope::decode(&net.sent(MessageKind::Proposal, 0), usize::MAX).unwrap();
        let (_, bytes) = protocol::node::split_proposal_payload(&e.payload).unwrap();
        bytes.to_vec()
    };
    let honest_partials = net.sent(MessageKind::Partials, 1);
    let nonces: Vec<Vec<u8>> = (0..3).map(|m| net.sent(MessageKind::Nonces, m)).collect();
    let claim = Evidence {
        offence: Offence::WrongElectionProof,
        proposal,
        envelopes: [vec![honest_partials], nonces].concat(),
    };
    assert!(
        claim.verify(&net.group).is_err(),
        "member 1's proof is right"
    );
}

/// Review 3: `reject` sent the Reject before anything durable recorded it; after a crash the
/// node restored the session with the stored approval and signed what the user rejected.
#[test]
fn a_rejection_is_durable_before_the_reject_leaves() {
    let mut net = Net::new(3, 22);
    let session = net.propose(0, b"reject");
    net.settle();
    let mut out = Vec::new();
    net.nodes[1]
        .reject(
            &session,
            "no",
            net.now,
            &net.keys[1],
            &mut Counter(4),
            &mut out,
        )
        .unwrap();
    let durable_at = out
        .iter()
        .position(|o| matches!(o.action, Action::Persist(Durable::Rejected { .. })))
        .expect("the rejection is persisted");
    let sent_at = out
        .iter()
        .position(|o| matches!(o.action, Action::Send { .. }))
        .expect("the reject is sent");
    assert!(durable_at < sent_at);
}

/// Review 4: the session table and the proposal rate were node-wide (and set by whichever group
/// was added last), so proposals of another group could evict this group's pending sessions.
#[test]
fn another_groups_proposals_cannot_evict_this_groups_sessions() {
    let keys = keys(3, 23);
    let group_a = group_of("A", &keys);
    let copy = |k: &lotus::PrivateKey| lotus::PrivateKey::from_bytes(&k.to_bytes()).unwrap();
    let mut group_b = group_of("B", &[copy(&keys[0]), copy(&keys[2])]);
    group_b.limits.max_pending_sessions = 1;
    group_b.limits.proposals_per_minute = 1_000;
    let mut v = Node::new(keys[0].public_key(), NodeConfig::default());
    v.add_group(group_a.clone()).unwrap();
    v.add_group(group_b.clone()).unwrap();
    let mut entropy = Counter(2);
    let (a, _) = proposal_envelope(&group_a, &keys, 1, [0x61; 32], b"a", 2, NOW, 0);
    let mut out = Vec::new();
    v.receive(&a.encode(), Peer(1), NOW, &keys[0], &mut entropy, &mut out)
        .unwrap();
    let b_keys = [copy(&keys[0]), copy(&keys[2])];
    for k in 0..5u8 {
        let (b, _) =
            proposal_envelope(&group_b, &b_keys, 1, [0x70 + k; 32], &[k], 2, NOW, k as u64);
        let _ = v.receive(&b.encode(), Peer(2), NOW, &keys[0], &mut entropy, &mut out);
    }
    assert!(
        !v.session(&[0x61; 32]).unwrap().is_closed(),
        "group A's pending session survives group B's flood"
    );
}

/// Review 5: every digest-matching message was logged, so distinct notices (approvals with
/// junk payloads and new timestamps) could fill the disk. Notices are not logged.
#[test]
fn a_flood_of_distinct_notices_is_not_logged() {
    let mut net = Net::new(3, 24);
    let session = net.propose(0, b"notices");
    net.settle();
    let digest = net.nodes[1].session(&session).unwrap().digest();
    let logged_before = net.durables(1).len();
    for k in 0..50u64 {
        let header = Header::new(
            MessageKind::Approved,
            net.group.id(),
            session,
            digest,
            0,
            2,
            net.now + k,
        );
        let _ = net.deliver(2, 1, &signed(&net.keys[2], header, vec![0; 60_000]));
    }
    assert_eq!(net.durables(1).len(), logged_before);
}

/// Review 7: a message bound to another digest made us forward our proposal once per
/// (attempt, sender) — any u32 attempt — so the forwarded set grew without bound.
#[test]
fn messages_bound_to_another_proposal_are_answered_once_per_member() {
    let mut net = Net::new(3, 25);
    let session = net.propose(0, b"forward");
    net.settle();
    let sends_before = net.log.len();
    for attempt in 0..200u32 {
        let header = Header::new(
            MessageKind::Nonces,
            net.group.id(),
            session,
            [0xAB; 32],
            attempt,
            2,
            net.now,
        );
        let _ = net.deliver(2, 1, &signed(&net.keys[2], header, vec![attempt as u8]));
    }
    let forwards = net.log[sends_before..]
        .iter()
        .filter(|(n, o)| {
            *n == 1
                && matches!(
                    o.action,
                    Action::Send {
                        to: Recipient::Member(2),
                        ..
                    }
                )
        })
        .count();
    assert_eq!(forwards, 1);
}

/// Review 8: a restart notice counted as a re-roll only when the receiver held everyone's
/// nonces, so the last revealer (which knows the salt from the others' reveals and its own
/// committed share) re-rolled for free by restarting before revealing. Every restart after
/// our own nonces are out now counts.
#[test]
fn a_restart_before_the_senders_own_reveal_still_counts_as_a_reroll() {
    let mut net = Net::new(3, 26);
    net.intercepted = vec![2];
    let session = net.propose(0, b"withheld reveal");
    net.settle();
    // Member 2's commitment goes out; its nonces don't.
    for (from, to, bytes) in std::mem::take(&mut net.held) {
        if Envelope::decode(&bytes, usize::MAX).unwrap().header.kind != MessageKind::Nonces {
            net.post(from, to, bytes);
        }
    }
    net.intercepted.clear();
    net.settle();
    let s = net.nodes[0].session(&session).unwrap();
    assert_eq!(
        s.waiting_for(),
        vec![2],
        "only member 2's reveal is missing"
    );
    let header = Header::new(
        MessageKind::AttemptAborted,
        net.group.id(),
        session,
        s.digest(),
        s.attempt(),
        2,
        net.now,
    );
    net.post(
        2,
        Recipient::Members,
        signed(&net.keys[2], header, AbortCode::Restart.encode()),
    );
    net.settle();
    assert!(net
        .events(0)
        .iter()
        .any(|e| matches!(e, Event::ForcedReroll { member: 2, .. })));
}

/// Defect 10: members keep each other's signed audit heads (carried in round-1 messages), so a
/// co-signer whose log is rewritten later is caught: its new head contradicts the one held.
#[test]
fn round_one_messages_carry_the_senders_signed_audit_head() {
    use protocol::audit_head::SignedHead;
    let mut net = Net::new(3, 27);
    let head = SignedHead::sign(41, [0x41; 32], &net.keys[2]);
    net.nodes[2].set_audit_head(Some(head));
    let session = net.propose(0, b"heads");
    net.settle();
    assert!(net.nodes[0].session(&session).is_some());
    for i in [0, 1] {
        let seen: Vec<_> = net
            .events(i)
            .into_iter()
            .filter_map(|e| match e {
                Event::PeerAuditHead { member, head } => Some((*member, *head)),
                _ => None,
            })
            .collect();
        assert_eq!(seen, vec![(2, head)], "node {i} kept member 2's head");
    }
    // A head signed by someone else is not taken for member 2's.
    let forged = SignedHead::sign(41, [0x42; 32], &net.keys[1]);
    assert!(!forged.verify(&net.keys[2].public_key()));
}

/// Not tried before: a member of another group (sharing member V with this one) asks V, under
/// its own group, for this group's session messages — a pull is bound to its group like any
/// message, so it is refused and nothing of this group's session is sent.
#[test]
fn a_member_of_another_group_cannot_pull_this_groups_session() {
    let keys = keys(3, 28); // V, H, M
    let group_a = group_of("A", &keys);
    let copy = |k: &lotus::PrivateKey| lotus::PrivateKey::from_bytes(&k.to_bytes()).unwrap();
    let b_keys = [copy(&keys[0]), copy(&keys[2])];
    let group_b = group_of("B", &b_keys);
    let mut v = Node::new(keys[0].public_key(), NodeConfig::default());
    v.add_group(group_a.clone()).unwrap();
    v.add_group(group_b.clone()).unwrap();
    let mut entropy = Counter(3);
    let session = [0x71; 32];
    let (p, proposal) = proposal_envelope(&group_a, &keys, 1, session, b"a", 2, NOW, 0);
    let mut out = Vec::new();
    v.receive(&p.encode(), Peer(1), NOW, &keys[0], &mut entropy, &mut out)
        .unwrap();
    let header = Header::new(
        MessageKind::Pull,
        group_b.id(),
        session,
        proposal.review_digest(),
        0,
        1,
        NOW + 1,
    );
    let pull = signed(
        &b_keys[1],
        header,
        protocol::messages::Pull { since_attempt: 0 }.encode(),
    );
    let mut out = Vec::new();
    assert_eq!(
        v.receive(&pull, Peer(2), NOW + 1, &keys[0], &mut entropy, &mut out),
        Err(Rejection::CrossGroup)
    );
    assert!(out.is_empty(), "nothing answered");
}

/// Member 2's messages go out with its partials broken (re-signed by it) and its finished
/// signatures withheld, until both honest members hold proof against it.
fn invalid_partials_from_member_2(net: &mut Net, session: &[u8; 32]) {
    net.intercepted = vec![2];
    for i in 0..3 {
        net.approve(i, session);
    }
    loop {
        net.settle();
        let held = std::mem::take(&mut net.held);
        if held.is_empty() {
            break;
        }
        for (from, to, bytes) in held {
            let e = Envelope::decode(&bytes, usize::MAX).unwrap();
            match e.header.kind {
                MessageKind::Partials => {
                    let mut partials = Partials::decode(&e.payload).unwrap();
                    for p in partials.partials.iter_mut() {
                        let mut b = p.to_bytes();
                        b[31] ^= 1;
                        *p = musig::PartialSignature::from_slice(&b).unwrap();
                    }
                    let tampered = signed(&net.keys[2], e.header, partials.encode());
                    net.post(from, to, tampered);
                }
                MessageKind::Completed => {}
                _ => net.post(from, to, bytes),
            }
        }
    }
    for i in [0, 1] {
        assert_eq!(
            net.blames(i),
            vec![(2, Offence::InvalidPartial)],
            "node {i}"
        );
        assert!(net.nodes[i].session(session).unwrap().outcome().is_none());
    }
}

/// A member proven to have sent an invalid partial, then silent in the next attempt: the
/// session ends with the proven reason at the round timeout instead of stalling the group
/// until the proposal expires (silence alone still blames nobody).
#[test]
fn an_offender_that_goes_silent_after_its_proof_ends_the_session() {
    let mut net = Net::new(3, 21);
    let session = net.propose(0, b"silent offender");
    net.settle();
    invalid_partials_from_member_2(&mut net, &session);
    // From now on member 2 says nothing.
    for _ in 0..3 {
        net.tick_all(5_000);
        net.held.clear();
        net.settle();
    }
    for i in [0, 1] {
        assert_eq!(
            net.nodes[i].session(&session).unwrap().outcome(),
            Some(&Outcome::Aborted(AbortReason::InvalidPartial { member: 2 })),
            "node {i}"
        );
    }
}
