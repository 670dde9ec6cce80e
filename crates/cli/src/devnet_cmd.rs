//! `lotus-cosigner devnet`: a local Lotus test chain as its own process, for the demo and the
//! tests. It is a test chain, not a node.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use chain::devnet::server::{self, DevnetConfig};

#[derive(clap::Args, Debug)]
#[command(
    about = "Run a local Lotus test chain (a test chain, not a node) serving lotusd's JSON-RPC and Chronik's API",
    long_about = "Runs a local Lotus test chain for demos and tests. It is NOT a Lotus node: it \
                  never connects to the Lotus network and its blocks have no proof of work. It \
                  keeps its chain in SQLite in the data folder, validates every transaction like \
                  lotusd (signatures and sighash of every input, amounts, dust, standardness, \
                  locktime, double spends), mines blocks on a timer and on request \
                  (generatetoaddress), reorgs on request (reorg DEPTH [KEEP_TXS], \
                  invalidateblock) and serves lotusd's JSON-RPC with a .cookie login, and \
                  Chronik's endpoints and WebSocket under /chronik without one. Once it serves it \
                  prints `rpc http://HOST:PORT`, `cookie PATH`, `chain rpc://HOST:PORT?cookie=PATH` \
                  and `chronik chronik+http://HOST:PORT/chronik` (the --chain specs for profiles)."
)]
pub struct DevnetArgs {
    /// Where to serve JSON-RPC.
    #[arg(long, default_value = "127.0.0.1:18604")]
    pub rpc: SocketAddr,
    /// Mine a block every SECONDS (0: only on request).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub block_interval: u64,
    /// Pay SATS to XADDR at start (the genesis block of a new chain, else a funding block);
    /// spendable at once. Repeatable.
    #[arg(long, value_name = "XADDR:SATS", value_parser = parse_fund)]
    pub fund: Vec<(lotus::script::Script, i64)>,
}

fn parse_fund(spec: &str) -> Result<(lotus::script::Script, i64), String> {
    server::parse_fund(spec)
}

/// `data_dir`: the devnet's own folder (default: `devnet` inside the profile's data folder).
pub fn run(
    args: &DevnetArgs,
    ctx: &crate::output::Context,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let data_dir = match ctx.data_dir.clone() {
        Some(dir) => dir,
        None => engine::data_dir::DataDir::open(None)?.path().join("devnet"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let devnet = server::start(DevnetConfig {
            data_dir,
            listen: args.rpc,
            block_interval: (args.block_interval > 0)
                .then(|| Duration::from_secs(args.block_interval)),
            fund: args.fund.clone(),
            limits: Default::default(),
        })
        .await?;
        // Signals are caught before the readiness lines go out: whoever reads them may send
        // SIGTERM at once, and an uncaught one would kill the devnet mid-write.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let rpc = format!("http://{}", devnet.address);
        if ctx.json {
            let ready = serde_json::json!({
                "rpc": rpc,
                "cookie": devnet.cookie_file,
                "chain": devnet.chain_spec(),
                "chronik": devnet.chronik_spec(),
                "height": devnet.with_devnet(|d| d.chain().height()),
            });
            writeln!(out, "{ready}")?;
        } else {
            writeln!(out, "rpc {rpc}")?;
            writeln!(out, "cookie {}", devnet.cookie_file.display())?;
            writeln!(out, "chain {}", devnet.chain_spec())?;
            writeln!(out, "chronik {}", devnet.chronik_spec())?;
        }
        out.flush()?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = devnet.stopped() => {}
        }
        eprintln!("devnet: stopping (the chain stays in the data folder)");
        devnet.shutdown();
        Ok(())
    })
}
