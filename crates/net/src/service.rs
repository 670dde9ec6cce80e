//! The network task: owns the swarm, turns commands into requests and publications, and
//! swarm events into deliveries for the session layer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::kad::store::RecordStore;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{autonat, gossipsub, identify, kad, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use protocol::presence::Presence;
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{Behaviour, BehaviourConfig, BehaviourEvent};
use crate::directory::{self, Directory};
use crate::policy::{Admission, PeerBudgets};
use crate::wire::{Request, Response};
use crate::{
    Command, Inbound, NetConfig, NetError, NetEvent, NetStatus, Network, PeerInfo, Verdict,
};

/// Envelopes kept per unreachable signer until it connects (then flushed; older ones dropped).
const PENDING_PER_SIGNER: usize = 256;
/// How long a presence record we publish stays valid; republished well before.
const PRESENCE_LIFETIME: Duration = Duration::from_secs(6 * 3600);
const REPUBLISH: Duration = Duration::from_secs(600);
/// Between two attempts to find or dial one member.
const LOOKUP_BACKOFF: Duration = Duration::from_secs(10);
const HOUSEKEEPING: Duration = Duration::from_secs(2);
/// No member reachable for this long: warn of isolation (a possible eclipse).
const ISOLATION_WARNING: Duration = Duration::from_secs(600);
/// How long a connected peer may take to say hello.
const HELLO_GRACE: Duration = Duration::from_secs(30);
/// Gossip score of a peer that has not proved a member key: below the graylist threshold, so
/// it gets none of our group topics' messages and its gossip is ignored.
const OUTSIDER_SCORE: f64 = -1000.0;
/// A noise prologue of our own: other libp2p networks fail the handshake at once.
pub const PROLOGUE: &[u8] = b"lotus-cosigner/1";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts the network on the current tokio runtime. Returns the handle, the deliveries for the
/// session layer, and the events.
pub fn spawn(
    config: NetConfig,
    signer: PrivateKey,
) -> Result<(Network, mpsc::Receiver<Inbound>, mpsc::Receiver<NetEvent>), NetError> {
    let keypair = crate::identity::network_keypair(&signer);
    let peer_id = keypair.public().to_peer_id();
    let behaviour_config = BehaviourConfig {
        server: config.relay_server,
        upnp: config.upnp,
        max_connections: config.max_connections,
        ip_limits: config.ip_limits,
    };
    let build = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let noise_config = |key: &libp2p::identity::Keypair| {
        noise::Config::new(key).map(|c| c.with_prologue(PROLOGUE.to_vec()))
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise_config,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| build(&e))?
        .with_relay_client(noise_config, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, relay_client, &behaviour_config)
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let mut listeners = HashSet::new();
    for address in &config.listen {
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| NetError::Listen {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        listeners.insert(id);
    }
    let (commands, command_rx) = mpsc::channel(1024);
    let (inbound_tx, inbound_rx) = mpsc::channel(crate::service::INBOUND_CAPACITY);
    let (events_tx, events_rx) = mpsc::channel(256);
    let (verdicts_tx, verdicts_rx) = mpsc::channel(1024);
    let mut service = Service {
        swarm,
        signer,
        config: config.clone(),
        directory: Directory::default(),
        budgets: PeerBudgets::new(config.budgets),
        inbound: inbound_tx,
        events: events_tx,
        verdicts: verdicts_tx,
        listeners_pending: listeners,
        listening_waiters: Vec::new(),
        pending: BTreeMap::new(),
        last_lookup: BTreeMap::new(),
        hellos: HashMap::new(),
        hello_seen: HashMap::new(),
        connected_at: HashMap::new(),
        own_presence: None,
        connections: BTreeMap::new(),
        reachable: BTreeSet::new(),
        presence_seq: 0,
        presence_published: None,
        addresses_changed: true,
        last_member_seen: Instant::now(),
        stats: NetStatus::default(),
        bootstrap_peers: BTreeSet::new(),
        group_peers: BTreeSet::new(),
        relays_reserved: BTreeSet::new(),
        nat: "unknown".into(),
    };
    service.start();
    tokio::spawn(service.run(command_rx, verdicts_rx));
    Ok((Network { commands, peer_id }, inbound_rx, events_rx))
}

/// Deliveries waiting for the session layer; beyond this the network drops (the sender
/// resends), never queues without bound.
pub const INBOUND_CAPACITY: usize = 1024;

/// Where a delivered message came from, for charging its verdict.
enum Source {
    Direct(PeerId),
    Gossip {
        propagation: PeerId,
        id: gossipsub::MessageId,
    },
}

struct Service {
    swarm: Swarm<Behaviour>,
    signer: PrivateKey,
    config: NetConfig,
    directory: Directory,
    budgets: PeerBudgets,
    inbound: mpsc::Sender<Inbound>,
    events: mpsc::Sender<NetEvent>,
    verdicts: mpsc::Sender<(Source, Verdict)>,
    listeners_pending: HashSet<libp2p::core::transport::ListenerId>,
    listening_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// Envelopes (and acceptances) for signers not reachable yet.
    pending: BTreeMap<directory::SignerBytes, VecDeque<Request>>,
    last_lookup: BTreeMap<directory::SignerBytes, Instant>,
    /// Hello requests in flight, to match answers.
    hellos: HashMap<OutboundRequestId, PeerId>,
    /// The last hello each connected peer sent that verified (a repeat costs no check).
    hello_seen: HashMap<PeerId, (Vec<u8>, Presence)>,
    /// When each peer connected: one that never says hello is let go.
    connected_at: HashMap<PeerId, Instant>,
    /// Our signed presence record, re-signed only when our addresses change.
    own_presence: Option<Presence>,
    /// Open connections: peer → the address and whether it is relayed.
    connections: BTreeMap<PeerId, (Multiaddr, bool)>,
    /// Members whose peer has proved its key and is connected.
    reachable: BTreeSet<directory::SignerBytes>,
    presence_seq: u64,
    presence_published: Option<Instant>,
    addresses_changed: bool,
    last_member_seen: Instant,
    stats: NetStatus,
    bootstrap_peers: BTreeSet<PeerId>,
    /// Nodes the groups name (see `add_group_peers`).
    group_peers: BTreeSet<PeerId>,
    relays_reserved: BTreeSet<PeerId>,
    nat: String,
}

impl Service {
    fn start(&mut self) {
        for address in self.config.bootstrap.clone() {
            self.add_bootstrap(address);
        }
        for (peer, address) in self.load_anchors() {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
            let _ = self.swarm.dial(address);
        }
    }

    /// A node we chose to trust to bootstrap from and to relay for us (the command line or
    /// the settings): exempt from the inbound limits, dialled now.
    fn add_bootstrap(&mut self, address: Multiaddr) {
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            self.bootstrap_peers.insert(peer);
            self.exempt(peer);
        }
        self.contact(address, "the bootstrap node");
    }

    /// The nodes the groups name: dialled and known to the DHT, and a relay slot reserved on
    /// those that relay. Unlike bootstrap nodes we chose ourselves, they stay under every
    /// connection limit: one group's creator must not weaken the node for its other groups.
    fn add_group_peers(&mut self, addresses: Vec<Multiaddr>) {
        self.group_peers.clear();
        for address in addresses {
            let Some(Protocol::P2p(peer)) = address.iter().last() else {
                continue;
            };
            self.group_peers.insert(peer);
            if !self.connections.contains_key(&peer) {
                self.contact(address, "a node the group names");
            }
        }
    }

    /// A node we were told about: into the DHT's routing table (when the address names its
    /// peer id), and dialled now.
    fn contact(&mut self, address: Multiaddr, what: &str) {
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
        }
        if let Err(e) = self.swarm.dial(address.clone()) {
            tracing::warn!(%address, "cannot dial {what}: {e}");
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut verdicts: mpsc::Receiver<(Source, Verdict)>,
    ) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                Some((source, verdict)) = verdicts.recv() => self.judged(source, verdict),
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
        tracing::debug!("network task stopped");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::SetGroups(groups) => {
                self.directory.set_groups(&groups);
                // The nodes a group names serve its members as bootstrap and relay nodes.
                let named: Vec<Multiaddr> = groups
                    .iter()
                    .flat_map(|g| &g.peers)
                    .filter_map(|text| {
                        crate::peer_address(text)
                            .inspect_err(|e| tracing::warn!("a group names an unusable peer: {e}"))
                            .ok()
                    })
                    .collect();
                self.add_group_peers(named);
                for group in &groups {
                    let topic = gossipsub::IdentTopic::new(directory::topic_name(group));
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                        tracing::warn!("cannot join the group's topic: {e}");
                    }
                }
                let members: Vec<PeerId> = self
                    .directory
                    .member_keys()
                    .filter_map(|key| self.directory.peer_of(&key))
                    .collect();
                for peer in members {
                    self.member_peer(peer);
                }
                // Say hello again to everyone we are connected to: their answers now carry
                // the records of members of the new groups, whom we go and find.
                let connected: Vec<PeerId> = self.connections.keys().copied().collect();
                for peer in connected {
                    self.send_hello(peer);
                }
                self.housekeeping();
            }
            Command::Send { to, bytes } => self.send_envelope(&to, bytes),
            Command::SendAcceptance { to, bytes } => {
                for key in to {
                    self.send_to(&key, Request::Acceptance(bytes.clone()));
                }
            }
            Command::Listening(reply) => {
                if self.listeners_pending.is_empty() {
                    let _ = reply.send(self.swarm.listeners().cloned().collect());
                } else {
                    self.listening_waiters.push(reply);
                }
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peers());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Dial(address) => {
                if let Err(e) = self.swarm.dial(address.clone()) {
                    tracing::warn!(%address, "cannot dial: {e}");
                }
            }
        }
    }

    fn me(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// Direct to each reachable recipient; the rest wait in a bounded queue while we look for
    /// them, and the envelope is also gossiped on its group's topic so a member that reaches
    /// them relays it.
    fn send_envelope(&mut self, to: &[PublicKey], bytes: Vec<u8>) {
        let mut someone_unreachable = false;
        for key in to {
            if *key == self.me() {
                continue;
            }
            if !self.send_to(key, Request::Envelope(bytes.clone())) {
                someone_unreachable = true;
            }
        }
        if someone_unreachable {
            self.gossip(&bytes);
        }
    }

    fn gossip(&mut self, bytes: &[u8]) {
        let Ok(envelope) = protocol::envelope::Envelope::decode(bytes, 64 * 1024 + 1024) else {
            return;
        };
        let topic = format!(
            "lotus-cosigner/group/{}",
            hex::encode(envelope.header.group_id.0)
        );
        let topic = gossipsub::IdentTopic::new(topic);
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes.to_vec())
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
            Err(e) => tracing::debug!("gossip not published: {e}"),
        }
    }

    /// Sends at once if `key`'s peer is connected and proved; otherwise queues. True if sent.
    fn send_to(&mut self, key: &PublicKey, request: Request) -> bool {
        if let Some(peer) = self.directory.peer_of(key) {
            if self.swarm.is_connected(&peer) {
                self.swarm
                    .behaviour_mut()
                    .direct
                    .send_request(&peer, request);
                return true;
            }
        }
        let queue = self.pending.entry(key.serialize()).or_default();
        if queue.len() >= PENDING_PER_SIGNER {
            queue.pop_front();
        }
        queue.push_back(request);
        self.look_for(key);
        false
    }

    /// Dials a member from its presence record, or asks the DHT for the record.
    fn look_for(&mut self, key: &PublicKey) {
        let signer = key.serialize();
        if self
            .last_lookup
            .get(&signer)
            .is_some_and(|at| at.elapsed() < LOOKUP_BACKOFF)
        {
            return;
        }
        self.last_lookup.insert(signer, Instant::now());
        if let Some((peer, addresses)) = self.directory.addresses_of(key) {
            if !self.swarm.is_connected(&peer) && !addresses.is_empty() {
                let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                    .addresses(addresses)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!(%peer, "dial failed: {e}");
                }
            }
        }
        // Always ask the DHT too: the record we hold may be stale.
        self.swarm
            .behaviour_mut()
            .kad
            .get_record(directory::record_key(key));
    }

    fn flush(&mut self, key: &PublicKey, peer: PeerId) {
        if let Some(queue) = self.pending.remove(&key.serialize()) {
            for request in queue {
                self.swarm
                    .behaviour_mut()
                    .direct
                    .send_request(&peer, request);
            }
        }
    }

    /// Our presence record: cached; signed again when the addresses changed or it is half
    /// way to expiry.
    fn presence(&mut self) -> Presence {
        let fresh = self.own_presence.as_ref().is_some_and(|p| {
            !self.addresses_changed
                && p.expires_ms > now_ms() + PRESENCE_LIFETIME.as_millis() as u64 / 2
        });
        if !fresh {
            self.presence_seq = self.presence_seq.max(now_ms()).max(self.presence_seq + 1);
            self.own_presence = Some(self.sign_presence());
        }
        self.own_presence.clone().expect("just signed")
    }

    fn sign_presence(&mut self) -> Presence {
        let mut addresses: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        let mut listening: Vec<Multiaddr> = self
            .swarm
            .listeners()
            .filter(|a| !is_unspecified(a))
            .cloned()
            .collect();
        // Relayed addresses first (they work behind NAT), then routable ones, loopback last.
        listening.sort_by_key(|a| {
            let relayed = a.iter().any(|p| p == Protocol::P2pCircuit);
            let loopback = crate::policy::ip_of(a).is_some_and(|ip| ip.is_loopback());
            (!relayed, loopback)
        });
        addresses.extend(listening);
        addresses.dedup();
        let peer = *self.swarm.local_peer_id();
        let addresses = addresses
            .into_iter()
            .map(|a| {
                let a = if a.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                    a
                } else {
                    a.with(Protocol::P2p(peer))
                };
                a.to_vec()
            })
            .collect();
        Presence::sign(
            &self.signer,
            peer.to_bytes(),
            addresses,
            self.presence_seq,
            now_ms() + PRESENCE_LIFETIME.as_millis() as u64,
        )
    }

    fn publish_presence(&mut self) {
        let record = self.presence();
        let _ = self.directory.learn(record.clone(), now_ms());
        let dht = kad::Record {
            key: directory::record_key(&record.signer),
            value: record.encode(),
            publisher: None,
            expires: Some(Instant::now() + PRESENCE_LIFETIME),
        };
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(dht, kad::Quorum::One)
        {
            tracing::debug!("presence not published to the DHT: {e}");
        }
        self.presence_published = Some(Instant::now());
        self.addresses_changed = false;
    }

    fn housekeeping(&mut self) {
        let stale = self
            .presence_published
            .is_none_or(|at| at.elapsed() > REPUBLISH);
        if (self.addresses_changed || stale) && self.swarm.connected_peers().next().is_some() {
            self.publish_presence();
        }
        let me = self.me();
        let missing: Vec<PublicKey> = self
            .directory
            .member_keys()
            .filter(|key| *key != me && !self.reachable.contains(&key.serialize()))
            .collect();
        for key in missing {
            self.look_for(&key);
        }
        if !self.reachable.is_empty() {
            self.last_member_seen = Instant::now();
        }
        for peer in self.budgets.expired_bans(Instant::now()) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        // A peer that never proved who it is within the grace period only holds a slot.
        let silent: Vec<PeerId> = self
            .connected_at
            .iter()
            .filter(|(peer, at)| at.elapsed() > HELLO_GRACE && !self.hello_seen.contains_key(peer))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in silent {
            tracing::debug!(%peer, "disconnecting a peer that never said hello");
            self.connected_at.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn exempt(&mut self, peer: PeerId) {
        let behaviour = self.swarm.behaviour_mut();
        behaviour.limits.bypass_peer_id(&peer);
        behaviour.ip_limits.exempt(peer);
    }

    /// A peer proved a member's key.
    fn member_peer(&mut self, peer: PeerId) {
        let Some(signer) = self.directory.signer_of(&peer) else {
            return;
        };
        if !self.directory.is_member(&signer) || !self.swarm.is_connected(&peer) {
            return;
        }
        self.exempt(peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .add_explicit_peer(&peer);
        self.flush(&signer, peer);
        if self.reachable.insert(signer.serialize()) {
            self.last_member_seen = Instant::now();
            let _ = self.events.try_send(NetEvent::MemberReachable(signer));
            self.save_anchors();
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                self.addresses_changed = true;
                self.listener_ready(listener_id);
            }
            SwarmEvent::ListenerClosed { listener_id, .. }
            | SwarmEvent::ListenerError { listener_id, .. } => self.listener_ready(listener_id),
            SwarmEvent::ExternalAddrConfirmed { .. } | SwarmEvent::ExpiredListenAddr { .. } => {
                self.addresses_changed = true
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let relayed = endpoint.is_relayed();
                // An inbound circuit's remote address is just `/p2p/<peer>`; the circuit it
                // came through (relay address + `/p2p-circuit`) is what says how we are joined.
                let address = match &endpoint {
                    ConnectedPoint::Listener { local_addr, .. } if relayed => local_addr.clone(),
                    _ => endpoint.get_remote_address().clone(),
                };
                self.connections.insert(peer_id, (address, relayed));
                self.connected_at
                    .entry(peer_id)
                    .or_insert_with(Instant::now);
                if num_established.get() == 1 {
                    let member = self
                        .directory
                        .signer_of(&peer_id)
                        .is_some_and(|s| self.directory.is_member(&s));
                    if !member {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .set_application_score(&peer_id, OUTSIDER_SCORE);
                    }
                    self.send_hello(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connections.remove(&peer_id);
                self.connected_at.remove(&peer_id);
                self.hello_seen.remove(&peer_id);
                self.budgets.forget(&peer_id);
                if let Some(signer) = self.directory.signer_of(&peer_id) {
                    self.reachable.remove(&signer.serialize());
                }
                self.directory.unbind(&peer_id);
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!("inbound connection refused: {error}");
                self.stats.connections_refused += 1;
            }
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => {}
        }
    }

    fn send_hello(&mut self, peer: PeerId) {
        let presence = self.presence().encode();
        let id = self
            .swarm
            .behaviour_mut()
            .direct
            .send_request(&peer, Request::Hello { presence });
        self.hellos.insert(id, peer);
    }

    fn listener_ready(&mut self, id: libp2p::core::transport::ListenerId) {
        if self.listeners_pending.remove(&id) && self.listeners_pending.is_empty() {
            let addresses: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
            for waiter in self.listening_waiters.drain(..) {
                let _ = waiter.send(addresses.clone());
            }
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Direct(event) => self.direct_event(event),
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let source = Source::Gossip {
                    propagation: propagation_source,
                    id: message_id,
                };
                let _ = self.deliver(propagation_source, message.data, source);
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != crate::behaviour::IDENTIFY_VERSION {
                    return;
                }
                let serves_dht = info.protocols.contains(&crate::behaviour::KAD_PROTOCOL);
                // Only peers we trust to be what they say feed our routing table: a stranger's
                // claimed addresses would make us (and those we answer) dial anywhere.
                let trusted =
                    self.bootstrap_peers.contains(&peer_id) || self.is_member_peer(&peer_id);
                if serves_dht && trusted {
                    for address in &info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, address.clone());
                    }
                }
                let relays = info
                    .protocols
                    .iter()
                    .any(|p| p.as_ref() == "/libp2p/circuit/relay/0.2.0/hop");
                let trusted =
                    self.bootstrap_peers.contains(&peer_id) || self.group_peers.contains(&peer_id);
                if relays && trusted {
                    self.reserve_relay(peer_id);
                }
            }
            BehaviourEvent::Kad(event) => self.kad_event(event),
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                self.nat = match new {
                    autonat::NatStatus::Public(_) => "public",
                    autonat::NatStatus::Private => "private (behind NAT)",
                    autonat::NatStatus::Unknown => "unknown",
                }
                .into();
            }
            _ => {}
        }
    }

    /// Reserves a slot on a relay we trust, so members behind NAT can reach us through it.
    fn reserve_relay(&mut self, relay: PeerId) {
        if !self.relays_reserved.insert(relay) {
            return;
        }
        let Some((address, relayed)) = self.connections.get(&relay).cloned() else {
            return;
        };
        if relayed {
            return;
        }
        let circuit = address
            .with_p2p(relay)
            .unwrap_or_else(|a| a)
            .with(Protocol::P2pCircuit);
        if let Err(e) = self.swarm.listen_on(circuit.clone()) {
            tracing::warn!(%circuit, "cannot reserve a relay slot: {e}");
        }
    }

    fn direct_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = self.request(peer, request);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .direct
                    .send_response(channel, response);
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } if self.hellos.remove(&request_id).is_some() => {
                self.hello_answer(peer, response);
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                self.hellos.remove(&request_id);
                tracing::debug!("a request failed: {error}");
            }
            _ => {}
        }
    }

    fn request(&mut self, peer: PeerId, request: Request) -> Response {
        let size = match &request {
            Request::Hello { presence } => presence.len(),
            Request::Envelope(bytes) | Request::Acceptance(bytes) => bytes.len(),
        };
        match self.budgets.charge(peer, size, Instant::now()) {
            Admission::Take => {}
            Admission::Throttle => {
                self.stats.rate_limited += 1;
                return Response::Refused("over the byte budget; slow down".into());
            }
            Admission::Ban => {
                self.ban(peer, "over the byte budget too often");
                return Response::Refused("banned".into());
            }
        }
        match request {
            Request::Hello { presence } => match self.hello(peer, &presence) {
                Ok(signer) => Response::Hello {
                    presence: self.presence().encode(),
                    members: self.directory.records_for(&signer),
                },
                Err(why) => {
                    self.count_rejection("bad_hello");
                    self.invalid_from(peer);
                    Response::Refused(why)
                }
            },
            // Only a peer that proved a member key may hand us envelopes or acceptances.
            _ if !self.is_member_peer(&peer) => {
                self.count_rejection("not_a_member_peer");
                Response::Refused("prove a member key with a hello first".into())
            }
            Request::Envelope(bytes) => {
                if self.deliver(peer, bytes, Source::Direct(peer)) {
                    Response::Ack
                } else {
                    Response::Refused("busy: resend later".into())
                }
            }
            Request::Acceptance(bytes) => {
                if self.events.try_send(NetEvent::Acceptance { bytes }).is_ok() {
                    Response::Ack
                } else {
                    Response::Refused("busy: resend later".into())
                }
            }
        }
    }

    /// A hello: the record must verify and name this very peer, else the claim is refused.
    /// A hello: the record must verify and name this very peer, else the claim is refused.
    /// Only members' records are kept (anyone else's costs us nothing to remember), a peer
    /// cannot switch to another signer key, and a peer repeating the same hello costs no
    /// signature check.
    fn hello(&mut self, peer: PeerId, presence: &[u8]) -> Result<PublicKey, String> {
        let seen = self
            .hello_seen
            .get(&peer)
            .filter(|(bytes, _)| bytes.as_slice() == presence)
            .map(|(_, record)| record.clone());
        let record = match seen {
            Some(record) => record,
            None => {
                let record = Presence::decode(presence).map_err(|e| e.to_string())?;
                let claimed = self.hello_seen.get(&peer).map(|(_, r)| r.signer);
                if claimed.is_some_and(|signer| signer != record.signer) {
                    return Err("a peer cannot change the signer key it proved".into());
                }
                record
                    .verify_for(&peer.to_bytes(), now_ms())
                    .map_err(|e| e.to_string())?;
                self.hello_seen
                    .insert(peer, (presence.to_vec(), record.clone()));
                record
            }
        };
        let signer = record.signer;
        if self.directory.is_member(&signer) {
            let _ = self.directory.learn(record, now_ms());
            self.directory.bind(peer, signer);
            self.member_peer(peer);
        }
        Ok(signer)
    }

    fn hello_answer(&mut self, peer: PeerId, response: Response) {
        let Response::Hello { presence, members } = response else {
            return;
        };
        if self.hello(peer, &presence).is_err() {
            self.count_rejection("bad_hello");
            self.invalid_from(peer);
            return;
        }
        // Members the peer knows: learn them (if they are ours) and go and find them.
        for bytes in members {
            let Ok(record) = Presence::decode(&bytes) else {
                continue;
            };
            if !self.directory.is_member(&record.signer) {
                continue;
            }
            let signer = record.signer;
            if let Ok(true) = self.directory.learn(record, now_ms()) {
                self.last_lookup.remove(&signer.serialize());
                // A member's connection must never be refused for want of a slot.
                if let Some((member_peer, _)) = self.directory.addresses_of(&signer) {
                    self.exempt(member_peer);
                }
                if !self.reachable.contains(&signer.serialize()) {
                    self.look_for(&signer);
                }
            }
        }
    }

    fn is_member_peer(&self, peer: &PeerId) -> bool {
        self.directory
            .signer_of(peer)
            .is_some_and(|s| self.directory.is_member(&s))
    }

    /// Hands a message to the session layer; false if its queue is full (dropped, judged
    /// Ignore).
    fn deliver(&mut self, peer: PeerId, bytes: Vec<u8>, source: Source) -> bool {
        let (verdict, answer) = oneshot::channel();
        let inbound = Inbound {
            peer,
            bytes,
            verdict,
        };
        if self.inbound.try_send(inbound).is_err() {
            self.stats.rate_limited += 1;
            self.judged(source, Verdict::Ignore);
            return false;
        }
        let verdicts = self.verdicts.clone();
        tokio::spawn(async move {
            let verdict = answer.await.unwrap_or(Verdict::Ignore);
            let _ = verdicts.send((source, verdict)).await;
        });
        true
    }

    fn judged(&mut self, source: Source, verdict: Verdict) {
        let peer = match source {
            Source::Direct(peer) => peer,
            Source::Gossip { propagation, id } => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &propagation, acceptance);
                propagation
            }
        };
        if verdict == Verdict::Ignore {
            self.stats.ignored += 1;
        }
        if verdict == Verdict::Reject {
            self.count_rejection("invalid_message");
            if self.swarm.is_connected(&peer) {
                self.invalid_from(peer);
            }
        }
    }

    fn invalid_from(&mut self, peer: PeerId) {
        if self.budgets.invalid(peer, Instant::now()) == Admission::Ban {
            self.ban(peer, "too many invalid messages");
        }
    }

    fn ban(&mut self, peer: PeerId, why: &str) {
        tracing::warn!(%peer, "disconnecting and blocking a peer: {why}");
        self.stats.banned_peers += 1;
        self.budgets.ban(peer, Instant::now());
        let behaviour = self.swarm.behaviour_mut();
        behaviour.gossipsub.blacklist_peer(&peer);
        behaviour.blocked.block_peer(peer);
    }

    fn count_rejection(&mut self, reason: &str) {
        *self.stats.rejected.entry(reason.into()).or_default() += 1;
    }

    fn kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => {
                match self
                    .directory
                    .check_dht_record(self.publisher_of(&source), &record, now_ms())
                {
                    Ok(presence) => {
                        let newer = self
                            .swarm
                            .behaviour_mut()
                            .kad
                            .store_mut()
                            .get(&record.key)
                            .and_then(|old| Presence::decode(&old.value).ok())
                            .is_none_or(|old| old.seq < presence.seq);
                        if newer {
                            let _ = self.swarm.behaviour_mut().kad.store_mut().put(record);
                        }
                    }
                    Err(why) => {
                        tracing::debug!(%source, "refused a DHT record: {why}");
                        self.count_rejection("bad_dht_record");
                        self.invalid_from(source);
                    }
                }
            }
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))),
                ..
            } => {
                let record = found.record;
                let Ok(presence) = Presence::decode(&record.value) else {
                    self.count_rejection("bad_dht_record");
                    return;
                };
                if record.key != directory::record_key(&presence.signer)
                    || !self.directory.is_member(&presence.signer)
                {
                    return;
                }
                let signer = presence.signer;
                if let Ok(true) = self.directory.learn(presence, now_ms()) {
                    self.last_lookup.remove(&signer.serialize());
                    self.look_for(&signer);
                }
            }
            _ => {}
        }
    }

    /// Whom a DHT record's quota is charged to: the subnet it came from (peer ids are free,
    /// addresses are not), or the peer when its address is unknown or is a relay's (one relay
    /// carries many unrelated peers).
    fn publisher_of(&self, peer: &PeerId) -> String {
        match self
            .connections
            .get(peer)
            .filter(|(_, relayed)| !relayed)
            .and_then(|(address, _)| crate::policy::ip_of(address))
        {
            Some(ip) if !ip.is_loopback() => crate::policy::subnet_of(ip),
            _ => peer.to_string(),
        }
    }

    fn peers(&self) -> Vec<PeerInfo> {
        self.connections
            .iter()
            .map(|(peer, (address, relayed))| {
                let signer = self.directory.signer_of(peer);
                PeerInfo {
                    peer_id: peer.to_string(),
                    member: signer.is_some_and(|s| self.directory.is_member(&s)),
                    signer: signer.map(|s| hex::encode(s.serialize())),
                    address: address.to_string(),
                    path: if *relayed { "relayed" } else { "direct" },
                }
            })
            .collect()
    }

    fn status(&mut self) -> NetStatus {
        let mut status = self.stats.clone();
        status.peer_id = self.swarm.local_peer_id().to_string();
        status.listening = self.swarm.listeners().map(|a| a.to_string()).collect();
        status.connected_peers = self.connections.len();
        status.members_reachable = self.reachable.len();
        let me = self.me();
        status.members_known = self.directory.member_keys().filter(|k| *k != me).count();
        status.nat = self.nat.clone();
        status.connections_refused += self.swarm.behaviour().ip_limits.refused;
        status.warnings = self.warnings();
        status
    }

    /// Signs of an eclipse or isolation, in words a person can act on.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let subnets: BTreeSet<String> = self
            .connections
            .values()
            .filter_map(|(address, _)| crate::policy::ip_of(address))
            .filter(|ip| !ip.is_loopback())
            .map(crate::policy::subnet_of)
            .collect();
        let routable = self
            .connections
            .values()
            .filter(|(a, _)| crate::policy::ip_of(a).is_some_and(|ip| !ip.is_loopback()))
            .count();
        if routable >= 4 && subnets.len() == 1 {
            warnings.push(format!(
                "every one of {routable} peers is in {}: this node may be eclipsed; add bootstrap nodes you trust",
                subnets.iter().next().expect("one subnet")
            ));
        }
        let me = self.me();
        let others = self.directory.member_keys().filter(|k| *k != me).count();
        if others > 0
            && self.reachable.is_empty()
            && self.last_member_seen.elapsed() > ISOLATION_WARNING
        {
            warnings.push(format!(
                "no co-signer reachable for {} minutes: check the network and the bootstrap nodes",
                self.last_member_seen.elapsed().as_secs() / 60
            ));
        }
        warnings
    }

    fn load_anchors(&self) -> Vec<(PeerId, Multiaddr)> {
        let Some(path) = &self.config.anchors_file else {
            return Vec::new();
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let address: Multiaddr = line.trim().parse().ok()?;
                match address.iter().last() {
                    Some(Protocol::P2p(peer)) => Some((peer, address)),
                    _ => None,
                }
            })
            .take(32)
            .collect()
    }

    /// Saves the addresses of members we reach (and our bootstrap nodes) to re-dial on start.
    fn save_anchors(&self) {
        let Some(path) = &self.config.anchors_file else {
            return;
        };
        let mut lines = Vec::new();
        for (peer, (address, relayed)) in &self.connections {
            let member = self
                .directory
                .signer_of(peer)
                .is_some_and(|s| self.directory.is_member(&s));
            if (member || self.bootstrap_peers.contains(peer)) && !relayed {
                let address = address.clone().with_p2p(*peer).unwrap_or_else(|a| a);
                lines.push(address.to_string());
            }
        }
        lines.truncate(32);
        let tmp = path.with_extension("tmp");
        let written = write_new(&tmp, (lines.join("\n") + "\n").as_bytes())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "cannot save anchor peers: {e}");
        }
    }
}

/// Writes a fresh file, never through a symlink someone left in its place; synced, so a crash
/// leaves the old file or the whole new one.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn is_unspecified(address: &Multiaddr) -> bool {
    crate::policy::ip_of(address).is_some_and(|ip| ip.is_unspecified())
}
