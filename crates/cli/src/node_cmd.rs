//! `lotus-cosigner node`: the engine on the peer-to-peer network, headless. Prints
//! `peer-id <id>` and one `listening <multiaddr>` line once ready, serves the control socket
//! the other commands use while it runs, logs to standard error, and stops cleanly on
//! SIGINT/SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use engine::control;
use engine::{Engine, EngineConfig};

use crate::output::Context;

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Sign with this encrypted key file (passphrase from LOTUS_COSIGNER_PASSPHRASE or the
    /// first line of standard input) instead of the keychain's key.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Listen here (repeatable); default: every interface, a free TCP and QUIC port.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A trusted bootstrap or relay node, /ip4/…/tcp/…/p2p/<peer id> (repeatable).
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Also serve others: relay, bootstrap and DHT server (a reachable, always-on node).
    #[arg(long)]
    pub relay: bool,
    /// Approve on its own the sessions these written rules allow (TOML).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Misbehave on purpose (cross-process tests only): silent-coordinator, flood,
    /// invalid-partials, equivocate, replay.
    #[arg(long, hide = true, value_name = "NAME")]
    pub test_fault: Option<engine::runtime::faults::TestFault>,
}

fn multiaddrs(list: &[String], what: &str) -> anyhow::Result<Vec<net::Multiaddr>> {
    list.iter()
        .map(|a| {
            a.parse().with_context(|| {
                format!("{what} '{a}' is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/4001)")
            })
        })
        .collect()
}

pub fn run(args: &NodeArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let policy = args
        .policy
        .as_ref()
        .map(|path| engine::policy::Policy::load(path))
        .transpose()?;
    let key = match &args.key_file {
        Some(path) => {
            let passphrase = crate::key_cmd::passphrase()?;
            Some(Arc::new(engine::custody::Custody::open_file(
                path,
                &passphrase,
            )?))
        }
        None => None,
    };
    let mut network = net::NetConfig {
        bootstrap: multiaddrs(&args.bootstrap, "--bootstrap")?,
        relay_server: args.relay,
        upnp: !args.relay,
        ..net::NetConfig::default()
    };
    if !args.listen.is_empty() {
        network.listen = multiaddrs(&args.listen, "--listen")?;
    }
    let config = EngineConfig {
        data_dir: ctx.data_dir.clone(),
        key,
        network: Some(network),
        chain: ctx.chain.clone(),
        test_fault: args.test_fault,
        ..EngineConfig::from_env()
    };
    let data_dir = engine::data_dir::DataDir::open(ctx.data_dir.clone())?
        .path()
        .to_owned();
    let engine = Arc::new(Engine::start(config));
    let peer_id = engine
        .peer_id()
        .map_err(|e| anyhow::anyhow!("{}: {} ({})", e.title, e.message, e.action))?
        .expect("the node runs with the network");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listening = engine
            .listening()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.message))?;
        let socket = control::socket_path(&data_dir);
        let server = control::serve(engine.clone(), &socket)
            .with_context(|| format!("cannot serve the control socket {}", socket.display()))?;
        if ctx.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({ "peer_id": peer_id, "listening": listening })
            )?;
        } else {
            writeln!(out, "peer-id {peer_id}")?;
            for address in &listening {
                writeln!(out, "listening {address}")?;
            }
        }
        out.flush()?;
        tracing::info!(%peer_id, "node ready");
        let policy_task = policy.map(|policy| engine::policy::spawn(engine.clone(), policy));
        wait_for_stop().await;
        tracing::info!("stopping");
        server.abort();
        if let Some(task) = policy_task {
            task.abort();
        }
        let _ = std::fs::remove_file(&socket);
        anyhow::Ok(())
    })?;
    drop(engine);
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, Ctrl-C still ends the process (the default action).
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
