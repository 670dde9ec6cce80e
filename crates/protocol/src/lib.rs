//! The Lotus Cosigner session protocol, sans-IO: no I/O, no clock (time is an input), no
//! randomness except what the caller injects. `engine` drives it over the network and the
//! store; `sim` drives many instances over a simulated faulty network.

pub mod election;
pub mod envelope;
pub mod failover;
pub mod gate;
pub mod group;
pub mod messages;
pub mod policy;
pub mod proposal;
pub mod wire;
