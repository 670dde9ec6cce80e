//! The chain backends a command talks to: `--chain SPEC`... or the profile's settings.

use std::sync::Arc;

use chain::multi::Chains;
use chain::rpc::{RpcBackend, RpcClient};
use chain::{ChainBackend, ChainSpec};
use engine::settings::Settings;

use crate::output::Context;

/// The backends for this run; `Ok(None)` when none is configured anywhere.
pub fn chains(ctx: &Context, settings: &Settings) -> anyhow::Result<Option<Chains>> {
    let specs = if ctx.chain.is_empty() {
        &settings.chain
    } else {
        &ctx.chain
    };
    if specs.is_empty() {
        return Ok(None);
    }
    let mut backends: Vec<Arc<dyn ChainBackend>> = Vec::new();
    for spec in specs {
        let spec = ChainSpec::parse(spec)?;
        match RpcClient::from_spec(&spec) {
            Some(client) => backends.push(Arc::new(RpcBackend::new(client))),
            None => anyhow::bail!(
                "{spec}: the Chronik backend is not built yet; use an rpc:// backend (lotusd or the devnet)"
            ),
        }
    }
    Ok(Some(Chains::new(backends, settings.seen_quorum)))
}
