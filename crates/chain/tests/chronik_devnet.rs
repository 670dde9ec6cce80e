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
