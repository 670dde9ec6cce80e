//! Property tests for the decoders that see untrusted bytes: they never panic, and what they
//! accept re-encodes to exactly the same bytes.

use lotus::address::{AddressType, Network, XAddress, XAddressContent};
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use proptest::prelude::*;

fn script() -> impl Strategy<Value = Script> {
    // Mostly short scripts, sometimes long enough for 3-byte compact sizes.
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 250..300),
    ]
    .prop_map(Script::from)
}

fn tx_in() -> impl Strategy<Value = TxIn> {
    (any::<[u8; 32]>(), any::<u32>(), script(), any::<u32>()).prop_map(|(txid, vout, s, seq)| {
        TxIn {
            prev_out: OutPoint::new(TxId(txid), vout),
            script_sig: s,
            sequence: seq,
        }
    })
}

fn tx_out() -> impl Strategy<Value = TxOut> {
    (any::<i64>(), script()).prop_map(|(v, s)| TxOut::new(v, s))
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<i32>(),
        prop::collection::vec(tx_in(), 0..6),
        prop::collection::vec(tx_out(), 0..6),
        any::<u32>(),
    )
        .prop_map(|(version, inputs, outputs, lock_time)| Transaction {
            version,
            inputs,
            outputs,
            lock_time,
        })
}

fn network() -> impl Strategy<Value = Network> {
    prop::sample::select(Network::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tx_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(tx) = Transaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes);
        }
    }

    #[test]
    fn tx_decode_never_panics_on_mutated_transactions(
        tx in transaction(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = tx.encode();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = Transaction::decode(&bytes);
        let _ = Transaction::decode(&bytes[..cut.index(bytes.len())]);
    }

    #[test]
    fn tx_encode_decode_roundtrip(tx in transaction()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), tx.serialized_size());
        let decoded = Transaction::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.txid(), tx.txid());
        prop_assert_eq!(&decoded, &tx);
    }

    #[test]
    fn xaddress_roundtrip(
        network in network(),
        kind in any::<u8>(),
        payload in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let addr = XAddress { network, kind: AddressType::from_byte(kind), payload };
        let s = addr.encode();
        prop_assert_eq!(XAddress::decode(&s).unwrap(), addr);
    }

    #[test]
    fn xaddress_decode_never_panics(s in "\\PC{0,80}") {
        let _ = XAddressContent::decode(&s);
        let _ = XAddress::decode(&s);
        for n in Network::ALL {
            let _ = XAddress::parse(&s, n);
        }
    }

    #[test]
    fn xaddress_single_character_changes_are_caught(
        payload in prop::collection::vec(any::<u8>(), 20..40),
        at in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".chars().collect::<Vec<_>>()
        ),
    ) {
        let addr = XAddress { network: Network::Mainnet, kind: AddressType::ScriptPubKey, payload };
        let s = addr.encode();
        // Change one character of the Base58 body (after "lotus_").
        let body_start = 6;
        let i = body_start + at.index(s.len() - body_start);
        let mut chars: Vec<char> = s.chars().collect();
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        // Either it fails, or (2^-32 chance) it decodes to something else entirely.
        if let Ok(other) = XAddress::decode(&changed) {
            prop_assert_ne!(other, addr);
        }
    }
}
