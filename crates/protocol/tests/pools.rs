//! Nonce pools: attempt 0 signed in one visit per member, and the attacks on pooled nonces.

mod common;

use common::*;
use protocol::election::ElectionMethod;
use protocol::envelope::MessageKind;
use protocol::session::{Event, Outcome};

/// A network whose group elects without a salt (pools are never used with a salted election).
fn pooled_net(n: usize, tag: u8) -> Net {
    let mut net = Net::new(n, tag);
    net.group.election = ElectionMethod::HashBased;
    for (i, node) in net.nodes.iter_mut().enumerate() {
        *node = protocol::node::Node::new(net.keys[i].public_key(), Default::default());
        node.add_group(net.group.clone()).expect("member");
    }
    net
}

fn publish_pools(net: &mut Net) {
    for i in 0..net.nodes.len() {
        let mut out = Vec::new();
        net.nodes[i].refresh_pools(net.now, &net.keys[i], &mut out);
        net.absorb(i, out);
    }
    net.settle();
}

fn signed(net: &Net, i: usize) -> bool {
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
        assert!(signed(&net, i), "member {i} signed: {:?}", net.events(i));
    }
    let nonces_sent = net.log.iter().any(|(_, o)| match &o.action {
        protocol::session::Action::Send { bytes, .. } => {
            protocol::envelope::Envelope::decode(bytes, usize::MAX)
                .unwrap()
                .header
                .kind
                == MessageKind::Nonces
        }
        _ => false,
    });
    assert!(!nonces_sent, "attempt 0 used the pools");
    let _ = Outcome::Confirmed { txid: [0; 32] };
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
    assert!(signed(&net, 2), "member 2 finished: {:?}", net.events(2));
}
