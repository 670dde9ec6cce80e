//! The chain backends a command talks to: `--chain SPEC`... or the profile's settings.

use chain::multi::Chains;
use std::sync::Arc;

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
        backends.push(chain::backend(&ChainSpec::parse(spec)?)?);
    }
    Ok(Some(Chains::new(backends, settings.seen_quorum)))
}

/// Refreshes `group`'s coins from the backends, if any is configured; `false` if none is.
pub fn refresh_group(
    ctx: &Context,
    settings: &Settings,
    profile: &mut engine::profile::Profile,
    group: &protocol::group::GroupDescriptor,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<bool> {
    let Some(chains) = chains(ctx, settings)? else {
        return Ok(false);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    runtime.block_on(engine::group_wallet::refresh(profile, &chains, group, now))?;
    Ok(true)
}

/// The signer key's custody: an encrypted key file (passphrase from
/// LOTUS_COSIGNER_PASSPHRASE) or the keychain. Commands never hold the key themselves.
pub fn open_custody(
    key_file: &Option<std::path::PathBuf>,
) -> anyhow::Result<engine::custody::Custody> {
    use engine::custody::{Custody, CustodyError, KeySource};
    let source = match key_file {
        Some(path) => KeySource::File(path.clone()),
        None => KeySource::Keychain(engine::EngineConfig::from_env().keychain),
    };
    Ok(Custody::open(&source, || {
        std::env::var("LOTUS_COSIGNER_PASSPHRASE")
            .map(zeroize::Zeroizing::new)
            .map_err(|_| CustodyError::Passphrase("set LOTUS_COSIGNER_PASSPHRASE".into()))
    })?)
}
