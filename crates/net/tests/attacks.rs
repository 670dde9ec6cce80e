//! Attacks on the network layer by peers that can open connections and send bytes, each named
//! for the attack. The attacker is a bare libp2p swarm speaking our direct-message protocol.

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use lotus::address::Network as Chain;
use lotus::PrivateKey;
use net::wire::{Codec, Request, Response, PROTOCOL};
use net::NetConfig;
use protocol::group::GroupDescriptor;
use protocol::presence::Presence;

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes(&[n; 32]).unwrap()
}

type Attacker = Swarm<request_response::Behaviour<Codec>>;

fn attacker() -> Attacker {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            |k: &libp2p::identity::Keypair| {
                noise::Config::new(k).map(|c| c.with_prologue(net::PROLOGUE.to_vec()))
            },
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                Codec,
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Sends `request` to `target` and answers the response (or the failure, as text).
async fn ask(
    swarm: &mut Attacker,
    target: (PeerId, Multiaddr),
    request: Request,
) -> Result<Response, String> {
    swarm.add_peer_address(target.0, target.1.clone());
    let id = swarm.behaviour_mut().send_request(&target.0, request);
    let answer = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => return Err(error.to_string()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("an answer within 30 s")
}

async fn member_node() -> (net::Network, (PeerId, Multiaddr), GroupDescriptor) {
    let group = GroupDescriptor::new(
        "pair",
        Chain::Mainnet,
        vec![key(1).public_key(), key(2).public_key()],
    )
    .unwrap();
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        upnp: false,
        ..NetConfig::default()
    };
    let (network, _inbound, _events) = net::spawn(config, key(2)).unwrap();
    network.set_groups(vec![group.clone()]);
    let address = network.listening().await.unwrap()[0].clone();
    let peer = network.peer_id();
    // The receivers are dropped: nothing may reach them anyway in these tests.
    (network, (peer, address), group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_claim_a_members_key_by_replaying_its_presence_record() {
    let (node, target, _) = member_node().await;
    // Member 1's genuine record, as anyone can fetch it from the DHT: it names member 1's peer.
    let victim_peer = net::identity::network_keypair(&key(1))
        .public()
        .to_peer_id();
    let replayed = Presence::sign(&key(1), victim_peer.to_bytes(), vec![], 1, u64::MAX / 2);
    let mut attacker = attacker();
    let answer = ask(
        &mut attacker,
        target,
        Request::Hello {
            presence: replayed.encode(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
    let status = node.status().await.unwrap();
    assert_eq!(status.rejected.get("bad_hello"), Some(&1));
    assert_eq!(status.members_reachable, 0, "the impersonator is no member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_cannot_hand_envelopes_or_acceptances_to_a_member() {
    let (node, target, _) = member_node().await;
    let mut attacker = attacker();
    for request in [
        Request::Envelope(vec![0; 200]),
        Request::Acceptance(vec![0; 98]),
    ] {
        let answer = ask(&mut attacker, target.clone(), request).await.unwrap();
        assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
    }
    let status = node.status().await.unwrap();
    assert_eq!(status.rejected.get("not_a_member_peer"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_cannot_send_a_frame_above_the_size_limit() {
    let (_node, target, _) = member_node().await;
    let mut attacker = attacker();
    let huge = Request::Envelope(vec![0; net::wire::MAX_FRAME]);
    let answer = ask(&mut attacker, target, huge).await;
    assert!(answer.is_err(), "the stream is cut, no answer: {answer:?}");
}
