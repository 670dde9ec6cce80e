//! The Lotus chain as Lotus Cosigner sees it.
//!
//! - [`ChainBackend`]: one async trait — the tip, a script's unspent outputs, a transaction's
//!   status, a dry run and a broadcast. The engine's chain task is written against it only.
//! - [`rpc::RpcBackend`]: a wallet-less lotusd over JSON-RPC (cookie or user/password).
//! - [`chronik::ChronikBackend`]: a Chronik indexer (protobuf over HTTP, WebSocket news).
//! - [`devnet`]: a local Lotus test chain (mempool, blocks, reorgs, SQLite) that validates every
//!   transaction with `crates/lotus` and serves the same JSON-RPC as lotusd, so the RPC backend
//!   is tested over real HTTP. It is a test chain, not a node.
//! - [`spec::ChainSpec`]: the `--chain` syntax that names a backend.

pub mod amount;
pub mod chronik;
pub mod devnet;
pub mod multi;
pub mod rpc;
pub mod spec;
mod types;

pub use spec::{ChainSpec, SpecError};
pub use types::{Acceptance, ChainBackend, ChainError, Tip, TxStatus, Utxo};

/// The backend a spec names.
pub fn backend(spec: &ChainSpec) -> Result<std::sync::Arc<dyn ChainBackend>, ChainError> {
    Ok(match spec {
        ChainSpec::Rpc { .. } => std::sync::Arc::new(rpc::RpcBackend::new(
            rpc::RpcClient::from_spec(spec).expect("an rpc spec"),
        )),
        ChainSpec::Chronik { url } => std::sync::Arc::new(chronik::ChronikBackend::new(url)?),
    })
}
