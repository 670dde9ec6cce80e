//! Chronik addresses scripts as `/script/{type}/{payload}`, with lotus-sdk's script types:
//! `p2pkh` and `p2sh` (the 20-byte hash), `p2pk` (the key), `p2tr-commitment` (Lotus Taproot
//! without state: the 33-byte commitment), `p2tr-state` (with state: the 32-byte state) and
//! `other` (the whole script).

use lotus::script::{opcodes, Script};

/// The type and payload under which an indexer files `script`.
pub fn of(script: &Script) -> (&'static str, Vec<u8>) {
    if let Some(hash) = script.as_p2pkh() {
        return ("p2pkh", hash.to_vec());
    }
    if let Some(hash) = script.as_p2sh() {
        return ("p2sh", hash.to_vec());
    }
    if let Some(taproot) = script.as_taproot() {
        return match taproot.state {
            None => ("p2tr-commitment", taproot.commitment.to_vec()),
            Some(state) => ("p2tr-state", state.to_vec()),
        };
    }
    if let Some(key) = script.as_p2pk() {
        return ("p2pk", key.to_vec());
    }
    ("other", script.as_bytes().to_vec())
}

/// Whether `script` is filed under `kind`/`payload` (the indexer's side of [`of`]).
pub fn matches(kind: &str, payload: &[u8], script: &Script) -> bool {
    let (own_kind, own_payload) = of(script);
    own_kind == kind && own_payload == payload
}

/// Whether `kind` is one of the script types an indexer knows.
pub fn is_known(kind: &str) -> bool {
    matches!(
        kind,
        "p2pkh" | "p2sh" | "p2pk" | "p2tr-commitment" | "p2tr-state" | "other"
    )
}

/// The script of a Taproot output without state, from its commitment (as the indexer would
/// build it for a `p2tr-commitment` query).
pub fn taproot_without_state(commitment: &[u8; 33]) -> Script {
    let mut bytes = vec![opcodes::OP_SCRIPTTYPE, opcodes::OP_1, 33];
    bytes.extend_from_slice(commitment);
    Script::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotus::key::PrivateKey;

    #[test]
    fn every_standard_script_is_filed_under_its_lotus_sdk_type() {
        let key = PrivateKey::from_bytes(&[3; 32]).unwrap().public_key();
        let p2pkh = Script::p2pkh_for_key(&key);
        assert_eq!(of(&p2pkh).0, "p2pkh");
        assert_eq!(of(&p2pkh).1, p2pkh.as_p2pkh().unwrap());
        assert_eq!(of(&Script::p2sh(&[7; 20])), ("p2sh", vec![7; 20]));
        let taproot = Script::taproot_key_path(&key, None);
        assert_eq!(of(&taproot), ("p2tr-commitment", key.serialize().to_vec()));
        assert_eq!(taproot_without_state(&key.serialize()), taproot);
        let with_state = Script::taproot_key_path(&key, Some(&[9; 32]));
        assert_eq!(of(&with_state), ("p2tr-state", vec![9; 32]));
        let p2pk = Script::new()
            .push_slice(&key.serialize())
            .push_opcode(opcodes::OP_CHECKSIG);
        assert_eq!(of(&p2pk), ("p2pk", key.serialize().to_vec()));
        let burn = Script::new().push_opcode(opcodes::OP_RETURN);
        assert_eq!(of(&burn), ("other", vec![opcodes::OP_RETURN]));
        assert!(matches("p2pkh", &p2pkh.as_p2pkh().unwrap(), &p2pkh));
        assert!(!matches("p2sh", &p2pkh.as_p2pkh().unwrap(), &p2pkh));
        assert!(is_known("p2tr-commitment") && !is_known("p2wpkh"));
    }
}
