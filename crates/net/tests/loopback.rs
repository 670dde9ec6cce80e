//! Real libp2p nodes on loopback TCP: members find each other from one bootstrap address,
//! prove their keys, and deliver envelopes with the session layer's verdict.

use std::time::Duration;

use libp2p::Multiaddr;
use lotus::address::Network as Chain;
use lotus::PrivateKey;
use net::{Inbound, NetConfig, NetEvent, Network, Verdict};
use protocol::group::GroupDescriptor;
use tokio::sync::mpsc;

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes(&[n; 32]).unwrap()
}

fn config(bootstrap: Vec<Multiaddr>) -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        upnp: false,
        ..NetConfig::default()
    }
}

struct Node {
    net: Network,
    inbound: mpsc::Receiver<Inbound>,
    events: mpsc::Receiver<NetEvent>,
    address: Multiaddr,
}

async fn node(n: u8, bootstrap: Vec<Multiaddr>, group: &GroupDescriptor) -> Node {
    let (net, inbound, events) = net::spawn(config(bootstrap), key(n)).unwrap();
    net.set_groups(vec![group.clone()]);
    let address = net.listening().await.unwrap()[0]
        .clone()
        .with_p2p(net.peer_id())
        .unwrap();
    Node {
        net,
        inbound,
        events,
        address,
    }
}

async fn next_inbound(node: &mut Node) -> Inbound {
    tokio::time::timeout(Duration::from_secs(30), node.inbound.recv())
        .await
        .expect("a delivery within 30 s")
        .expect("network running")
}

async fn reachable(node: &mut Node, who: &PrivateKey) {
    let want = who.public_key();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(NetEvent::MemberReachable(key)) = node.events.recv().await {
                if key == want {
                    return;
                }
            }
        }
    })
    .await
    .expect("the member becomes reachable within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_meet_through_a_bootstrap_address_and_deliver_with_a_verdict() {
    let group = GroupDescriptor::new(
        "pair",
        Chain::Mainnet,
        vec![key(1).public_key(), key(2).public_key()],
    )
    .unwrap();
    let mut a = node(1, vec![], &group).await;
    let mut b = node(2, vec![a.address.clone()], &group).await;
    reachable(&mut a, &key(2)).await;
    reachable(&mut b, &key(1)).await;

    a.net.send(&[key(2).public_key()], b"an envelope");
    let delivered = next_inbound(&mut b).await;
    assert_eq!(delivered.bytes, b"an envelope");
    assert_eq!(
        delivered.peer,
        a.net.peer_id(),
        "charged to the delivering peer"
    );
    delivered.verdict.send(Verdict::Accept).unwrap();

    let peers = b.net.peers().await.unwrap();
    let peer_a = peers
        .iter()
        .find(|p| p.peer_id == a.net.peer_id().to_string())
        .expect("a is a peer of b");
    assert!(peer_a.member);
    assert_eq!(
        peer_a.signer.as_deref(),
        Some(hex::encode(key(1).public_key().serialize()).as_str())
    );
    assert_eq!(peer_a.path, "direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reached_only_through_another_is_found_from_its_presence_record() {
    let group = GroupDescriptor::new(
        "trio",
        Chain::Mainnet,
        vec![
            key(1).public_key(),
            key(2).public_key(),
            key(3).public_key(),
        ],
    )
    .unwrap();
    let mut hub = node(2, vec![], &group).await;
    let mut a = node(1, vec![hub.address.clone()], &group).await;
    reachable(&mut hub, &key(1)).await;
    // c knows only the hub; a never heard of c's address.
    let mut c = node(3, vec![hub.address.clone()], &group).await;
    reachable(&mut c, &key(2)).await;
    reachable(&mut a, &key(3)).await;
    a.net.send(&[key(3).public_key()], b"to c");
    let delivered = next_inbound(&mut c).await;
    assert_eq!(delivered.bytes, b"to c");
    assert_eq!(
        delivered.peer,
        a.net.peer_id(),
        "directly, not through the hub"
    );
    let _ = &mut a.inbound;
}

/// Members with no bootstrap of their own find each other through the always-on node their
/// group names (not a member: a relay and DHT server for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_meet_through_the_node_their_group_names() {
    let (server, _inbound, _events) = net::spawn(
        NetConfig {
            relay_server: true,
            ..config(vec![])
        },
        key(9),
    )
    .unwrap();
    let server_address = server.listening().await.unwrap()[0]
        .clone()
        .with_p2p(server.peer_id())
        .unwrap();
    let mut group = GroupDescriptor::new(
        "named",
        Chain::Mainnet,
        vec![key(1).public_key(), key(2).public_key()],
    )
    .unwrap();
    group.peers = vec![server_address.to_string()];
    let mut a = node(1, vec![], &group).await;
    let mut b = node(2, vec![], &group).await;
    reachable(&mut a, &key(2)).await;
    reachable(&mut b, &key(1)).await;
    a.net
        .send(&[key(2).public_key()], b"found through the group's node");
    let delivered = next_inbound(&mut b).await;
    assert_eq!(delivered.bytes, b"found through the group's node");
}
