//! The Chronik backend end to end against the devnet's Chronik endpoints (same schema, real
//! HTTP and a real WebSocket on loopback): tip, unspent outputs, broadcast with the indexer's
//! refusals, confirmation depth, conflicts, a reorg, and notifications that nudge.

mod common;

use std::time::Duration;

use chain::chronik::proto;
use chain::chronik::ChronikBackend;
use chain::multi::Chains;
use chain::{Acceptance, ChainBackend, TxStatus};
use common::{mine, start, Wallet, XPI};
use lotus::tx::TxOut;
use serde_json::json;

fn chronik(devnet: &chain::devnet::server::RunningDevnet) -> ChronikBackend {
    let spec = devnet.chronik_spec();
    ChronikBackend::new(spec.strip_prefix("chronik+").unwrap()).unwrap()
}

/// Waits for one nudge; a missing one fails the test instead of hanging it.
async fn nudged(receiver: &mut tokio::sync::mpsc::Receiver<()>) {
    tokio::time::timeout(Duration::from_secs(10), receiver.recv())
        .await
        .expect("a notification within 10 s")
        .expect("the subscription is alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chronik_backend_reads_broadcasts_and_follows_the_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(1);
    let bob = Wallet::new(2);
    let (devnet, rpc) = start(dir.path(), vec![(alice.script(), 50 * XPI)]).await;
    let indexer = chronik(&devnet);
    assert!(indexer.label().starts_with("chronik+http://127.0.0.1:"));

    // The same tip as the node, median time included.
    assert_eq!(indexer.tip().await.unwrap(), rpc.tip().await.unwrap());
    let coins = indexer.unspent(&alice.script()).await.unwrap();
    assert_eq!(coins, rpc.unspent(&alice.script()).await.unwrap());
    assert_eq!(coins.len(), 1);
    let coin = (coins[0].outpoint, coins[0].output.value);

    let mut news = indexer.notifications(vec![bob.script()]).unwrap();
    nudged(&mut news).await; // the first connection counts as news

    // No dry run on Chronik; a broadcast tells.
    let pay = alice.spend(
        &[coin],
        vec![
            TxOut::new(10 * XPI, bob.script()),
            TxOut::new(40 * XPI - 1_000, alice.script()),
        ],
        0,
        u32::MAX,
    );
    assert_eq!(
        indexer.test_accept(&pay).await.unwrap(),
        Acceptance::Unsupported
    );
    assert_eq!(indexer.broadcast(&pay).await.unwrap(), pay.txid());
    nudged(&mut news).await;
    assert_eq!(indexer.status(&pay).await.unwrap(), TxStatus::Mempool);
    assert_eq!(rpc.status(&pay).await.unwrap(), TxStatus::Mempool);
    // Re-broadcasting what the indexer has is a success.
    assert_eq!(indexer.broadcast(&pay).await.unwrap(), pay.txid());
    let bob_coins = indexer.unspent(&bob.script()).await.unwrap();
    assert_eq!(bob_coins.len(), 1);
    assert_eq!(bob_coins[0].height, None, "in the mempool");
    assert!(indexer
        .unspent(&alice.script())
        .await
        .unwrap()
        .iter()
        .all(|u| u.outpoint != coin.0));

    // Refusals carry the node's reason.
    let double = alice.spend(
        &[coin],
        vec![TxOut::new(50 * XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );
    let err = indexer.broadcast(&double).await.unwrap_err();
    assert!(
        err.refusal().unwrap().contains("txn-mempool-conflict"),
        "{err}"
    );
    assert_eq!(indexer.status(&double).await.unwrap(), TxStatus::Conflicted);
    let change = (lotus::tx::OutPoint::new(pay.txid(), 1), 40 * XPI - 1_000);
    let dusty = alice.spend(
        &[change],
        vec![
            TxOut::new(545, bob.script()),
            TxOut::new(40 * XPI - 3_000, alice.script()),
        ],
        0,
        u32::MAX,
    );
    let err = indexer.broadcast(&dusty).await.unwrap_err();
    assert!(err.refusal().unwrap().starts_with("dust"), "{err}");
    let mut forged = bob.spend(&[change], vec![TxOut::new(XPI, bob.script())], 0, u32::MAX);
    forged.inputs[0].script_sig = alice
        .spend(
            &[change],
            vec![TxOut::new(2 * XPI, bob.script())],
            0,
            u32::MAX,
        )
        .inputs[0]
        .script_sig
        .clone();
    let err = indexer.broadcast(&forged).await.unwrap_err();
    assert!(
        err.refusal()
            .unwrap()
            .contains("mandatory-script-verify-flag-failed"),
        "{err}"
    );
    assert_eq!(indexer.status(&forged).await.unwrap(), TxStatus::Unknown);

    // Mined by RPC: the socket hears it, the depth follows the tip.
    mine(&rpc, 2, &bob.address()).await;
    nudged(&mut news).await;
    assert_eq!(
        indexer.status(&pay).await.unwrap(),
        TxStatus::Confirmed {
            height: 1,
            depth: 2
        }
    );
    assert_eq!(indexer.tip().await.unwrap(), rpc.tip().await.unwrap());
    assert_eq!(
        indexer.unspent(&bob.script()).await.unwrap()[0].height,
        Some(1)
    );

    // A reorg that drops the payment: unknown again, and re-broadcast works.
    rpc.client()
        .call("reorg", json!([2, false]))
        .await
        .unwrap()
        .unwrap();
    nudged(&mut news).await;
    assert_eq!(indexer.status(&pay).await.unwrap(), TxStatus::Unknown);
    assert_eq!(indexer.broadcast(&pay).await.unwrap(), pay.txid());
    assert_eq!(indexer.status(&pay).await.unwrap(), TxStatus::Mempool);

    // Several backends of both kinds agree on what is seen.
    let chains = Chains::new(
        vec![
            std::sync::Arc::new(rpc.clone()),
            std::sync::Arc::new(indexer.clone()),
        ],
        2,
    );
    let report = chains.status(&pay).await;
    assert!(report.seen && report.seen_by == 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chronik_history_pages_and_errors_come_in_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(1);
    let (devnet, rpc) = start(dir.path(), vec![(alice.script(), 5 * XPI)]).await;
    mine(&rpc, 3, &alice.address()).await;
    let (kind, payload) = chain::chronik::script_type::of(&alice.script());
    // History of alice: the funding block and three coinbases, newest first, in pages of 2.
    let client = raw_client(&devnet);
    let page: proto::TxHistoryPage = decode(
        client
            .get(&format!(
                "/script/{kind}/{}/history?page=0&page_size=2",
                hex::encode(&payload)
            ))
            .await,
        200,
    );
    assert_eq!(page.num_pages, 2);
    assert_eq!(page.txs.len(), 2);
    assert_eq!(page.txs[0].block.as_ref().unwrap().height, 3);
    assert!(page.txs.iter().all(|t| t.is_coinbase));
    // Errors are protobuf `Error`s with a status.
    let bad: proto::Error = decode(client.get("/tx/zz").await, 400);
    assert_eq!(bad.error_code, "invalid-txid");
    let missing: proto::Error = decode(client.get(&format!("/tx/{}", "11".repeat(32))).await, 404);
    assert_eq!(missing.error_code, "tx-not-found");
    let kind_error: proto::Error = decode(client.get("/script/p2wpkh/00/utxos").await, 400);
    assert_eq!(kind_error.error_code, "invalid-script-type");
    let size_error: proto::Error = decode(
        client
            .get(&format!(
                "/script/{kind}/{}/history?page_size=100000",
                hex::encode(&payload)
            ))
            .await,
        400,
    );
    assert_eq!(size_error.error_code, "invalid-page-size");
    let junk: proto::Error = decode(client.post("/broadcast-tx", vec![0xff; 7]).await, 400);
    assert!(!junk.msg.is_empty());
}

/// Plain HTTP GET/POST against the devnet's Chronik prefix, answering (status, body).
struct RawClient {
    address: std::net::SocketAddr,
}

fn raw_client(devnet: &chain::devnet::server::RunningDevnet) -> RawClient {
    RawClient {
        address: devnet.address,
    }
}

impl RawClient {
    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.send("GET", path, Vec::new()).await
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.send("POST", path, body).await
    }

    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            chain::devnet::chronik::PREFIX,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&answer[..split]).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, answer[split + 4..].to_vec())
    }
}

fn decode<M: prost::Message + Default>((status, body): (u16, Vec<u8>), expected: u16) -> M {
    assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
    M::decode(body.as_slice()).unwrap()
}

/// A hostile indexer: answers each path with the canned (status, protobuf body) given.
async fn hostile_indexer(
    answers: Vec<(&'static str, u16, Vec<u8>)>,
) -> (ChronikBackend, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = vec![0u8; 8192];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]).to_string();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let (status, body) = answers
                .iter()
                .find(|(prefix, ..)| path.starts_with(prefix))
                .map(|(_, status, body)| (*status, body.clone()))
                .unwrap_or((404, proto::Error::default().encode_to_vec()));
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
    });
    (ChronikBackend::new(&url).unwrap(), server)
}

use prost::Message as _;

fn utxo_answer(script: &lotus::script::Script, value: i64, token: bool) -> Vec<u8> {
    proto::Utxos {
        script_utxos: vec![proto::ScriptUtxos {
            output_script: script.as_bytes().to_vec(),
            utxos: vec![proto::Utxo {
                outpoint: Some(proto::OutPoint {
                    txid: vec![7; 32],
                    out_idx: 0,
                }),
                block_height: 5,
                value,
                slp_token: token.then(proto::SlpToken::default),
                ..Default::default()
            }],
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_indexer_cannot_inflate_coins_or_memory() {
    let alice = Wallet::new(1);
    let script = alice.script();
    // A value above all XPI that can exist.
    let (indexer, _server) = hostile_indexer(vec![(
        "/script/",
        200,
        utxo_answer(&script, i64::MAX, false),
    )])
    .await;
    let err = indexer.unspent(&script).await.unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    // Token coins are not XPI coins: left out.
    let (indexer, _server) =
        hostile_indexer(vec![("/script/", 200, utxo_answer(&script, 5_000, true))]).await;
    assert_eq!(indexer.unspent(&script).await.unwrap(), vec![]);
    // An answer larger than any real one is refused before it is decoded.
    let (indexer, _server) = hostile_indexer(vec![("/script/", 200, vec![0x0a; 5 << 20])]).await;
    let err = indexer.unspent(&script).await.unwrap_err();
    assert!(
        matches!(err, chain::ChainError::Unreachable { .. }),
        "{err}"
    );
    // Junk is a protocol error naming the endpoint.
    let (indexer, _server) = hostile_indexer(vec![("/blockchain-info", 200, vec![0xff; 9])]).await;
    let err = indexer.tip().await.unwrap_err();
    assert!(err.to_string().contains("blockchain-info"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_arrives_between_two_lookups_is_not_called_conflicted() {
    let alice = Wallet::new(1);
    let bob = Wallet::new(2);
    let parent = lotus::tx::OutPoint::new(lotus::tx::TxId([4; 32]), 0);
    let pay = alice.spend(
        &[(parent, 5 * XPI)],
        vec![TxOut::new(4 * XPI, bob.script())],
        0,
        u32::MAX,
    );
    let spent_by = |txid: [u8; 32]| {
        proto::Tx {
            txid: vec![4; 32],
            outputs: vec![proto::TxOutput {
                value: 5 * XPI,
                spent_by: Some(proto::OutPoint {
                    txid: txid.to_vec(),
                    out_idx: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec()
    };
    let spent = proto::ValidateUtxoResponse {
        utxo_states: vec![proto::UtxoState {
            state: proto::UtxoStateVariant::Spent as i32,
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let parent_path: &'static str =
        Box::leak(format!("/tx/{}", parent.txid.to_display_hex()).into_boxed_str());
    // "Not found", then its input is spent ... by itself: it arrived meanwhile.
    let (indexer, _server) = hostile_indexer(vec![
        (parent_path, 200, spent_by(pay.txid().0)),
        ("/validate-utxos", 200, spent.clone()),
    ])
    .await;
    assert_eq!(indexer.status(&pay).await.unwrap(), TxStatus::Mempool);
    // Spent by another transaction: conflicted.
    let (indexer, _server) = hostile_indexer(vec![
        (parent_path, 200, spent_by([9; 32])),
        ("/validate-utxos", 200, spent),
    ])
    .await;
    assert_eq!(indexer.status(&pay).await.unwrap(), TxStatus::Conflicted);
}

#[test]
fn a_chronik_url_with_a_login_or_query_is_refused_without_echoing_it() {
    for url in [
        "https://user:hunter2@chronik.example",
        "https://chronik.example/xpi?key=hunter2",
        "https://chronik.example/#hunter2",
    ] {
        let err = ChronikBackend::new(url).err().expect("refused");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let ok = ChronikBackend::new("https://chronik.lotusia.org/xpi/").unwrap();
    assert_eq!(ok.label(), "chronik+https://chronik.lotusia.org/xpi");
}

/// An outsider on the devnet's port sends a subscription far larger than any real one: the
/// socket is closed instead of the message being buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_websocket_closes_on_an_oversized_message() {
    use futures_util::{SinkExt, StreamExt};
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _rpc) = start(dir.path(), vec![]).await;
    let url = format!(
        "ws://{}{}/ws",
        devnet.address,
        chain::devnet::chronik::PREFIX
    );
    let tcp = tokio::net::TcpStream::connect(devnet.address)
        .await
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let huge = vec![0x0a; 1 << 20];
    let _ = socket
        .send(tokio_tungstenite::tungstenite::Message::binary(huge))
        .await;
    let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the devnet answers or closes within 10 s");
    assert!(
        !matches!(
            next,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(_)))
        ),
        "{next:?}"
    );
}
