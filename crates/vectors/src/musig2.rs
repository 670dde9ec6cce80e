//! musig2_lotus.json and taproot_musig2_lotus.json: every intermediate of lotus-sdk MuSig2
//! (key aggregation, nonces, b, R, e, partial signatures, aggregate) recomputed from the
//! inputs, plus the negative partial and final signatures, which must be rejected and blamed
//! on the right signer.

use lotus::schnorr::{self, Signature};
use lotus::secp256k1::PublicKey;
use lotus::{taproot, PrivateKey};
use musig::{
    AggregatedNonce, KeyAggContext, PartialSignature, PublicNonce, SecretNonce, Session, SpendPath,
};
use serde_json::Value;

use crate::util::{
    bool_field, case_id, cases, expect_eq, expect_hex, field, hex_array, hex_field, str_field,
    u64_field,
};
use crate::FileReport;

pub fn check(json: &Value, taproot: bool) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    let path = if taproot {
        SpendPath::TaprootKeyPath
    } else {
        SpendPath::Plain
    };
    for (index, case) in cases(json)?.iter().enumerate() {
        let id = case_id(case, index, &["id"]);
        match check_case(case, path) {
            Ok(negatives) => {
                report.record(&id, Ok(()));
                for (what, outcome) in negatives {
                    report.record(&format!("{id}/{what}"), outcome);
                }
            }
            Err(reason) => report.record(&id, Err(reason)),
        }
    }
    if let Some(add_scalar) = json.get("lotusd_add_scalar_vectors") {
        let add_cases = field(add_scalar, "cases")?
            .as_array()
            .ok_or("lotusd_add_scalar_vectors.cases is not an array")?;
        for (index, case) in add_cases.iter().enumerate() {
            report.record(
                &format!("lotusd-add-scalar-{index}"),
                check_add_scalar(case),
            );
        }
    }
    Ok(report)
}

fn point(v: &Value, name: &str) -> Result<PublicKey, String> {
    PublicKey::from_slice(&hex_field(v, name)?).map_err(|e| format!("`{name}` is not a point: {e}"))
}

fn points(v: &Value, name: &str) -> Result<Vec<PublicKey>, String> {
    field(v, name)?
        .as_array()
        .ok_or(format!("`{name}` is not an array"))?
        .iter()
        .map(|item| {
            let bytes = hex::decode(item.as_str().ok_or(format!("`{name}` item not a string"))?)
                .map_err(|e| format!("`{name}`: {e}"))?;
            PublicKey::from_slice(&bytes).map_err(|e| format!("`{name}` item: {e}"))
        })
        .collect()
}

fn hex_list(v: &Value, name: &str) -> Result<Vec<String>, String> {
    field(v, name)?
        .as_array()
        .ok_or(format!("`{name}` is not an array"))?
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or(format!("`{name}` item not a string"))
        })
        .collect()
}

/// A named sub-case and its outcome.
type SubCase = (String, Result<(), String>);

/// One vector case; returns the outcomes of its negative sub-cases.
fn check_case(case: &Value, path: SpendPath) -> Result<Vec<SubCase>, String> {
    let message: [u8; 32] = hex_array(case, "message")?;
    let input_keys = points(case, "input_public_keys")?;
    let context = KeyAggContext::new(&input_keys).map_err(|e| format!("key aggregation: {e}"))?;

    let key_agg = field(case, "key_agg")?;
    let sorted_hex: Vec<String> = context
        .sorted_keys()
        .iter()
        .map(|k| hex::encode(k.serialize()))
        .collect();
    expect_eq(
        "sorted_public_keys",
        sorted_hex,
        hex_list(key_agg, "sorted_public_keys")?,
    )?;
    expect_eq(
        "sorted_to_input_index",
        sorted_to_input(&input_keys, context.sorted_keys()),
        field(key_agg, "sorted_to_input_index")?
            .as_array()
            .ok_or("sorted_to_input_index not an array")?
            .iter()
            .map(|v| v.as_u64().unwrap_or(u64::MAX) as usize)
            .collect::<Vec<_>>(),
    )?;
    expect_hex("L", context.list_hash(), str_field(key_agg, "L")?)?;
    let coefficients: Vec<String> = (0..context.len())
        .map(|i| hex::encode(context.coefficient_hash(i).expect("index in range")))
        .collect();
    expect_eq(
        "coefficients",
        coefficients,
        hex_list(key_agg, "coefficients")?,
    )?;
    expect_eq(
        "aggregated_key",
        *context.aggregated_key(),
        point(key_agg, "aggregated_key")?,
    )?;
    expect_eq(
        "nonce_gen_key",
        *context.aggregated_key(),
        point(case, "nonce_gen_key")?,
    )?;

    if path == SpendPath::TaprootKeyPath {
        check_taproot_fields(field(case, "taproot")?, &context)?;
    }

    // Round 1: every signer's nonces from the published extra input.
    let signers = field(case, "signers")?
        .as_array()
        .ok_or("`signers` is not an array")?;
    expect_eq("number of signers", signers.len(), context.len())?;
    let mut secret_nonces = Vec::new();
    let mut public_nonces = Vec::new();
    let mut keys = Vec::new();
    for (i, signer) in signers.iter().enumerate() {
        expect_eq(
            "sorted_index",
            u64_field(signer, "sorted_index")? as usize,
            i,
        )?;
        let key = PrivateKey::from_slice(&hex_field(signer, "secret_key")?)
            .map_err(|e| format!("signer {i} secret_key: {e}"))?;
        expect_eq(
            "signer public key",
            key.public_key(),
            context.sorted_keys()[i],
        )?;
        let extra: [u8; 32] = hex_array(signer, "extra_input")?;
        let (secret, public) = SecretNonce::dangerous_from_known_extra_input(
            &key,
            context.aggregated_key(),
            Some(&message),
            &extra,
        );
        expect_eq(&format!("signer {i} R1"), public.r1, point(signer, "R1")?)?;
        expect_eq(&format!("signer {i} R2"), public.r2, point(signer, "R2")?)?;
        expect_hex(
            &format!("signer {i} public_nonce"),
            &public.serialize(),
            str_field(signer, "public_nonce")?,
        )?;
        secret_nonces.push(secret);
        public_nonces.push(public);
        keys.push(key);
    }

    let aggregated = AggregatedNonce::sum(&public_nonces).map_err(|e| e.to_string())?;
    let nonce_agg = field(case, "nonce_agg")?;
    expect_eq("nonce_agg.R1", aggregated.r1, point(nonce_agg, "R1")?)?;
    expect_eq("nonce_agg.R2", aggregated.r2, point(nonce_agg, "R2")?)?;
    expect_hex(
        "aggnonce",
        &aggregated.serialize(),
        str_field(nonce_agg, "aggnonce")?,
    )?;

    let session = Session::new(&context, path, &aggregated, &message).map_err(|e| e.to_string())?;
    expect_eq(
        "key_for_b_and_e",
        *session.signing_key(),
        point(case, "key_for_b_and_e")?,
    )?;
    expect_hex("b", session.nonce_coefficient_hash(), str_field(case, "b")?)?;
    expect_eq("R", *session.nonce_point(), point(case, "R")?)?;
    expect_eq(
        "R_y_is_qr",
        !session.nonce_negated(),
        bool_field(case, "R_y_is_qr")?,
    )?;
    expect_eq(
        "nonce_negated",
        session.nonce_negated(),
        bool_field(case, "nonce_negated")?,
    )?;
    expect_hex(
        "e",
        &session.challenge().to_be_bytes(),
        str_field(case, "e")?,
    )?;

    // Round 2: partial signatures, each verified, then the aggregate.
    let mut partials = Vec::new();
    for (i, ((signer, key), secret)) in signers.iter().zip(&keys).zip(secret_nonces).enumerate() {
        let effective = session
            .effective_nonce(&public_nonces[i])
            .map_err(|e| e.to_string())?;
        expect_eq(
            &format!("signer {i} R_eff"),
            effective,
            point(signer, "R_eff")?,
        )?;
        let partial = session
            .sign(i, key, secret)
            .map_err(|e| format!("signer {i}: {e}"))?;
        expect_hex(
            &format!("signer {i} partial_sig"),
            &partial.to_bytes(),
            str_field(signer, "partial_sig")?,
        )?;
        if !session.verify_partial(i, &public_nonces[i], &partial) {
            return Err(format!("signer {i}: own partial signature does not verify"));
        }
        partials.push(partial);
    }
    let partial_hex: Vec<String> = partials.iter().map(|p| hex::encode(p.to_bytes())).collect();
    expect_eq("partial_sigs", partial_hex, hex_list(case, "partial_sigs")?)?;
    expect_eq(
        "blame on honest partials",
        session
            .verify_all(&public_nonces, &partials)
            .map_err(|e| e.to_string())?,
        Vec::<usize>::new(),
    )?;
    let signature = session.aggregate(&partials).map_err(|e| e.to_string())?;
    expect_hex(
        "signature",
        &signature.to_bytes(),
        str_field(case, "signature")?,
    )?;
    expect_eq(
        "final signature verifies",
        session.verify_final(&signature),
        true,
    )?;
    if let Some(against_internal) = case.get("sdk_schnorr_verify_against_internal_key") {
        expect_eq(
            "signature against the internal key",
            schnorr::verify(&signature, &message, context.aggregated_key()),
            against_internal.as_bool().unwrap_or(true),
        )?;
    }

    let mut outcomes = Vec::new();
    for (k, negative) in field(case, "negative_partial_sigs")?
        .as_array()
        .ok_or("negative_partial_sigs is not an array")?
        .iter()
        .enumerate()
    {
        let kind = str_field(negative, "kind").unwrap_or("negative");
        let outcome = check_negative_partial(
            negative,
            &context,
            path,
            &aggregated,
            &public_nonces,
            &partials,
            &message,
        );
        outcomes.push((format!("negative-partial-{k}-{kind}"), outcome));
    }
    for (k, negative) in field(case, "negative_final")?
        .as_array()
        .ok_or("negative_final is not an array")?
        .iter()
        .enumerate()
    {
        let outcome = (|| {
            let bad = Signature::from_bytes(hex_array(negative, "signature")?);
            let expected = bool_field(negative, "expected_valid")?;
            expect_eq(
                "negative final verifies",
                session.verify_final(&bad),
                expected,
            )
        })();
        outcomes.push((format!("negative-final-{k}"), outcome));
    }
    Ok(outcomes)
}

/// Sorted position → input index, duplicates matched in input order.
fn sorted_to_input(input: &[PublicKey], sorted: &[PublicKey]) -> Vec<usize> {
    let mut used = vec![false; input.len()];
    sorted
        .iter()
        .map(|key| {
            let j = (0..input.len())
                .find(|&j| !used[j] && input[j] == *key)
                .unwrap_or(usize::MAX);
            if j != usize::MAX {
                used[j] = true;
            }
            j
        })
        .collect()
}

fn check_taproot_fields(tap: &Value, context: &KeyAggContext) -> Result<(), String> {
    let root: [u8; 32] = hex_array(tap, "merkle_root")?;
    expect_eq(
        "merkle_root is the key-path-only root",
        root,
        taproot::KEY_PATH_ONLY_ROOT,
    )?;
    let q = context.aggregated_key();
    expect_hex(
        "tweak",
        &taproot::tweak_hash(q, &root),
        str_field(tap, "tweak")?,
    )?;
    let commitment = taproot::commitment(q);
    expect_eq("commitment", commitment, point(tap, "commitment")?)?;
    let state = match tap.get("state").and_then(Value::as_str) {
        Some(s) => Some(
            <[u8; 32]>::try_from(hex::decode(s).map_err(|e| format!("state: {e}"))?)
                .map_err(|_| "state is not 32 bytes".to_string())?,
        ),
        None => None,
    };
    let script = lotus::script::Script::taproot_key_path(&commitment, state.as_ref());
    expect_hex(
        "script_pubkey",
        script.as_bytes(),
        str_field(tap, "script_pubkey")?,
    )?;
    use lotus::address::{taproot_address, Network};
    expect_eq(
        "address_mainnet",
        taproot_address(&commitment, Network::Mainnet).as_str(),
        str_field(tap, "address_mainnet")?,
    )?;
    expect_eq(
        "address_testnet",
        taproot_address(&commitment, Network::Testnet).as_str(),
        str_field(tap, "address_testnet")?,
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_negative_partial(
    negative: &Value,
    context: &KeyAggContext,
    path: SpendPath,
    aggregated: &AggregatedNonce,
    nonces: &[PublicNonce],
    honest: &[PartialSignature],
    case_message: &[u8; 32],
) -> Result<(), String> {
    let faulty = u64_field(negative, "faulty_signer_index")? as usize;
    let verified_as = u64_field(negative, "verified_as_signer_index")? as usize;
    let expected_valid = bool_field(negative, "expected_valid")?;
    let message: [u8; 32] = hex_array(negative, "message")?;
    let bytes = hex_field(negative, "partial_sig")?;
    let partial = match PartialSignature::from_slice(&bytes) {
        Ok(partial) => partial,
        // Strict parsing rejects s_i >= n (lotus-sdk reduces it instead).
        Err(_) => return expect_eq("partial signature accepted", false, expected_valid),
    };
    let session = Session::new(context, path, aggregated, &message).map_err(|e| e.to_string())?;
    let nonce = nonces
        .get(verified_as)
        .ok_or("verified_as_signer_index out of range")?;
    expect_eq(
        "negative partial verifies",
        session.verify_partial(verified_as, nonce, &partial),
        expected_valid,
    )?;
    // Blame: substituted into an otherwise honest set, exactly the faulty signer is named.
    if verified_as == faulty && message == *case_message {
        let mut partials = honest.to_vec();
        *partials
            .get_mut(faulty)
            .ok_or("faulty_signer_index out of range")? = partial;
        let blamed = session
            .verify_all(nonces, &partials)
            .map_err(|e| e.to_string())?;
        expect_eq("blamed signers", blamed, vec![faulty])?;
    }
    Ok(())
}

fn check_add_scalar(case: &Value) -> Result<(), String> {
    let key = point(case, "public_key")?;
    let tweaked =
        taproot::add_scalar(&key, &hex_array(case, "tweak")?).map_err(|e| e.to_string())?;
    expect_eq("tweaked", tweaked, point(case, "tweaked")?)
}
