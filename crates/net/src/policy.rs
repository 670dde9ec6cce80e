//! Connection policy libp2p lacks: inbound connections per IP address and per subnet (/24 for
//! IPv4, /48 for IPv6), with group members exempt, so one host or one provider cannot take every
//! slot (eclipse). And per-peer budgets: bytes per second and invalid messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;

#[derive(Debug, Clone, Copy)]
pub struct IpLimits {
    pub per_ip: usize,
    pub per_subnet: usize,
}

impl Default for IpLimits {
    fn default() -> Self {
        // The analysis: 10 connections per IP; a subnet gets twice that.
        Self {
            per_ip: 10,
            per_subnet: 20,
        }
    }
}

/// The IP address a multiaddr starts with (relayed addresses start with the relay's).
pub fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The subnet an address belongs to for diversity rules: /24 (IPv4), /48 (IPv6).
pub fn subnet_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("too many connections from {what} ({count} of {limit})")]
pub struct IpLimitExceeded {
    pub what: String,
    pub count: usize,
    pub limit: usize,
}

/// Denies inbound connections over the per-IP or per-subnet limit, unless the peer is exempt
/// (a group member or a configured bootstrap/relay node). Loopback is exempt: tests and local
/// tools connect from it.
pub struct IpLimiter {
    limits: IpLimits,
    exempt: BTreeSet<PeerId>,
    inbound: HashMap<ConnectionId, IpAddr>,
    /// Counted refusals, for the network's security counters.
    pub refused: u64,
}

impl IpLimiter {
    pub fn new(limits: IpLimits) -> Self {
        Self {
            limits,
            exempt: BTreeSet::new(),
            inbound: HashMap::new(),
            refused: 0,
        }
    }

    pub fn exempt(&mut self, peer: PeerId) {
        self.exempt.insert(peer);
    }

    fn count(&self, ip: IpAddr) -> (usize, usize) {
        let subnet = subnet_of(ip);
        let same_ip = self.inbound.values().filter(|&&other| other == ip).count();
        let same_subnet = self
            .inbound
            .values()
            .filter(|&&other| subnet_of(other) == subnet)
            .count();
        (same_ip, same_subnet)
    }

    /// The check itself, apart from libp2p: may one more inbound connection come from `ip`?
    pub fn admit(&self, ip: IpAddr) -> Result<(), IpLimitExceeded> {
        if ip.is_loopback() {
            return Ok(());
        }
        let (same_ip, same_subnet) = self.count(ip);
        if same_ip >= self.limits.per_ip {
            return Err(IpLimitExceeded {
                what: ip.to_string(),
                count: same_ip,
                limit: self.limits.per_ip,
            });
        }
        if same_subnet >= self.limits.per_subnet {
            return Err(IpLimitExceeded {
                what: subnet_of(ip),
                count: same_subnet,
                limit: self.limits.per_subnet,
            });
        }
        Ok(())
    }
}

impl NetworkBehaviour for IpLimiter {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // A relayed connection's address is the relay's: counting it there would let a few
        // circuits lock every NATed member out of the relay's IP budget.
        let relayed = remote.iter().any(|p| p == Protocol::P2pCircuit);
        let Some(ip) = ip_of(remote).filter(|_| !relayed) else {
            return Ok(dummy::ConnectionHandler);
        };
        if !self.exempt.contains(&peer) {
            if let Err(e) = self.admit(ip) {
                self.refused += 1;
                return Err(ConnectionDenied::new(e));
            }
        }
        self.inbound.insert(connection_id, ip);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) = event {
            self.inbound.remove(&connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Per authenticated peer: a byte budget refilled each second, and a count of invalid
/// messages. A peer over either is throttled (its messages refused), scored down, and after
/// repeated excess disconnected and kept away for a while.
#[derive(Debug, Clone, Copy)]
pub struct PeerBudgetConfig {
    pub bytes_per_second: u64,
    /// Burst: the bucket's size.
    pub burst_bytes: u64,
    /// Invalid messages tolerated before the peer is disconnected.
    pub invalid_messages: u32,
    /// Throttled requests tolerated before the peer is disconnected.
    pub throttled_requests: u32,
    /// How long a disconnected offender stays blocked.
    pub ban: Duration,
}

impl Default for PeerBudgetConfig {
    fn default() -> Self {
        // The analysis: 1 MB/s per peer.
        Self {
            bytes_per_second: 1_000_000,
            burst_bytes: 2_000_000,
            invalid_messages: 20,
            throttled_requests: 200,
            ban: Duration::from_secs(600),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    invalid: u32,
    throttled: u32,
}

/// What a budget says about one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Take,
    /// Over the byte budget: refuse this one.
    Throttle,
    /// Over a budget too often: disconnect and block the peer.
    Ban,
}

#[derive(Debug, Default)]
pub struct PeerBudgets {
    config: PeerBudgetConfig,
    buckets: BTreeMap<PeerId, Bucket>,
    banned: BTreeMap<PeerId, Instant>,
}

impl PeerBudgets {
    pub fn new(config: PeerBudgetConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    fn bucket(&mut self, peer: PeerId, now: Instant) -> &mut Bucket {
        let config = self.config;
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: config.burst_bytes as f64,
            refilled: now,
            invalid: 0,
            throttled: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * config.bytes_per_second as f64)
            .min(config.burst_bytes as f64);
        bucket.refilled = now;
        bucket
    }

    /// Charges `bytes` to `peer`.
    pub fn charge(&mut self, peer: PeerId, bytes: usize, now: Instant) -> Admission {
        let limit = self.config.throttled_requests;
        let bucket = self.bucket(peer, now);
        if bucket.tokens >= bytes as f64 {
            bucket.tokens -= bytes as f64;
            return Admission::Take;
        }
        bucket.throttled += 1;
        if bucket.throttled > limit {
            Admission::Ban
        } else {
            Admission::Throttle
        }
    }

    /// Records an invalid message from `peer` (the session layer's verdict).
    pub fn invalid(&mut self, peer: PeerId, now: Instant) -> Admission {
        let limit = self.config.invalid_messages;
        let bucket = self.bucket(peer, now);
        bucket.invalid += 1;
        if bucket.invalid > limit {
            Admission::Ban
        } else {
            Admission::Take
        }
    }

    pub fn ban(&mut self, peer: PeerId, now: Instant) {
        self.buckets.remove(&peer);
        self.banned.insert(peer, now + self.config.ban);
    }

    /// Bans that ended; the caller unblocks them.
    pub fn expired_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &ended {
            self.banned.remove(peer);
        }
        ended
    }

    /// Forgets peers that left (bounded memory).
    pub fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_ip_and_per_subnet_limits_refuse_the_next_connection() {
        let mut limiter = IpLimiter::new(IpLimits {
            per_ip: 2,
            per_subnet: 3,
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        limiter
            .inbound
            .insert(ConnectionId::new_unchecked(1), ip("10.0.0.1"));
        limiter
            .inbound
            .insert(ConnectionId::new_unchecked(2), ip("10.0.0.1"));
        assert!(limiter.admit(ip("10.0.0.1")).is_err(), "per IP");
        assert!(limiter.admit(ip("10.0.0.2")).is_ok());
        limiter
            .inbound
            .insert(ConnectionId::new_unchecked(3), ip("10.0.0.2"));
        let refused = limiter.admit(ip("10.0.0.3")).unwrap_err();
        assert_eq!(refused.what, "10.0.0.0/24", "per subnet");
        assert!(limiter.admit(ip("10.0.1.3")).is_ok(), "another subnet");
        assert!(limiter.admit(ip("127.0.0.1")).is_ok(), "loopback exempt");
    }

    #[test]
    fn a_peer_over_its_byte_budget_is_throttled_then_banned() {
        let mut budgets = PeerBudgets::new(PeerBudgetConfig {
            bytes_per_second: 100,
            burst_bytes: 100,
            invalid_messages: 2,
            throttled_requests: 3,
            ban: Duration::from_secs(1),
        });
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(budgets.charge(peer, 100, t0), Admission::Take);
        assert_eq!(budgets.charge(peer, 1, t0), Admission::Throttle);
        // A second later the bucket has refilled.
        assert_eq!(
            budgets.charge(peer, 100, t0 + Duration::from_secs(1)),
            Admission::Take
        );
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..2 {
            assert_eq!(budgets.charge(peer, 50, t1), Admission::Throttle);
        }
        assert_eq!(budgets.charge(peer, 50, t1), Admission::Ban);
        assert_eq!(budgets.invalid(PeerId::random(), t1), Admission::Take);
        budgets.ban(peer, t1);
        assert!(budgets.expired_bans(t1).is_empty());
        assert_eq!(
            budgets.expired_bans(t1 + Duration::from_secs(1)),
            vec![peer]
        );
    }
}
