//! The lotusd JSON-RPC backend against the devnet, over real HTTP on loopback: funding,
//! unspent outputs, broadcast, confirmation depth, refusals with the node's own reason, a reorg
//! that drops a transaction, logins, persistence.

mod common;

use chain::rpc::{RpcBackend, RpcClient};
use chain::{Acceptance, ChainBackend, ChainError, ChainSpec, TxStatus};
use common::{mine, start, Wallet, XPI};
use lotus::tx::{OutPoint, TxOut};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fund_spend_confirm_and_refusals_with_the_nodes_reason() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(1);
    let bob = Wallet::new(2);
    let (_devnet, backend) = start(
        dir.path(),
        vec![(alice.script(), 50 * XPI), (alice.script(), 7 * XPI)],
    )
    .await;

    let tip = backend.tip().await.unwrap();
    assert_eq!(tip.height, 0);
    let mut coins = backend.unspent(&alice.script()).await.unwrap();
    coins.sort_by_key(|u| u.output.value);
    assert_eq!(
        coins.iter().map(|u| u.output.value).collect::<Vec<_>>(),
        [7 * XPI, 50 * XPI]
    );
    assert!(coins.iter().all(|u| u.height == Some(0)));
    let big = (coins[1].outpoint, coins[1].output.value);
    let small = (coins[0].outpoint, coins[0].output.value);

    // A payment with change, one input.
    let pay = alice.spend(
        &[big],
        vec![
            TxOut::new(10 * XPI, bob.script()),
            TxOut::new(40 * XPI - 1_000, alice.script()),
        ],
        0,
        u32::MAX,
    );
    assert_eq!(
        backend.test_accept(&pay).await.unwrap(),
        Acceptance::Accepted
    );
    assert_eq!(backend.broadcast(&pay).await.unwrap(), pay.txid());
    assert_eq!(backend.status(&pay).await.unwrap(), TxStatus::Mempool);
    // Re-broadcasting what the node has is a success.
    assert_eq!(backend.broadcast(&pay).await.unwrap(), pay.txid());
    let bob_coins = backend.unspent(&bob.script()).await.unwrap();
    assert_eq!(bob_coins.len(), 1);
    assert_eq!(bob_coins[0].height, None, "in the mempool");
    let alice_coins = backend.unspent(&alice.script()).await.unwrap();
    assert!(
        !alice_coins.iter().any(|u| u.outpoint == big.0),
        "the mempool spends it"
    );

    // A double spend of the same coin.
    let double = alice.spend(
        &[big],
        vec![TxOut::new(50 * XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );
    let err = backend.broadcast(&double).await.unwrap_err();
    assert!(
        err.refusal().unwrap().contains("txn-mempool-conflict"),
        "{err}"
    );

    mine(&backend, 3, &bob.address()).await;
    assert_eq!(
        backend.status(&pay).await.unwrap(),
        TxStatus::Confirmed {
            height: 1,
            depth: 3
        }
    );
    // Three coinbases to one address are three coins (Lotus txids leave out the scriptSig).
    let rewards = backend.unspent(&bob.script()).await.unwrap();
    assert_eq!(
        rewards
            .iter()
            .filter(|u| u.output.value >= 260 * XPI)
            .count(),
        3
    );
    let err = backend.broadcast(&double).await.unwrap_err();
    assert!(
        err.refusal()
            .unwrap()
            .contains("bad-txns-inputs-missingorspent"),
        "{err}"
    );
    assert_eq!(backend.status(&double).await.unwrap(), TxStatus::Conflicted);

    // A bad signature: signed by the wrong key.
    let mut forged = bob.spend(
        &[small],
        vec![TxOut::new(7 * XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );
    forged.inputs[0].script_sig = alice
        .spend(
            &[small],
            vec![TxOut::new(7 * XPI - 2_000, bob.script())],
            0,
            u32::MAX,
        )
        .inputs[0]
        .script_sig
        .clone();
    let err = backend.broadcast(&forged).await.unwrap_err();
    assert!(
        err.refusal()
            .unwrap()
            .contains("mandatory-script-verify-flag-failed"),
        "{err}"
    );

    // A dust output.
    let dusty = alice.spend(
        &[small],
        vec![
            TxOut::new(545, bob.script()),
            TxOut::new(7 * XPI - 2_000, alice.script()),
        ],
        0,
        u32::MAX,
    );
    let err = backend.broadcast(&dusty).await.unwrap_err();
    assert_eq!(err.refusal(), Some("dust"), "{err}");
    let at_threshold = alice.spend(
        &[small],
        vec![
            TxOut::new(546, bob.script()),
            TxOut::new(7 * XPI - 2_000, alice.script()),
        ],
        0,
        u32::MAX,
    );
    assert_eq!(
        backend.test_accept(&at_threshold).await.unwrap(),
        Acceptance::Accepted
    );

    // Fee below the relay floor, a locktime in the future, an unknown coin.
    let no_fee = alice.spend(
        &[small],
        vec![TxOut::new(7 * XPI, bob.script())],
        0,
        u32::MAX,
    );
    assert!(backend
        .broadcast(&no_fee)
        .await
        .unwrap_err()
        .refusal()
        .unwrap()
        .starts_with("min relay fee not met"));
    let later = alice.spend(
        &[small],
        vec![TxOut::new(7 * XPI - 1_000, bob.script())],
        100,
        0,
    );
    assert_eq!(
        backend.broadcast(&later).await.unwrap_err().refusal(),
        Some("non-final")
    );
    let ghost = alice.spend(
        &[(OutPoint::new(pay.txid(), 7), XPI)],
        vec![TxOut::new(XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );
    assert!(backend
        .broadcast(&ghost)
        .await
        .unwrap_err()
        .refusal()
        .unwrap()
        .contains("missingorspent"));

    // A fresh coinbase must mature.
    let bob_coinbase = backend
        .unspent(&bob.script())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.output.value > 200 * XPI)
        .unwrap();
    let early = bob.spend(
        &[(bob_coinbase.outpoint, bob_coinbase.output.value)],
        vec![TxOut::new(XPI, alice.script())],
        0,
        u32::MAX,
    );
    assert_eq!(
        backend.broadcast(&early).await.unwrap_err().refusal(),
        Some("bad-txns-premature-spend-of-coinbase")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_drops_a_transaction_is_noticed_and_it_can_be_broadcast_again() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(3);
    let bob = Wallet::new(4);
    let (_devnet, backend) = start(dir.path(), vec![(alice.script(), 20 * XPI)]).await;
    let coin = backend.unspent(&alice.script()).await.unwrap()[0].clone();
    let pay = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(20 * XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );
    backend.broadcast(&pay).await.unwrap();
    mine(&backend, 2, &bob.address()).await;
    assert_eq!(
        backend.status(&pay).await.unwrap(),
        TxStatus::Confirmed {
            height: 1,
            depth: 2
        }
    );

    let reorg = backend
        .client()
        .call("reorg", json!([2, false]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reorg["dropped"], json!([pay.txid().to_display_hex()]));
    assert_eq!(
        backend.tip().await.unwrap().height,
        3,
        "the new branch is longer"
    );
    assert_eq!(
        backend.status(&pay).await.unwrap(),
        TxStatus::Unknown,
        "gone, inputs unspent again"
    );
    backend.broadcast(&pay).await.unwrap();
    assert_eq!(backend.status(&pay).await.unwrap(), TxStatus::Mempool);

    // invalidateblock returns a block's transactions to the mempool, like lotusd.
    let hashes = backend
        .client()
        .call("generatetoaddress", json!([1, bob.address()]))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        backend.status(&pay).await.unwrap(),
        TxStatus::Confirmed { depth: 1, .. }
    ));
    backend
        .client()
        .call("invalidateblock", json!([hashes[0]]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backend.status(&pay).await.unwrap(), TxStatus::Mempool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_and_mempool_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(5);
    let (devnet, backend) = start(dir.path(), vec![(alice.script(), 5 * XPI)]).await;
    mine(&backend, 4, &alice.address()).await;
    let coin = backend
        .unspent(&alice.script())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.output.value == 5 * XPI)
        .unwrap();
    let pay = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(5 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    backend.broadcast(&pay).await.unwrap();
    let tip = backend.tip().await.unwrap();
    devnet.shutdown();

    let (_devnet, backend) = start(dir.path(), vec![]).await;
    assert_eq!(backend.tip().await.unwrap(), tip);
    assert_eq!(backend.status(&pay).await.unwrap(), TxStatus::Mempool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_login_and_a_missing_node_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _) = start(dir.path(), vec![]).await;
    let wrong = ChainSpec::parse(&format!("rpc://__cookie__:nope@{}", devnet.address)).unwrap();
    let err = RpcBackend::new(RpcClient::from_spec(&wrong).unwrap())
        .tip()
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Unauthorized { .. }), "{err}");
    assert!(!err.to_string().contains("nope"));

    let address = devnet.address;
    devnet.shutdown();
    tokio::task::yield_now().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let spec = ChainSpec::parse(&format!("rpc://u:p@{closed}")).unwrap();
    let err = RpcBackend::new(RpcClient::from_spec(&spec).unwrap())
        .tip()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChainError::Unreachable { .. }),
        "{err} ({address})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_payment_from_the_backends_coins_is_accepted_with_the_fee_it_computed() {
    use wallet::{build_payment, Amount, Coin, PaymentRequest, Recipient, SpendKind};
    let dir = tempfile::tempdir().unwrap();
    let group = Wallet::new(6);
    let shop = Wallet::new(7);
    let funding = (0..5)
        .map(|i| (group.script(), (i + 1) * 3 * XPI + 17))
        .collect();
    let (_devnet, backend) = start(dir.path(), funding).await;
    let coins: Vec<Coin> = backend
        .unspent(&group.script())
        .await
        .unwrap()
        .into_iter()
        .map(|u| Coin {
            kind: SpendKind::of(&u.output.script_pubkey).unwrap(),
            confirmed: u.height.is_some(),
            outpoint: u.outpoint,
            output: u.output,
        })
        .collect();
    let request = PaymentRequest {
        recipients: vec![Recipient {
            script: shop.script(),
            amount: Amount::Sats(20 * XPI),
        }],
        fee_rate_per_kb: 2_000,
        change_script: group.script(),
        allow_unconfirmed: false,
    };
    let payment = build_payment(&request, &coins).unwrap();
    let signed = group.sign(payment.tx.clone(), &payment.spent_outputs);
    assert_eq!(
        signed.serialized_size(),
        payment.size,
        "the size was exact before signing"
    );
    assert_eq!(
        backend.test_accept(&signed).await.unwrap(),
        Acceptance::Accepted
    );
    backend.broadcast(&signed).await.unwrap();
    mine(&backend, 1, &shop.address()).await;
    let paid: i64 = backend
        .unspent(&shop.script())
        .await
        .unwrap()
        .iter()
        .filter(|u| u.output.value == 20 * XPI)
        .map(|u| u.output.value)
        .sum();
    assert_eq!(paid, 20 * XPI);
    let left: i64 = backend
        .unspent(&group.script())
        .await
        .unwrap()
        .iter()
        .map(|u| u.output.value)
        .sum();
    let before: i64 = coins.iter().map(|c| c.output.value).sum();
    assert_eq!(left, before - 20 * XPI - payment.fee);
}

/// Idle connections that never finish their headers (slowloris) are closed after the header
/// timeout, so they cannot hold every connection slot; a real client is then served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_real_clients_served() {
    use chain::devnet::server::{self, DevnetConfig, ServerLimits};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let devnet = server::start(DevnetConfig {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_interval: None,
        fund: vec![],
        limits: ServerLimits {
            max_connections: 4,
            header_timeout: std::time::Duration::from_millis(300),
            connection_timeout: std::time::Duration::from_secs(60),
        },
    })
    .await
    .unwrap();
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut socket = tokio::net::TcpStream::connect(devnet.address)
            .await
            .unwrap();
        socket
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(socket);
    }
    let backend = RpcBackend::new(
        RpcClient::from_spec(&ChainSpec::parse(&devnet.chain_spec()).unwrap()).unwrap(),
    );
    assert_eq!(
        backend.tip().await.unwrap().height,
        0,
        "served once the idle ones time out"
    );
    // The first idle connections were closed by the server (they read end-of-file or an error).
    let mut buffer = [0u8; 256];
    let closed = idle[0]
        .read(&mut buffer)
        .await
        .map_or(true, |n| n == 0 || buffer.starts_with(b"HTTP/1.1 408"));
    assert!(closed);
}

/// A wrong cookie of the right length is refused like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cookie_of_the_right_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _) = start(dir.path(), vec![]).await;
    let cookie = std::fs::read_to_string(&devnet.cookie_file).unwrap();
    let (user, secret) = cookie.split_once(':').unwrap();
    let forged: String = secret.chars().rev().collect();
    let spec = ChainSpec::parse(&format!("rpc://{user}:{forged}@{}", devnet.address)).unwrap();
    let err = RpcBackend::new(RpcClient::from_spec(&spec).unwrap())
        .tip()
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Unauthorized { .. }), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&devnet.cookie_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Each of lotusd's context-free and policy refusals, with its own reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_refuses_what_lotusd_refuses_with_its_reasons() {
    use lotus::script::{opcodes, Script};
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(21);
    let (_devnet, backend) = start(dir.path(), vec![(alice.script(), 10 * XPI)]).await;
    let coin = backend.unspent(&alice.script()).await.unwrap()[0].clone();
    let c = (coin.outpoint, coin.output.value);
    let reason = |tx| {
        let backend = backend.clone();
        async move {
            backend
                .broadcast(&tx)
                .await
                .unwrap_err()
                .refusal()
                .unwrap()
                .to_owned()
        }
    };
    let to_self = |v| TxOut::new(v, alice.script());
    let op_return = || {
        TxOut::new(
            0,
            Script::new()
                .push_opcode(opcodes::OP_RETURN)
                .push_slice(b"hi"),
        )
    };

    assert_eq!(
        reason(alice.spend(&[c, c], vec![to_self(XPI)], 0, u32::MAX)).await,
        "bad-txns-inputs-duplicate"
    );
    assert_eq!(
        reason(alice.spend(&[c], vec![to_self(-1), to_self(XPI)], 0, u32::MAX)).await,
        "bad-txns-vout-negative"
    );
    assert!(
        reason(alice.spend(&[c], vec![to_self(11 * XPI)], 0, u32::MAX))
            .await
            .starts_with("bad-txns-in-belowout")
    );
    assert_eq!(
        reason(alice.spend(
            &[c],
            vec![op_return(), op_return(), to_self(XPI)],
            0,
            u32::MAX
        ))
        .await,
        "multi-op-return"
    );
    let mut not_push_only = alice.spend(&[c], vec![to_self(XPI)], 0, u32::MAX);
    not_push_only.inputs[0].script_sig = Script::from_bytes(
        [
            not_push_only.inputs[0].script_sig.as_bytes(),
            &[opcodes::OP_RETURN],
        ]
        .concat(),
    );
    assert_eq!(reason(not_push_only).await, "scriptsig-not-pushonly");
    let mut no_outputs = alice.spend(&[c], vec![to_self(XPI)], 0, u32::MAX);
    no_outputs.outputs.clear();
    assert_eq!(reason(no_outputs).await, "bad-txns-vout-empty");
}

/// A child in the mempool that spends a confirmed parent survives the parent's block being
/// invalidated: the parent goes back first, then the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_block_returns_parents_before_their_mempool_children() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(22);
    let (_devnet, backend) = start(dir.path(), vec![(alice.script(), 10 * XPI)]).await;
    let coin = backend.unspent(&alice.script()).await.unwrap()[0].clone();
    let parent = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(10 * XPI - 1_000, alice.script())],
        0,
        u32::MAX,
    );
    backend.broadcast(&parent).await.unwrap();
    let hashes = backend
        .client()
        .call("generatetoaddress", json!([1, alice.address()]))
        .await
        .unwrap()
        .unwrap();
    let child = alice.spend(
        &[(OutPoint::new(parent.txid(), 0), 10 * XPI - 1_000)],
        vec![TxOut::new(10 * XPI - 2_000, alice.script())],
        0,
        u32::MAX,
    );
    backend.broadcast(&child).await.unwrap();
    backend
        .client()
        .call("invalidateblock", json!([hashes[0]]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backend.status(&parent).await.unwrap(), TxStatus::Mempool);
    assert_eq!(
        backend.status(&child).await.unwrap(),
        TxStatus::Mempool,
        "the child was kept"
    );
}

/// A loopback proxy in front of the devnet that, before it forwards the first request whose
/// body contains `marker`, lets `before` happen: an event lands exactly between two calls.
async fn proxy_with_hook(
    upstream: std::net::SocketAddr,
    marker: String,
    before: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut before = Some(Box::pin(before));
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            // One whole request: the headers, then Content-Length bytes of body.
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let read = client.read(&mut chunk).await.unwrap();
                assert!(read > 0, "the client hung up mid-request");
                request.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                let Some(head_end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= head_end + 4 + length {
                    break;
                }
            }
            if String::from_utf8_lossy(&request).contains(&marker) {
                if let Some(hook) = before.take() {
                    hook.await;
                }
            }
            let mut node = tokio::net::TcpStream::connect(upstream).await.unwrap();
            node.write_all(&request).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_landing_during_a_status_poll_is_not_taken_for_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Wallet::new(5);
    let bob = Wallet::new(6);
    let (devnet, direct) = start(dir.path(), vec![(alice.script(), 20 * XPI)]).await;
    let coin = direct.unspent(&alice.script()).await.unwrap()[0].clone();
    let pay = alice.spend(
        &[(coin.outpoint, coin.output.value)],
        vec![TxOut::new(20 * XPI - 1_000, bob.script())],
        0,
        u32::MAX,
    );

    // The poll finds neither the payment nor its outputs; the payment arrives (another
    // member's broadcast) just before the poll asks about the coin it spends.
    let sender = direct.clone();
    let sent = pay.clone();
    let proxy = proxy_with_hook(
        devnet.address,
        format!(
            "\"gettxout\",\"params\":[\"{}\"",
            coin.outpoint.txid.to_display_hex()
        ),
        async move {
            sender.broadcast(&sent).await.unwrap();
        },
    )
    .await;
    let spec = devnet
        .chain_spec()
        .replace(&devnet.address.to_string(), &proxy.to_string());
    let polling = RpcBackend::new(RpcClient::from_spec(&ChainSpec::parse(&spec).unwrap()).unwrap());
    assert_eq!(
        polling.status(&pay).await.unwrap(),
        TxStatus::Mempool,
        "its coin is spent by the payment itself"
    );
}
