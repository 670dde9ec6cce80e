//! Lotus (XPI) chain primitives, pure: no I/O, no clock, no global RNG.
//!
//! Curve arithmetic is libsecp256k1's (the `secp256k1` crate); everything that touches a
//! secret goes through its constant-time operations.

pub mod address;
pub mod curve;
pub mod hash;
pub mod key;
pub mod merkle;
pub mod policy;
pub mod schnorr;
pub mod script;
pub mod sighash;
pub mod spend;
pub mod taproot;
pub mod tx;

pub use key::PrivateKey;
pub use secp256k1;
