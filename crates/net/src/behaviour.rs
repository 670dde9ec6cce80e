//! The composed libp2p behaviour: stock behaviours configured for a small private network of
//! co-signers, plus our connection policy. Laptops are DHT clients and relay clients; a
//! headless node started with `--relay` also serves the DHT and relays for others.

use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, identity, kad,
    memory_connection_limits, ping, relay, request_response, upnp, PeerId, StreamProtocol,
};

use crate::policy::{IpLimiter, IpLimits};
use crate::wire;

/// Our DHT: peers that do not speak it never exchange records with us.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/lotus-cosigner/kad/1.0.0");
/// Identify's protocol version: peers of other networks are told apart by it.
pub const IDENTIFY_VERSION: &str = "/lotus-cosigner/1.0.0";
/// The largest gossip message: an envelope (64 KiB) plus gossipsub's framing.
pub const MAX_GOSSIP: usize = 66 * 1024;

#[derive(Debug, Clone)]
pub struct BehaviourConfig {
    /// Serve the DHT and relay circuits for others (headless nodes).
    pub server: bool,
    /// Ask the home router for a port mapping (laptops).
    pub upnp: bool,
    pub max_connections: u32,
    pub ip_limits: IpLimits,
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub ip_limits: IpLimiter,
    pub memory: memory_connection_limits::Behaviour,
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub direct: request_response::Behaviour<wire::Codec>,
    pub relay_client: relay::client::Behaviour,
    pub relay_server: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    pub upnp: Toggle<upnp::tokio::Behaviour>,
}

impl Behaviour {
    pub fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &BehaviourConfig,
    ) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        Ok(Self {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_pending_incoming(Some(64))
                    .with_max_established(Some(config.max_connections))
                    .with_max_established_per_peer(Some(4)),
            ),
            ip_limits: IpLimiter::new(config.ip_limits),
            memory: memory_connection_limits::Behaviour::with_max_percentage(0.9),
            blocked: allow_block_list::Behaviour::default(),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_VERSION.into(), key.public())
                    .with_agent_version(format!("lotus-cosigner/{}", env!("CARGO_PKG_VERSION")))
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad: kademlia(peer_id, config.server),
            gossipsub: gossip(key)?,
            direct: request_response::Behaviour::with_codec(
                wire::Codec,
                [(wire::PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(20))
                    .with_max_concurrent_streams(64),
            ),
            relay_client,
            relay_server: Toggle::from(config.server.then(|| {
                relay::Behaviour::new(
                    peer_id,
                    relay::Config {
                        // Sessions run for minutes: the default 2 min / 128 KiB circuit is too
                        // small for a round that waits on a person.
                        max_circuit_duration: Duration::from_secs(3600),
                        max_circuit_bytes: 64 * 1024 * 1024,
                        ..relay::Config::default()
                    },
                )
            })),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    only_global_ips: false,
                    ..autonat::Config::default()
                },
            ),
            upnp: Toggle::from(config.upnp.then(upnp::tokio::Behaviour::default)),
        })
    }
}

fn kademlia(peer_id: PeerId, server: bool) -> kad::Behaviour<kad::store::MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    // Every inbound record is validated by us before it is stored (signed presence only).
    config
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        .disjoint_query_paths(true)
        .set_max_packet_size(16 * 1024)
        .set_record_ttl(Some(Duration::from_secs(48 * 3600)))
        .set_publication_interval(Some(Duration::from_secs(3600)))
        .set_query_timeout(Duration::from_secs(30));
    let store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: 4096,
            max_value_bytes: protocol::presence::MAX_RECORD + 1,
            max_providers_per_key: 0,
            max_provided_keys: 0,
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, config);
    // Laptops must not advertise the DHT: unreachable servers poison routing tables.
    kad.set_mode(Some(if server {
        kad::Mode::Server
    } else {
        kad::Mode::Client
    }));
    kad
}

fn gossip(key: &identity::Keypair) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        // The session layer decides: each message is reported Accept / Reject / Ignore.
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP)
        .heartbeat_interval(Duration::from_millis(700))
        // Verdicts may queue behind other deliveries: keep messages ~14 s so an Accept that
        // comes late still forwards.
        .history_length(20)
        // Publish to the mesh and explicit peers (members), never flood to everyone we know.
        .flood_publish(false)
        // Content-addressed: the same envelope relayed twice is one message.
        .message_id_fn(|message| {
            gossipsub::MessageId::from(lotus::hash::sha256(&message.data).to_vec())
        })
        // Small groups: a mesh of whoever is there.
        .mesh_n_low(1)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(0)
        .build()
        .map_err(|e| format!("gossipsub settings: {e}"))?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .map_err(|e| format!("gossipsub: {e}"))?;
    behaviour
        .with_peer_score(
            gossipsub::PeerScoreParams::default(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(|e| format!("gossipsub scoring: {e}"))?;
    Ok(behaviour)
}
