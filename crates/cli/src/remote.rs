//! Commands while a node runs on the profile: they are asked of the node over its control
//! socket (the node holds the profile; a second session engine must never open it).

use std::io::Write;
use std::path::PathBuf;

use engine::control::{self, ControlAnswer, ControlRequest};

use crate::output::Context;

/// The control socket of a node running on this profile, if one answers.
pub fn node_socket(ctx: &Context) -> Option<PathBuf> {
    let dir = engine::data_dir::DataDir::open(ctx.data_dir.clone()).ok()?;
    let path = control::socket_path(dir.path());
    std::os::unix::net::UnixStream::connect(&path).ok()?;
    Some(path)
}

/// Asks the node and prints its answer: the JSON document with `--json`, else the fields as
/// lines. An error answer becomes the command's error.
pub fn ask(
    socket: &std::path::Path,
    request: &ControlRequest,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(control::call(socket, request))? {
        ControlAnswer::Ok(value) => {
            print(&value, ctx, out)?;
            Ok(value)
        }
        ControlAnswer::Error(view) => Err(anyhow::Error::new(NodeRefused(view))),
    }
}

/// Asks the node without printing.
pub fn fetch(
    socket: &std::path::Path,
    request: &ControlRequest,
) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(control::call(socket, request))? {
        ControlAnswer::Ok(value) => Ok(value),
        ControlAnswer::Error(view) => Err(anyhow::Error::new(NodeRefused(view))),
    }
}

/// Asks an engine in this process (no node running): the same answers, offline.
pub fn ask_here(
    request: ControlRequest,
    ctx: &Context,
    out: &mut dyn Write,
) -> anyhow::Result<serde_json::Value> {
    let config = engine::EngineConfig {
        data_dir: ctx.data_dir.clone(),
        chain: ctx.chain.clone(),
        ..engine::EngineConfig::from_env()
    };
    let engine = engine::Engine::start(config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(control::answer(&engine, request));
    drop(engine);
    match answer {
        ControlAnswer::Ok(value) => {
            print(&value, ctx, out)?;
            Ok(value)
        }
        ControlAnswer::Error(view) => Err(anyhow::Error::new(NodeRefused(view))),
    }
}

/// The engine's refusal, carried to `main`'s error report unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", .0.title, .0.message)]
pub struct NodeRefused(pub engine::ErrorView);

fn print(value: &serde_json::Value, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    if ctx.json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        lines(value, "", out)?;
    }
    Ok(())
}

/// `key  value` lines, nested keys joined with dots, list items numbered.
fn lines(value: &serde_json::Value, prefix: &str, out: &mut dyn Write) -> std::io::Result<()> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                lines(value, &name, out)?;
            }
        }
        Value::Array(items) if items.is_empty() => writeln!(out, "{prefix}  (none)")?,
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                lines(item, &format!("{prefix}[{i}]"), out)?;
            }
        }
        Value::String(text) => writeln!(out, "{prefix}  {text}")?,
        Value::Null => {}
        other => writeln!(out, "{prefix}  {other}")?,
    }
    Ok(())
}
