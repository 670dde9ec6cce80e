//! Direct session flows over the lossless driver: approval binds the exact review, a signed
//! reject ends the session everywhere, proof-of-work gates open groups, P2PKH groups sign too,
//! and blame evidence survives only untampered.

use protocol::evidence::{Evidence, Offence};
use protocol::group::{Admission, OutputType};
use protocol::session::{AbortReason, Event, Outcome, SessionError};
use sim::lossless::{Decision, Lossless, NOW};

#[test]
fn everyone_approves_and_the_finished_transaction_verifies() {
    for output in [OutputType::Taproot, OutputType::P2pkh] {
        let mut net = Lossless::new(3, |g| g.output = output);
        let (_, spent) = net.spend();
        net.propose(0, &mut |_, _| Decision::Approve).unwrap();
        let tx = net.broadcast_tx().expect("signed and broadcast").clone();
        lotus::spend::verify_transaction(&tx, &spent).expect("a Lotus node would accept it");
        let signed = net
            .events()
            .filter(|(_, e)| matches!(e, Event::Signed { .. }))
            .count();
        assert_eq!(
            signed, 3,
            "{output:?}: every participant aggregated and verified itself"
        );
    }
}

#[test]
fn approval_must_carry_the_reviewed_digest() {
    let mut net = Lossless::new(3, |_| {});
    let session = net.propose(0, &mut |_, _| Decision::Ignore).unwrap();
    let mut out = Vec::new();
    let (keys, rng) = (&net.keys, &mut net.rng);
    let wrong = [7u8; 32];
    let err = net.nodes[1]
        .approve(&session, &wrong, NOW, &keys[1], rng, &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        protocol::node::NodeError::Session(SessionError::DigestMismatch)
    );
    assert!(
        out.is_empty(),
        "nothing is signed or sent for a wrong digest"
    );
}

#[test]
fn a_signed_reject_ends_the_session_for_everyone() {
    let mut net = Lossless::new(3, |_| {});
    net.propose(0, &mut |node, _| {
        if node == 2 {
            Decision::Reject("fee too high".into())
        } else {
            Decision::Approve
        }
    })
    .unwrap();
    assert!(net.broadcast_tx().is_none());
    let closed: Vec<_> = net
        .events()
        .filter_map(|(n, e)| match e {
            Event::Closed {
                outcome: Outcome::Aborted(AbortReason::RejectedBy { member, reason }),
            } => Some((n, *member, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 3, "all three sessions closed: {closed:?}");
    assert!(closed
        .iter()
        .all(|(_, member, reason)| *member == 2 && reason == "fee too high"));
}

#[test]
fn open_groups_need_proof_of_work_on_proposals() {
    let mut net = Lossless::new(3, |g| g.admission = Admission::Open { pow_bits: 10 });
    net.propose(1, &mut |_, _| Decision::Approve).unwrap();
    assert!(net.broadcast_tx().is_some(), "a mined proposal is accepted");

    // The same proposal without work is refused by the others.
    let mut open = Lossless::new(3, |g| g.admission = Admission::Open { pow_bits: 10 });
    let mut invite_only = Lossless::new(3, |_| {});
    invite_only.group = open.group.clone();
    let (tx, spent) = open.spend();
    let proposal = protocol::proposal::Proposal::sign(
        protocol::proposal::UnsignedProposal {
            group_id: open.group.id(),
            session_id: protocol::proposal::SessionId([4; 32]),
            proposer: 0,
            tx,
            spent_outputs: spent,
            hash_type: protocol::proposal::required_hash_type(open.group.output),
            created_ms: NOW,
            expires_ms: NOW + 60_000,
            sequence: 0,
            evidence: Vec::new(),
            pools: Vec::new(),
        },
        &open.keys[0],
    )
    .unwrap();
    // Find a nonce that does NOT meet the target.
    let digest = proposal.review_digest();
    let lazy_nonce = (0..)
        .find(|n| !protocol::policy::pow_ok(&digest, *n, 10))
        .unwrap();
    let header = protocol::envelope::Header::new(
        protocol::envelope::MessageKind::Proposal,
        open.group.id(),
        [4; 32],
        digest,
        0,
        0,
        NOW,
    );
    let envelope = protocol::envelope::Envelope::sign(
        header,
        protocol::node::proposal_payload(&proposal, lazy_nonce),
        &open.keys[0],
    );
    let mut out = Vec::new();
    let (keys, rng) = (&open.keys, &mut open.rng);
    open.nodes[1]
        .receive(
            &envelope.encode(),
            protocol::node::Peer(0),
            NOW,
            &keys[1],
            rng,
            &mut out,
        )
        .unwrap();
    assert!(out.iter().any(|o| matches!(&o.action, protocol::session::Action::Event(Event::ProposalRefused { error, .. }) if error.contains("proof of work"))), "{out:?}");
    assert!(open.nodes[1].sessions().next().is_none());
}

#[test]
fn blame_evidence_verifies_for_third_parties_and_not_when_tampered() {
    // Member 1 equivocates: two different signed round-1 messages.
    let mut net = Lossless::new(3, |g| g.commit_round = false);
    let session = net.propose(0, &mut |_, _| Decision::Ignore).unwrap();
    let honest_nonces = net
        .log
        .iter()
        .find_map(|(n, a)| match a {
            protocol::session::Action::Send { bytes, .. } if *n == 1 => {
                let e = protocol::envelope::Envelope::decode(bytes, usize::MAX).unwrap();
                (e.header.kind == protocol::envelope::MessageKind::Nonces).then_some(e)
            }
            _ => None,
        })
        .expect("member 1 released nonces");
    let mut payload = protocol::messages::Nonces::decode(&honest_nonces.payload).unwrap();
    payload.salt_share[0] ^= 1;
    let second =
        protocol::envelope::Envelope::sign(honest_nonces.header, payload.encode(), &net.keys[1]);
    let mut out = Vec::new();
    let (keys, rng) = (&net.keys, &mut net.rng);
    net.nodes[0]
        .receive(
            &second.encode(),
            protocol::node::Peer(1),
            NOW,
            &keys[0],
            rng,
            &mut out,
        )
        .unwrap();
    let evidence = out
        .iter()
        .find_map(|o| match &o.action {
            protocol::session::Action::Event(Event::Blamed { blame, evidence }) => {
                assert_eq!(
                    (blame.culprit, blame.offence, blame.session_id),
                    (1, Offence::Equivocation, session)
                );
                Some(evidence.clone())
            }
            _ => None,
        })
        .expect("equivocation is blamed");

    // A third party with only the group descriptor re-verifies it from the encoded record.
    let decoded = Evidence::decode(&evidence.encode()).unwrap();
    assert_eq!(decoded.verify(&net.group).unwrap().culprit, 1);
    // A flipped byte never redirects blame; inside the signed messages it breaks the proof.
    // (Equivocation is proven by the two envelopes alone, so the proposal bytes don't matter.)
    let bytes = evidence.encode();
    let envelopes_start = 1 + 4 + evidence.proposal.len();
    for i in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x20;
        let verdict = Evidence::decode(&tampered)
            .ok()
            .and_then(|e| e.verify(&net.group).ok());
        if let Some(blame) = verdict {
            assert_eq!(
                (blame.culprit, blame.offence),
                (1, Offence::Equivocation),
                "byte {i} redirected blame"
            );
            assert!(
                i < envelopes_start,
                "byte {i} inside the signed messages must break the proof"
            );
        }
    }
}

/// Mutation guard: the salted election must come from every member's round-1 salt share (a
/// session that ignored them survived the whole suite). The election each member announced is
/// recomputed from the shares in the signed Nonces, and changing one member's share changes it.
#[test]
fn the_salted_election_depends_on_every_members_share() {
    use protocol::election::{derive_salt, elect, ElectionInput, ElectionMethod};
    use protocol::envelope::{Envelope, MessageKind};
    use protocol::messages::Nonces;
    use protocol::session::Action;
    let mut net = Lossless::new(3, |g| {
        g.election = ElectionMethod::Salted;
        g.commit_round = false;
    });
    let session = net.propose(0, &mut |_, _| Decision::Ignore).unwrap();
    let announced = net
        .events()
        .find_map(|(n, e)| match e {
            Event::Elected { election, .. } if n == 0 => Some(election.clone()),
            _ => None,
        })
        .expect("node 0 elected");
    let mut shares: Vec<(u16, [u8; 32])> = net
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { bytes, .. } => Envelope::decode(bytes, usize::MAX).ok(),
            _ => None,
        })
        .filter(|e| e.header.kind == MessageKind::Nonces)
        .map(|e| {
            (
                e.header.sender,
                Nonces::decode(&e.payload).unwrap().salt_share,
            )
        })
        .collect();
    shares.sort();
    shares.dedup();
    assert_eq!(shares.len(), 3);
    let proposal = net.nodes[0].session(&session).unwrap().proposal().clone();
    let run = |shares: &[[u8; 32]]| {
        elect(
            ElectionMethod::Salted,
            &ElectionInput {
                members: &net.group.members,
                session_id: session,
                attempt: 0,
                sequence: proposal.sequence,
                salt: Some(derive_salt(&session, 0, shares)),
                penalized: &[],
            },
        )
        .unwrap()
    };
    let in_order: Vec<[u8; 32]> = shares.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        run(&in_order),
        announced,
        "the announced election is the shares'"
    );
    for member in 0..3 {
        let mut changed = in_order.clone();
        changed[member][0] ^= 1;
        assert_ne!(
            run(&changed).proof,
            announced.proof,
            "member {member}'s share counts"
        );
    }
}
