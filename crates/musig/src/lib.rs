//! lotus-sdk MuSig2 ("Lotus variant", not BIP327), bit-exact so group addresses match
//! lotus-web-wallet shared wallets. Pure: no I/O; randomness only from the OS CSPRNG for
//! nonces.
//!
//! Flow for one message: `KeyAggContext::new` → `SecretNonce::generate` per signer →
//! `AggregatedNonce::sum` → `Session::new` → `Session::sign` per signer →
//! `Session::verify_all` (blame) → `Session::aggregate` → an ordinary Lotus Schnorr signature.

mod error;
mod key_agg;
mod nonce;
mod session;

pub use error::MusigError;
pub use key_agg::{KeyAggContext, SigningKey, SpendPath, MAX_SIGNERS};
pub use nonce::{AggregatedNonce, PublicNonce, SecretNonce};
pub use session::{PartialSignature, Session};
