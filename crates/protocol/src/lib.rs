//! The Lotus Cosigner session protocol, sans-IO: no I/O, no clock (time is an input), no
//! randomness except what the caller injects. `engine` drives it over the network and the
//! store; `sim` drives many instances over a simulated faulty network.

pub mod audit_head;
pub mod early;
pub mod election;
pub mod envelope;
pub mod evidence;
pub mod failover;
pub mod fuzzing;
pub mod gate;
pub mod group;
pub mod input;
pub mod messages;
pub mod node;
pub mod policy;
pub mod pool;
pub mod presence;
pub mod proposal;
pub mod session;
pub mod wire;

/// Injected randomness for protocol values that must be unpredictable but not secret-key
/// material: session ids and election salt shares. Production passes the OS CSPRNG; the
/// simulator passes a seeded generator so a run replays exactly; the OS-backed one lives in the
/// engine, since this crate does no I/O. (MuSig2 secret nonces never
/// come from here: `musig::SecretNonce::generate` reads the OS CSPRNG itself.)
pub trait Entropy {
    fn fill(&mut self, out: &mut [u8]);
}
