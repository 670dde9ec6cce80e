//! schnorr.json: Lotus Schnorr verify known answers, deterministic signing KATs, and key
//! consistency (secret → public, compressed ↔ uncompressed).

use lotus::schnorr::{self, Signature};
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use serde_json::Value;

use crate::util::{bool_field, case_id, cases, expect_eq, expect_hex, hex_array, hex_field};
use crate::FileReport;

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, case) in cases(json)?.iter().enumerate() {
        report.record(&case_id(case, index, &["id"]), check_case(case));
    }
    Ok(report)
}

fn check_case(case: &Value) -> Result<(), String> {
    let public_key_bytes = hex_field(case, "public_key")?;
    let public_key = PublicKey::from_slice(&public_key_bytes)
        .map_err(|e| format!("public_key does not parse: {e}"))?;
    if let Some(uncompressed) = case.get("public_key_uncompressed").and_then(Value::as_str) {
        let bytes =
            hex::decode(uncompressed).map_err(|e| format!("public_key_uncompressed: {e}"))?;
        let parsed = PublicKey::from_slice(&bytes).map_err(|e| format!("uncompressed key: {e}"))?;
        expect_eq("uncompressed key", parsed, public_key)?;
    }
    let message: [u8; 32] = hex_array(case, "message")?;
    let signature = Signature::from_bytes(hex_array(case, "signature")?);
    let valid = bool_field(case, "valid")?;
    expect_eq(
        "verify",
        schnorr::verify(&signature, &message, &public_key),
        valid,
    )?;

    let secret = case.get("secret_key").and_then(Value::as_str);
    if let Some(secret) = secret {
        let secret = hex::decode(secret).map_err(|e| format!("secret_key: {e}"))?;
        let key = PrivateKey::from_slice(&secret).map_err(|e| format!("secret_key: {e}"))?;
        // Cross-key vectors pair a signature with another key; the public key must match the
        // secret only where the signature is meant to be valid.
        if valid {
            expect_eq("public key of secret_key", key.public_key(), public_key)?;
        }
        let deterministic = case.get("deterministic_nonce").and_then(Value::as_bool);
        let reproducible = deterministic.unwrap_or(false) || case.get("rfc6979_k").is_some();
        if valid && reproducible {
            let signed = schnorr::sign(&key, &message);
            expect_hex(
                "deterministic signature",
                &signed.to_bytes(),
                &hex::encode(signature.to_bytes()),
            )?;
        }
    }
    Ok(())
}
