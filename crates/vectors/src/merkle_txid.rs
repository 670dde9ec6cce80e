//! merkle_txid.json: Lotus txid (merkle form), tx hash, input/output merkle roots and heights,
//! and where given the spent-outputs root, BIP143 hashes, amount sums and the block merkle root.
//! Hashes in the file are in display order except `txid_internal`.

use std::collections::BTreeMap;

use lotus::hash::sha256d;
use lotus::merkle::merkle_root;
use lotus::script::Script;
use lotus::sighash::SighashCache;
use lotus::tx::{display_hex, outputs_merkle, Transaction, TxOut};
use serde_json::Value;

use crate::util::{case_id, cases, field, hex_field, i64_field, str_field};
use crate::FileReport;

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, case) in cases(json)?.iter().enumerate() {
        report.record(&case_id(case, index, &["id"]), check_case(case));
    }
    Ok(report)
}

/// Every value this checker can compute for a case, as the file writes it (display-order hex
/// strings, JSON integers).
fn computed_values(case: &Value) -> Result<BTreeMap<&'static str, Value>, String> {
    let raw = hex_field(case, "raw_tx")?;
    let tx = Transaction::decode(&raw).map_err(|e| format!("raw_tx does not decode: {e}"))?;
    if tx.encode() != raw {
        return Err("re-encoding raw_tx gives different bytes".into());
    }
    let txid = tx.txid();
    let hash = tx.hash();
    let inputs = tx.inputs_merkle();
    let outputs = tx.outputs_merkle();

    let mut v: BTreeMap<&'static str, Value> = BTreeMap::new();
    v.insert("txid", txid.to_display_hex().into());
    v.insert("txid_internal", hex::encode(txid.0).into());
    v.insert("tx_hash", display_hex(&hash).into());
    // lotus-tx JSON (test/util/data) calls the tx hash `hash`.
    v.insert("hash", display_hex(&hash).into());
    v.insert("inputs_merkle_root", display_hex(&inputs.root).into());
    v.insert("inputs_merkle_height", inputs.height.into());
    v.insert("outputs_merkle_root", display_hex(&outputs.root).into());
    v.insert("outputs_merkle_height", outputs.height.into());

    let (prevouts, sequences, outs) = SighashCache::new(&tx).bip143_hashes();
    v.insert("hashPrevouts", display_hex(&prevouts).into());
    v.insert("hashSequence", display_hex(&sequences).into());
    v.insert("hashOutputs", display_hex(&outs).into());
    let outputs_sum = amount_sum(&tx.outputs);
    v.insert("amount_outputs_sum", outputs_sum.into());

    if let Some(spent) = case.get("spent_outputs") {
        let spent = parse_spent_outputs(spent)?;
        let root = outputs_merkle(&spent);
        v.insert("spent_outputs_merkle_root", display_hex(&root.root).into());
        v.insert("spent_outputs_merkle_height", root.height.into());
        let inputs_sum = amount_sum(&spent);
        v.insert("amount_inputs_sum", inputs_sum.into());
    }

    // A block holding only this transaction: leaf SHA256d(tx hash || txid), lotusd
    // `BlockMerkleRoot`.
    let leaf = sha256d(&[hash.as_slice(), txid.0.as_slice()].concat());
    v.insert(
        "block_merkle_root",
        display_hex(&merkle_root(&[leaf]).root).into(),
    );
    Ok(v)
}

fn check_case(case: &Value) -> Result<(), String> {
    let values = computed_values(case)?;
    let mut errors = Vec::new();
    let mut compare = |name: &str, want: &Value| match values.get(name) {
        Some(got) if got == want => {}
        Some(got) => errors.push(format!("{name}: got {got}, expected {want}")),
        None => errors.push(format!("{name}: given but not computable here")),
    };
    // Fields that are present must match; these describe the transaction itself.
    for name in [
        "txid",
        "txid_internal",
        "tx_hash",
        "inputs_merkle_root",
        "inputs_merkle_height",
        "outputs_merkle_root",
        "outputs_merkle_height",
    ] {
        compare(name, field(case, name)?);
    }
    for name in [
        "spent_outputs_merkle_root",
        "spent_outputs_merkle_height",
        "hashPrevouts",
        "hashSequence",
        "hashOutputs",
        "amount_inputs_sum",
        "amount_outputs_sum",
        "block_merkle_root",
    ] {
        if let Some(want) = case.get(name) {
            compare(name, want);
        }
    }
    // Values asserted by lotusd itself: every one must be one we compute.
    if let Some(source) = case.get("expected_from_source") {
        let source = source
            .as_object()
            .ok_or("expected_from_source is not an object")?;
        for (name, want) in source {
            compare(name, want);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Sum of values as lotusd's unchecked `Amount` addition would wrap (vector data is untrusted).
fn amount_sum(outputs: &[TxOut]) -> i64 {
    outputs
        .iter()
        .fold(0i64, |acc, o| acc.wrapping_add(o.value))
}

fn parse_spent_outputs(v: &Value) -> Result<Vec<TxOut>, String> {
    v.as_array()
        .ok_or("spent_outputs is not an array")?
        .iter()
        .map(|o| {
            let value = i64_field(o, "value")?;
            let script = hex::decode(str_field(o, "script_pubkey")?)
                .map_err(|e| format!("spent output script: {e}"))?;
            Ok(TxOut::new(value, Script::from(script)))
        })
        .collect()
}
