//! How commands answer: lines for people, or one JSON document with stable field names
//! (`--json`) for scripts.

use std::io::Write;

use serde::Serialize;

/// What every command gets besides its own arguments.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub data_dir: Option<std::path::PathBuf>,
    pub json: bool,
    /// `--chain` specs; empty: the profile's settings.
    pub chain: Vec<String>,
}

/// Prints `value` as JSON when asked for, else runs `human`.
pub fn answer<T: Serialize>(
    ctx: &Context,
    out: &mut dyn Write,
    value: &T,
    human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if ctx.json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        human(out)?;
    }
    Ok(())
}

/// `12.345678 XPI`.
pub fn xpi(sats: i64) -> String {
    chain::amount::format_xpi(sats)
}
