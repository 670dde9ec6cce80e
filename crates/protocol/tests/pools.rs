//! Nonce pools: attempt 0 signed in one visit per member, and the attacks on pooled nonces.

mod common;

use common::*;
use protocol::election::ElectionMethod;
use protocol::envelope::MessageKind;
use protocol::session::Event;

/// A network whose group elects without a salt.
fn pooled_net(n: usize, tag: u8) -> Net {
    net_with(n, tag, ElectionMethod::HashBased)
}

fn net_with(n: usize, tag: u8, election: ElectionMethod) -> Net {
    let mut net = Net::new(n, tag);
    net.group.election = election;
    for (i, node) in net.nodes.iter_mut().enumerate() {
        *node = protocol::node::Node::new(net.keys[i].public_key(), Default::default());
        node.add_group(net.group.clone()).expect("member");
    }
    net
}

fn publish_pools(net: &mut Net) {
    for i in 0..net.nodes.len() {
        let mut out = Vec::new();
        net.nodes[i].refresh_pools(net.now, &net.keys[i], &mut net.entropy, &mut out);
        net.absorb(i, out);
    }
    net.settle();
}

fn has_signed(net: &Net, i: usize) -> bool {
    net.events(i)
        .iter()
        .any(|e| matches!(e, Event::Signed { .. }))
}

#[test]
fn with_pools_everyone_online_signs_in_attempt_zero_without_round_one_messages() {
    let mut net = pooled_net(3, 60);
    publish_pools(&mut net);
    let session = net.propose(0, b"pooled");
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
        net.settle();
    }
    for i in 0..3 {
        assert!(
            has_signed(&net, i),
            "member {i} signed: {:?}",
            net.events(i)
        );
    }
    assert!(
        !any_sent(&net, MessageKind::Nonces),
        "attempt 0 used the pools"
    );
}

/// Delivers what is on the wire to the online members; what is addressed to an offline
/// member waits in its mailbox (as a store-and-forward relay would keep it).
fn settle_online(net: &mut Net, online: &[usize], mailbox: &mut Vec<(usize, usize, Vec<u8>)>) {
    let mut pending: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for (from, to, bytes) in std::mem::take(mailbox) {
        if online.contains(&to) {
            net.wire.push_back((from, to, bytes));
        } else {
            pending.push((from, to, bytes));
        }
    }
    while let Some((from, to, bytes)) = net.wire.pop_front() {
        if online.contains(&to) {
            net.now += 1;
            let _ = net.deliver(from, to, &bytes);
        } else {
            pending.push((from, to, bytes));
        }
    }
    *mailbox = pending;
}

#[test]
fn members_who_visit_one_after_another_sign_with_pooled_nonces() {
    let mut net = pooled_net(3, 61);
    publish_pools(&mut net);
    let mut mailbox = Vec::new();
    // Member 0 proposes and approves while 1 and 2 are away.
    let session = net.propose(0, b"relay");
    net.approve(0, &session);
    settle_online(&mut net, &[0], &mut mailbox);
    // Member 1 visits once, approves, leaves; member 0 has left too.
    net.now += 1_200_000;
    settle_online(&mut net, &[1], &mut mailbox);
    net.approve(1, &session);
    settle_online(&mut net, &[1], &mut mailbox);
    // Member 2 visits once: it can finish alone.
    net.now += 1_200_000;
    settle_online(&mut net, &[2], &mut mailbox);
    net.approve(2, &session);
    settle_online(&mut net, &[2], &mut mailbox);
    assert!(
        has_signed(&net, 2),
        "member 2 finished: {:?}",
        net.events(2)
    );
}

/// A proposal by `proposer` naming `pools` (any member can sign whatever it likes).
fn pooled_proposal(
    net: &Net,
    proposer: u16,
    session_id: [u8; 32],
    tag: &[u8],
    sequence: u64,
    pools: Vec<protocol::pool::PoolRef>,
) -> Vec<u8> {
    use protocol::envelope::{Envelope, Header};
    use protocol::node::proposal_payload;
    use protocol::proposal::{required_hash_type, Proposal, SessionId, UnsignedProposal};
    let (tx, spent) = spend(&net.group, tag, 2);
    let proposal = Proposal::sign(
        UnsignedProposal {
            group_id: net.group.id(),
            session_id: SessionId(session_id),
            proposer,
            tx,
            spent_outputs: spent,
            hash_type: required_hash_type(net.group.output),
            created_ms: net.now,
            expires_ms: net.now + 3_600_000,
            sequence,
            evidence: Vec::new(),
            pools,
        },
        &net.keys[proposer as usize],
    )
    .expect("signs");
    let header = Header::new(
        MessageKind::Proposal,
        net.group.id(),
        session_id,
        proposal.review_digest(),
        0,
        proposer,
        net.now,
    );
    Envelope::sign(
        header,
        proposal_payload(&proposal, 0),
        &net.keys[proposer as usize],
    )
    .encode()
}

fn nonce_hashes(net: &Net, i: usize) -> Vec<[u8; 32]> {
    net.durables(i)
        .into_iter()
        .filter_map(|d| match d {
            protocol::session::Durable::NonceReleased { nonce_hash, .. } => Some(*nonce_hash),
            _ => None,
        })
        .collect()
}

fn signing_marks(net: &Net, i: usize, session: &[u8; 32]) -> Vec<u32> {
    net.durables(i)
        .into_iter()
        .filter_map(|d| match d {
            protocol::session::Durable::AttemptSigning {
                session_id,
                attempt,
                ..
            } if session_id == session => Some(*attempt),
            _ => None,
        })
        .collect()
}

#[test]
fn a_proposer_naming_the_same_pool_entries_twice_never_makes_anyone_sign_one_nonce_twice() {
    let mut net = pooled_net(3, 62);
    publish_pools(&mut net);
    let first = net.propose(0, b"first");
    net.settle();
    let refs = net.nodes[1]
        .session(&first)
        .expect("accepted")
        .proposal()
        .pools
        .clone();
    assert_eq!(refs.len(), 3, "the first proposal names pooled nonces");
    // The same entries again, in a second proposal (another session, next sequence).
    let second = [0x5e; 32];
    let bytes = pooled_proposal(&net, 0, second, b"second", 1, refs);
    net.post(0, protocol::session::Recipient::Members, bytes);
    net.settle();
    for i in 0..3 {
        net.approve(i, &first);
        if i > 0 {
            net.approve(i, &second); // the proposer's own node never held this one
        }
        net.settle();
    }
    for i in 1..3 {
        let hashes = nonce_hashes(&net, i);
        let mut unique = hashes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            hashes.len(),
            "member {i} never released a nonce twice"
        );
        assert_eq!(
            signing_marks(&net, i, &first),
            vec![0],
            "the first took the entries"
        );
        assert!(
            !signing_marks(&net, i, &second).contains(&0),
            "member {i} never signed the second session with the taken entries"
        );
        assert!(
            net.events(i)
                .iter()
                .any(|e| matches!(e, Event::AttemptStarted { attempt: 1 })),
            "member {i}: the second session moved on to an interactive attempt"
        );
    }
    assert!(has_signed(&net, 1), "the first session finished");
}

/// Each member's published pool envelope id (from the log).
fn pool_ids(net: &Net) -> Vec<[u8; 32]> {
    (0..net.nodes.len() as u16)
        .map(|m| {
            let bytes = net.sent(MessageKind::NoncePool, m);
            protocol::envelope::Envelope::decode(&bytes, usize::MAX)
                .expect("decodes")
                .id()
        })
        .collect()
}

/// Whether any node sent a message of `kind`.
fn any_sent(net: &Net, kind: MessageKind) -> bool {
    net.log.iter().any(|(_, o)| match &o.action {
        protocol::session::Action::Send { bytes, .. } => {
            protocol::envelope::Envelope::decode(bytes, usize::MAX)
                .is_ok_and(|e| e.header.kind == kind)
        }
        _ => false,
    })
}

/// Every member approves while member `culprit`'s messages are held; its Partials leave
/// changed by `tamper` and re-signed by itself (it is the culprit's own message).
fn approve_with_tampered_partials(
    net: &mut Net,
    session: &[u8; 32],
    culprit: usize,
    tamper: impl Fn(&mut protocol::messages::Partials),
) {
    use protocol::envelope::Envelope;
    use protocol::messages::Partials;
    net.intercepted = vec![culprit];
    for i in 0..net.nodes.len() {
        net.approve(i, session);
    }
    for (from, to, bytes) in std::mem::take(&mut net.held) {
        let e = Envelope::decode(&bytes, usize::MAX).expect("decodes");
        let bytes = if e.header.kind == MessageKind::Partials {
            let mut p = Partials::decode(&e.payload).expect("partials");
            tamper(&mut p);
            common::signed(&net.keys[culprit], e.header, p.encode())
        } else {
            bytes
        };
        net.post(from, to, bytes);
    }
    net.intercepted.clear();
    net.settle();
}

#[test]
fn a_proposal_naming_another_proposers_slice_is_refused_and_uses_up_nothing() {
    let mut net = pooled_net(3, 63);
    publish_pools(&mut net);
    // Member 2 names the first entries of member 1's slice of every pool (member 1's next
    // proposal will name exactly those).
    let slice = protocol::pool::slice_len(3) as u16;
    let refs: Vec<protocol::pool::PoolRef> = pool_ids(&net)
        .into_iter()
        .map(|pool| protocol::pool::PoolRef { pool, first: slice })
        .collect();
    let bytes = pooled_proposal(&net, 2, [0x51; 32], b"slice", 0, refs);
    net.post(2, protocol::session::Recipient::Members, bytes);
    net.settle();
    for i in 0..2 {
        assert!(
            net.nodes[i].session(&[0x51; 32]).is_none(),
            "member {i} refused it"
        );
        assert!(net.events(i).iter().any(|e| matches!(
            e,
            Event::ProposalRefused { error, .. } if error.contains("may only name")
        )));
    }
    // Member 1's own proposal still signs with those entries, in attempt 0.
    let session = net.propose(1, b"honest");
    net.settle();
    for i in 0..3 {
        net.approve(i, &session);
        net.settle();
    }
    for i in 0..3 {
        assert_eq!(signing_marks(&net, i, &session), vec![0], "member {i}");
        assert!(has_signed(&net, i));
        assert!(net.blames(i).is_empty());
    }
}

#[test]
fn a_named_pool_a_member_saw_and_dropped_still_reaches_its_session() {
    let mut net = pooled_net(3, 67);
    publish_pools(&mut net);
    let first_pools = pool_ids(&net);
    // Member 0 sends member 2 alone three newer pools of its own making: member 2 keeps only
    // the three newest, so member 0's published pool leaves its memory (its id stays in the
    // seen set).
    for k in 1..=3u8 {
        let (_, public) =
            musig::SecretNonce::generate(&net.keys[0], &net.keys[0].public_key(), None)
                .expect("os rng");
        let pool = protocol::pool::NoncePool {
            nonces: vec![public; 24],
            salt_commitments: vec![[k; 32]; 24],
            audit_head: None,
        };
        let header = protocol::envelope::Header::new(
            MessageKind::NoncePool,
            net.group.id(),
            [0; 32],
            [0; 32],
            0,
            0,
            net.now + u64::from(k),
        );
        let bytes = common::signed(&net.keys[0], header, pool.encode());
        net.deliver(0, 2, &bytes).expect("a member's pool");
    }
    // Member 1 (which never saw the newer pools) proposes with member 0's first pool.
    let session = net.propose(1, b"dropped");
    net.settle();
    let named = net.nodes[1]
        .session(&session)
        .expect("made")
        .proposal()
        .pools[0]
        .pool;
    assert_eq!(named, first_pools[0]);
    for i in 0..3 {
        net.approve(i, &session);
        net.settle();
    }
    net.tick_all(10_000);
    net.settle();
    assert!(
        has_signed(&net, 2),
        "member 2 filed the named pool again and signed"
    );
}

#[test]
fn an_invalid_pooled_partial_names_its_signer_with_evidence_anyone_can_check() {
    let mut net = pooled_net(3, 64);
    publish_pools(&mut net);
    let session = net.propose(0, b"invalid");
    net.settle();
    // Member 2's partials leave with one bit flipped.
    approve_with_tampered_partials(&mut net, &session, 2, |p| {
        let mut b = p.partials[0].to_bytes();
        b[31] ^= 1;
        p.partials[0] = musig::PartialSignature::from_slice(&b).expect("scalar");
    });
    for i in 0..2 {
        assert!(
            net.blames(i)
                .contains(&(2, protocol::evidence::Offence::InvalidPartial)),
            "member {i} names member 2: {:?}",
            net.blames(i)
        );
    }
}

fn elections(net: &Net, i: usize) -> Vec<[u8; 32]> {
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::Elected { election, .. } => Some(election.proof),
            _ => None,
        })
        .collect()
}

#[test]
fn a_salted_group_signs_with_pooled_nonces_and_elects_once_every_share_is_revealed() {
    let mut net = net_with(3, 65, ElectionMethod::Salted);
    publish_pools(&mut net);
    let mut mailbox = Vec::new();
    let session = net.propose(0, b"salted");
    net.approve(0, &session);
    settle_online(&mut net, &[0], &mut mailbox);
    assert!(
        elections(&net, 0).is_empty(),
        "no salt before the shares are revealed"
    );
    for visitor in [1, 2] {
        net.now += 1_200_000;
        settle_online(&mut net, &[visitor], &mut mailbox);
        net.approve(visitor, &session);
        settle_online(&mut net, &[visitor], &mut mailbox);
    }
    assert!(
        has_signed(&net, 2),
        "the last visitor finished: {:?}",
        net.events(2)
    );
    // The others learn the result when they are back; all elect the same coordinator.
    net.now += 1_200_000;
    settle_online(&mut net, &[0, 1, 2], &mut mailbox);
    let proof = elections(&net, 2);
    assert_eq!(proof.len(), 1);
    for i in 0..2 {
        let theirs = elections(&net, i);
        assert!(
            theirs.is_empty() || theirs == proof,
            "member {i} elected the same"
        );
    }
    for i in 0..3 {
        assert!(net.blames(i).is_empty());
    }
    assert!(
        !any_sent(&net, MessageKind::Commitment),
        "no commitment round: the pool entries committed to the salt shares"
    );
}

#[test]
fn a_pooled_salt_share_that_does_not_open_its_commitment_is_blamed() {
    let mut net = net_with(3, 66, ElectionMethod::Salted);
    publish_pools(&mut net);
    let session = net.propose(0, b"reroll");
    net.settle();
    // Member 2 reveals a share of its choosing (to pick the coordinator).
    approve_with_tampered_partials(&mut net, &session, 2, |p| {
        assert!(
            p.salt_share.is_some(),
            "a pooled salted partial reveals its share"
        );
        p.salt_share = Some([9; 32]);
    });
    for i in 0..2 {
        assert!(
            net.blames(i)
                .contains(&(2, protocol::evidence::Offence::MalformedContribution)),
            "member {i} names member 2: {:?}",
            net.blames(i)
        );
    }
}

#[test]
fn a_pool_signed_by_a_member_of_another_group_is_refused_and_never_filed() {
    let mut net = pooled_net(3, 68);
    publish_pools(&mut net);
    let outsider = keys(1, 99).remove(0);
    let (_, public) =
        musig::SecretNonce::generate(&outsider, &outsider.public_key(), None).expect("os rng");
    let pool = protocol::pool::NoncePool {
        nonces: vec![public; 24],
        salt_commitments: vec![[1; 32]; 24],
        audit_head: None,
    };
    // In this group's name, as member 1, signed with a key of another group.
    let header = protocol::envelope::Header::new(
        MessageKind::NoncePool,
        net.group.id(),
        [0; 32],
        [0; 32],
        0,
        1,
        net.now,
    );
    let bytes = common::signed(&outsider, header, pool.encode());
    assert!(matches!(
        net.deliver(1, 0, &bytes),
        Err(protocol::gate::Rejection::Signature(_))
    ));
    // Member 0 still names member 1's own pool, and the session signs with it.
    let session = net.propose(0, b"outsider");
    net.settle();
    let named = net.nodes[0]
        .session(&session)
        .expect("made")
        .proposal()
        .pools[1]
        .pool;
    assert_eq!(named, pool_ids(&net)[1]);
    for i in 0..3 {
        net.approve(i, &session);
        net.settle();
    }
    assert_eq!(signing_marks(&net, 2, &session), vec![0]);
}
