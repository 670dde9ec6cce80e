//! The devnet's JSON-RPC server: the lotusd methods the wallet uses (same names, parameters,
//! answers and error codes), plus `generatetoaddress`, `invalidateblock` and the devnet's own
//! `reorg`. Logins use a lotusd-style `.cookie` file in the data folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lotus::address::XAddress;
use lotus::script::{opcodes, Script};
use lotus::tx::{OutPoint, Transaction, TxId, TxOut};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::chronik::{self, Snapshot};
use super::{Devnet, DevnetError, Located};
use crate::amount::to_xpi_json;
use crate::rpc::codes;

/// The largest request accepted (a standard transaction is at most 100 kB, 200 kB in hex).
const MAX_REQUEST_BYTES: usize = 1 << 20;
const RPC_MISC_ERROR: i64 = -1;
const RPC_TYPE_ERROR: i64 = -3;
const RPC_INVALID_PARAMETER: i64 = -8;
const RPC_DESERIALIZATION_ERROR: i64 = -22;
const RPC_PARSE_ERROR: i64 = -32700;

pub const DATABASE_FILE: &str = "devnet.sqlite3";
pub const COOKIE_FILE: &str = ".cookie";

/// How to run a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Mine an empty-or-not block this often; `None`: only on request.
    pub block_interval: Option<Duration>,
    /// Paid by the genesis block (a new chain) or by a funding block (an existing one).
    pub fund: Vec<(Script, i64)>,
    pub limits: ServerLimits,
}

/// What one client may hold: the devnet listens on loopback, but anything local can connect.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A client must finish sending its request headers within this.
    pub header_timeout: Duration,
    /// A connection is closed after this, whatever it is doing.
    pub connection_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
        }
    }
}

/// A devnet that is serving.
pub struct RunningDevnet {
    pub address: SocketAddr,
    pub cookie_file: PathBuf,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDevnet {
    /// `rpc://127.0.0.1:PORT?cookie=PATH`, the `--chain` spec that reaches it.
    pub fn chain_spec(&self) -> String {
        format!(
            "rpc://{}?cookie={}",
            self.address,
            self.cookie_file.display()
        )
    }

    /// `chronik+http://127.0.0.1:PORT/chronik`, the `--chain` spec of its Chronik endpoints.
    pub fn chronik_spec(&self) -> String {
        format!("chronik+http://{}{}", self.address, chronik::PREFIX)
    }

    /// Resolves once a client called `stop` (also if it was called before this was awaited).
    pub async fn stopped(&self) {
        self.shared.stop.notified().await
    }

    /// Runs `f` on the chain (tests and the CLI read it this way).
    pub fn with_devnet<R>(&self, f: impl FnOnce(&mut Devnet) -> R) -> R {
        f(&mut self.shared.devnet.lock().expect("devnet lock"))
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for RunningDevnet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    devnet: Mutex<Devnet>,
    /// Changes for the Chronik WebSockets.
    news: tokio::sync::broadcast::Sender<chronik::News>,
    /// `Basic base64(__cookie__:secret)`.
    authorization: String,
    stop: Notify,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Opens (or creates) the chain in `config.data_dir`, writes a fresh cookie, binds and serves
/// in the background.
pub async fn start(config: DevnetConfig) -> Result<RunningDevnet, StartError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartError::DataDir(config.data_dir.clone(), e))?;
    let funding = config
        .fund
        .iter()
        .map(|(s, v)| TxOut::new(*v, s.clone()))
        .collect();
    let devnet = Devnet::open(&config.data_dir.join(DATABASE_FILE), funding, now())?;
    let cookie_file = config.data_dir.join(COOKIE_FILE);
    let login = format!("__cookie__:{}", random_hex());
    write_private(&cookie_file, &login).map_err(|e| StartError::DataDir(cookie_file.clone(), e))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let address = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let shared = Arc::new(Shared {
        devnet: Mutex::new(devnet),
        news: tokio::sync::broadcast::channel(1024).0,
        authorization: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(login)
        ),
        stop: Notify::new(),
    });
    let task = tokio::spawn(serve(
        listener,
        shared.clone(),
        config.block_interval,
        config.limits,
    ));
    Ok(RunningDevnet {
        address,
        cookie_file,
        shared,
        task,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use {0}: {1}")]
    DataDir(PathBuf, #[source] std::io::Error),
    #[error("cannot listen on {0}: {1} (is another devnet or lotusd using it?)")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error(transparent)]
    Devnet(#[from] DevnetError),
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    hex::encode(bytes)
}

/// Compares without returning early, so the time taken says nothing about the cookie.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new file with mode 0600 (an old one is removed first: its mode may be looser).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    block_interval: Option<Duration>,
    limits: ServerLimits,
) {
    if let Some(interval) = block_interval {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                timer.tick().await;
                let burn = Script::new().push_opcode(opcodes::OP_RETURN);
                let mined = shared.change(|devnet| devnet.mine(1, &burn, now()));
                if let Err(e) = mined {
                    tracing::error!("devnet: mining on the timer failed: {e}");
                }
            }
        });
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::warn!("devnet: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&shared, request).await) }
            });
            let connection = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = tokio::time::timeout(limits.connection_timeout, connection).await;
        });
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("static header"),
    );
    response
}

impl Shared {
    /// Runs `f` on the chain and tells the Chronik WebSockets what it changed.
    fn change<R>(&self, f: impl FnOnce(&mut Devnet) -> R) -> R {
        let mut devnet = self.devnet.lock().expect("devnet lock");
        let before = (self.news.receiver_count() > 0).then(|| Snapshot::of(devnet.chain()));
        let result = f(&mut devnet);
        if let Some(before) = before {
            chronik::publish(&self.news, before.news(devnet.chain()));
        }
        result
    }
}

async fn answer(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    // Chronik's endpoints, like a real indexer's, need no login.
    if let Some(rest) = request.uri().path().strip_prefix(chronik::PREFIX) {
        if rest.is_empty() || rest.starts_with('/') {
            let path = match request.uri().query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            return chronik::answer(&shared.devnet, &shared.news, &path, request, now()).await;
        }
    }
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), shared.authorization.as_bytes()));
    if !authorized {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            "Basic realm=\"jsonrpc\"".parse().expect("static header"),
        );
        return response;
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return fault_response(
                Value::Null,
                RPC_PARSE_ERROR,
                &format!("request refused: {e}"),
            )
        }
    };
    let call: Value = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            return fault_response(Value::Null, RPC_PARSE_ERROR, &format!("Parse error: {e}"))
        }
    };
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    let params = match call.get("params") {
        Some(Value::Array(params)) => params.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return fault_response(id, RPC_TYPE_ERROR, "params must be a list"),
    };
    let result = shared.change(|devnet| dispatch(devnet, method, &params));
    match result {
        Ok(result) => {
            if method == "stop" {
                // `notify_one` keeps the request if nobody waits yet (a `stop` that arrives
                // before the command started waiting must not be lost).
                shared.stop.notify_one();
            }
            json_response(
                StatusCode::OK,
                json!({"result": result, "error": null, "id": id}),
            )
        }
        Err(Fault { code, message }) => fault_response(id, code, &message),
    }
}

fn fault_response(id: Value, code: i64, message: &str) -> Response<Full<Bytes>> {
    let status = if code == codes::METHOD_NOT_FOUND {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    json_response(
        status,
        json!({"result": null, "error": {"code": code, "message": message}, "id": id}),
    )
}

struct Fault {
    code: i64,
    message: String,
}

fn fault(code: i64, message: impl Into<String>) -> Fault {
    Fault {
        code,
        message: message.into(),
    }
}

impl From<DevnetError> for Fault {
    fn from(e: DevnetError) -> Self {
        fault(RPC_MISC_ERROR, e.to_string())
    }
}

/// The help text's list, also `help`'s answer.
pub const METHODS: &[&str] = &[
    "getblockchaininfo",
    "getblockcount",
    "getbestblockhash",
    "getblockhash",
    "getblock",
    "scantxoutset",
    "gettxout",
    "getrawmempool",
    "getrawtransaction",
    "testmempoolaccept",
    "sendrawtransaction",
    "generatetoaddress",
    "invalidateblock",
    "reorg",
    "help",
    "stop",
];

fn param<'a>(params: &'a [Value], index: usize, name: &str) -> Result<&'a Value, Fault> {
    params.get(index).ok_or_else(|| {
        fault(
            RPC_INVALID_PARAMETER,
            format!("missing parameter {} ({name})", index + 1),
        )
    })
}

fn txid_param(params: &[Value], index: usize) -> Result<TxId, Fault> {
    param(params, index, "txid")?
        .as_str()
        .and_then(|s| TxId::from_display_hex(s).ok())
        .ok_or_else(|| fault(RPC_INVALID_PARAMETER, "txid must be 64 hex characters"))
}

fn hash_param(params: &[Value], index: usize) -> Result<[u8; 32], Fault> {
    param(params, index, "blockhash")?
        .as_str()
        .and_then(|s| lotus::tx::from_display_hex(s).ok())
        .ok_or_else(|| fault(RPC_INVALID_PARAMETER, "blockhash must be 64 hex characters"))
}

fn tx_param(params: &[Value], index: usize) -> Result<Transaction, Fault> {
    let hex_str = param(params, index, "hexstring")?
        .as_str()
        .ok_or_else(|| fault(RPC_TYPE_ERROR, "hexstring must be a string"))?;
    crate::rpc::decode_tx_hex(hex_str)
        .map_err(|e| fault(RPC_DESERIALIZATION_ERROR, format!("TX decode failed: {e}")))
}

fn bool_param(params: &[Value], index: usize, default: bool) -> Result<bool, Fault> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or(0) != 0),
        Some(_) => Err(fault(
            RPC_TYPE_ERROR,
            format!("parameter {} must be a boolean", index + 1),
        )),
    }
}

fn u32_param(params: &[Value], index: usize, name: &str) -> Result<u32, Fault> {
    param(params, index, name)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            fault(
                RPC_TYPE_ERROR,
                format!("{name} must be a non-negative integer"),
            )
        })
}

fn address_script(address: &str) -> Result<Script, Fault> {
    XAddress::decode(address)
        .and_then(|a| a.script_pubkey())
        .map_err(|e| {
            fault(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Invalid address {address}: {e}"),
            )
        })
}

fn dispatch(devnet: &mut Devnet, method: &str, params: &[Value]) -> Result<Value, Fault> {
    let now = now();
    match method {
        "getblockchaininfo" => {
            let chain = devnet.chain();
            Ok(json!({
                "chain": "regtest",
                "blocks": chain.height(),
                "headers": chain.height(),
                "bestblockhash": chain.tip().hash_hex(),
                "mediantime": chain.median_time(),
                "initialblockdownload": false,
                "warnings": "lotus-cosigner devnet: a test chain, not a node",
            }))
        }
        "getblockcount" => Ok(json!(devnet.chain().height())),
        "getbestblockhash" => Ok(json!(devnet.chain().tip().hash_hex())),
        "getblockhash" => {
            let height = u32_param(params, 0, "height")?;
            devnet
                .chain()
                .blocks()
                .get(height as usize)
                .map(|b| json!(b.hash_hex()))
                .ok_or_else(|| fault(RPC_INVALID_PARAMETER, "Block height out of range"))
        }
        "getblock" => {
            let hash = hash_param(params, 0)?;
            let chain = devnet.chain();
            let block = chain
                .block_by_hash(&hash)
                .ok_or_else(|| fault(codes::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
            Ok(json!({
                "hash": block.hash_hex(),
                "height": block.height,
                "time": block.time,
                "previousblockhash": lotus::tx::display_hex(&block.prev),
                "confirmations": chain.height() - block.height + 1,
                "tx": block.txs.iter().map(|t| t.txid().to_display_hex()).collect::<Vec<_>>(),
            }))
        }
        "scantxoutset" => {
            let action = param(params, 0, "action")?.as_str().unwrap_or("");
            if action != "start" {
                return Err(fault(
                    RPC_INVALID_PARAMETER,
                    "only the action \"start\" is supported",
                ));
            }
            let descriptors = param(params, 1, "scanobjects")?
                .as_array()
                .ok_or_else(|| fault(RPC_TYPE_ERROR, "scanobjects must be a list"))?;
            let chain = devnet.chain();
            let mut unspents = Vec::new();
            let mut total = 0i64;
            for descriptor in descriptors {
                let text = descriptor
                    .as_str()
                    .or_else(|| descriptor.get("desc").and_then(Value::as_str))
                    .ok_or_else(|| {
                        fault(RPC_INVALID_PARAMETER, "a scan object must be a descriptor")
                    })?;
                let script = parse_descriptor(text)?;
                for (outpoint, coin) in chain.scan(&script) {
                    total += coin.output.value;
                    unspents.push(json!({
                        "txid": outpoint.txid.to_display_hex(),
                        "vout": outpoint.vout,
                        "scriptPubKey": hex::encode(script.as_bytes()),
                        "desc": text,
                        "amount": to_xpi_json(coin.output.value),
                        "height": coin.height,
                    }));
                }
            }
            Ok(json!({
                "success": true,
                "txouts": unspents.len(),
                "height": chain.height(),
                "bestblock": chain.tip().hash_hex(),
                "unspents": unspents,
                "total_amount": to_xpi_json(total),
            }))
        }
        "gettxout" => {
            let txid = txid_param(params, 0)?;
            let vout = u32_param(params, 1, "n")?;
            let include_mempool = bool_param(params, 2, true)?;
            let chain = devnet.chain();
            Ok(
                match chain.coin(&OutPoint::new(txid, vout), include_mempool) {
                    None => Value::Null,
                    Some((output, height, coinbase)) => json!({
                        "bestblock": chain.tip().hash_hex(),
                        "confirmations": height.map_or(0, |h| chain.height() - h + 1),
                        "value": to_xpi_json(output.value),
                        "scriptPubKey": {"hex": hex::encode(output.script_pubkey.as_bytes())},
                        "coinbase": coinbase,
                    }),
                },
            )
        }
        "getrawmempool" => Ok(json!(devnet
            .chain()
            .mempool()
            .map(|t| t.txid().to_display_hex())
            .collect::<Vec<_>>())),
        "getrawtransaction" => {
            let txid = txid_param(params, 0)?;
            let verbose = bool_param(params, 1, false)?;
            let chain = devnet.chain();
            let (tx, height) = match chain.locate(&txid) {
                Some(Located::Mempool(tx)) => (tx, None),
                Some(Located::Block(tx, height)) => (tx, Some(height)),
                Some(Located::Stale(tx, block)) => {
                    let hex_tx = hex::encode(tx.encode());
                    return Ok(if verbose {
                        json!({"hex": hex_tx, "txid": txid.to_display_hex(), "blockhash": lotus::tx::display_hex(&block), "confirmations": 0})
                    } else {
                        json!(hex_tx)
                    });
                }
                None => {
                    return Err(fault(
                        codes::INVALID_ADDRESS_OR_KEY,
                        "No such mempool or blockchain transaction",
                    ))
                }
            };
            let hex_tx = hex::encode(tx.encode());
            if !verbose {
                return Ok(json!(hex_tx));
            }
            let mut answer =
                json!({"hex": hex_tx, "txid": txid.to_display_hex(), "size": tx.serialized_size()});
            if let Some(height) = height {
                let block = &chain.blocks()[height as usize];
                answer["blockhash"] = json!(block.hash_hex());
                answer["confirmations"] = json!(chain.height() - height + 1);
                answer["time"] = json!(block.time);
                answer["blocktime"] = json!(block.time);
            }
            Ok(answer)
        }
        "testmempoolaccept" => {
            let raws = param(params, 0, "rawtxs")?
                .as_array()
                .ok_or_else(|| fault(RPC_TYPE_ERROR, "rawtxs must be a list"))?;
            if raws.len() != 1 {
                return Err(fault(
                    RPC_INVALID_PARAMETER,
                    "Array must contain exactly one raw transaction for now",
                ));
            }
            let tx = tx_param(raws, 0)?;
            let txid = tx.txid().to_display_hex();
            Ok(match devnet.chain().check(&tx, now) {
                Ok(_) => json!([{"txid": txid, "allowed": true}]),
                Err(reject) => {
                    json!([{"txid": txid, "allowed": false, "reject-reason": reject.reason}])
                }
            })
        }
        "sendrawtransaction" => {
            let tx = tx_param(params, 0)?;
            match devnet.accept(tx, now)? {
                Ok(txid) => Ok(json!(txid.to_display_hex())),
                Err(reject) => Err(fault(reject.code, reject.reason)),
            }
        }
        "generatetoaddress" => {
            let count = u32_param(params, 0, "nblocks")?;
            if count > 1000 {
                return Err(fault(
                    RPC_INVALID_PARAMETER,
                    "at most 1000 blocks at a time",
                ));
            }
            let address = param(params, 1, "address")?
                .as_str()
                .ok_or_else(|| fault(RPC_TYPE_ERROR, "address must be a string"))?;
            let script = address_script(address)?;
            Ok(json!(devnet.mine(count, &script, now)?))
        }
        "invalidateblock" => {
            let hash = hash_param(params, 0)?;
            if devnet.invalidate(&hash, now)? {
                Ok(Value::Null)
            } else {
                Err(fault(
                    codes::INVALID_ADDRESS_OR_KEY,
                    "Block not found (or it is the genesis block)",
                ))
            }
        }
        "reorg" => {
            let depth = u32_param(params, 0, "depth")?;
            if depth == 0 || depth > devnet.chain().height() {
                return Err(fault(
                    RPC_INVALID_PARAMETER,
                    "depth must be from 1 to the chain height",
                ));
            }
            let keep = bool_param(params, 1, true)?;
            let burn = Script::new().push_opcode(opcodes::OP_RETURN);
            let dropped = devnet.reorg(depth, keep, &burn, now)?;
            Ok(json!({
                "height": devnet.chain().height(),
                "bestblockhash": devnet.chain().tip().hash_hex(),
                "dropped": dropped.iter().map(TxId::to_display_hex).collect::<Vec<_>>(),
            }))
        }
        "help" => Ok(json!(METHODS.join("\n"))),
        "stop" => Ok(json!("lotus-cosigner devnet stopping")),
        _ => Err(fault(codes::METHOD_NOT_FOUND, "Method not found")),
    }
}

/// `raw(HEX)` or `addr(XADDRESS)`, optionally with a `#checksum`.
fn parse_descriptor(descriptor: &str) -> Result<Script, Fault> {
    let body = descriptor.split('#').next().unwrap_or("");
    if let Some(hex_script) = body.strip_prefix("raw(").and_then(|r| r.strip_suffix(')')) {
        return hex::decode(hex_script)
            .map(Script::from_bytes)
            .map_err(|_| {
                fault(
                    RPC_INVALID_PARAMETER,
                    format!("raw() needs hex: {descriptor}"),
                )
            });
    }
    if let Some(address) = body.strip_prefix("addr(").and_then(|r| r.strip_suffix(')')) {
        return address_script(address);
    }
    Err(fault(
        RPC_INVALID_PARAMETER,
        format!("unsupported descriptor {descriptor}: use raw(HEX) or addr(ADDRESS)"),
    ))
}

/// `ADDRESS:SATS` for `--fund`.
pub fn parse_fund(spec: &str) -> Result<(Script, i64), String> {
    let (address, sats) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("'{spec}': write XADDRESS:SATS"))?;
    let script = XAddress::decode(address)
        .and_then(|a| a.script_pubkey())
        .map_err(|e| format!("'{address}' is not a Lotus address: {e}"))?;
    let sats: i64 = sats
        .parse()
        .ok()
        .filter(|s| (1..=lotus::policy::MAX_AMOUNT).contains(s))
        .ok_or_else(|| {
            format!(
                "'{sats}' is not a number of satoshis from 1 to {}",
                lotus::policy::MAX_AMOUNT
            )
        })?;
    Ok((script, sats))
}
