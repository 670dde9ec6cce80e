//! The group wallet's pure part: which coins to spend, what fee, what change. No I/O: the
//! engine passes the group's unspent outputs in (from its chain backends) and gets an unsigned
//! transaction back, with the outputs it spends, for a proposal.
//!
//! Sizes are exact, not estimates: Lotus Schnorr signatures are always 64 bytes, so a signed
//! input's size is known before signing ([`size`]).

pub mod payment;
pub mod select;
pub mod size;

pub use payment::{build_payment, Amount, Payment, PaymentError, PaymentRequest, Recipient};
pub use select::{Coin, SpendKind};
