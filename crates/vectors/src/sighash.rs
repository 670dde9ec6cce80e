//! sighash.json (lotusd, verbatim): legacy / BIP143 / SIGHASH_LOTUS digests of random
//! transactions, three columns per row. Harness as lotusd `sighash_from_data`:
//! - amount 0 for the signed input;
//! - spent outputs = one default `CTxOut` (value -1 sat, empty script) per input, except that
//!   the signed input's has `script`; execution data (0xffffffff, SHA256d(script));
//! - columns: flags FORKID ("regular"), none ("no forkid": always the legacy algorithm),
//!   FORKID + REPLAY_PROTECTION. Expected digests are in display (byte-reversed) order.

use lotus::script::Script;
use lotus::sighash::{ExecutionData, SigHashType, SighashCache, SighashFlags};
use lotus::tx::{display_hex, Transaction, TxOut};
use serde_json::Value;

use crate::util::array_rows;
use crate::FileReport;

const COLUMNS: [(&str, SighashFlags); 3] = [
    (
        "regular",
        SighashFlags {
            enable_forkid: true,
            replay_protection: false,
        },
    ),
    (
        "no forkid",
        SighashFlags {
            enable_forkid: false,
            replay_protection: false,
        },
    ),
    (
        "replay protected",
        SighashFlags {
            enable_forkid: true,
            replay_protection: true,
        },
    ),
];

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, row) in array_rows(json)? {
        // One-element rows are comments (the header), as in lotusd's harness.
        if row.len() <= 1 {
            continue;
        }
        report.record(&format!("row {index}"), check_row(row));
    }
    Ok(report)
}

fn check_row(row: &[Value]) -> Result<(), String> {
    let str_at = |i: usize, name: &str| {
        row.get(i)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name} is missing or not a string"))
    };
    let tx_bytes =
        hex::decode(str_at(0, "raw_transaction")?).map_err(|e| format!("tx hex: {e}"))?;
    let tx = Transaction::decode(&tx_bytes).map_err(|e| format!("tx does not decode: {e}"))?;
    let script =
        Script::from(hex::decode(str_at(1, "script")?).map_err(|e| format!("script: {e}"))?);
    let input_index = row
        .get(2)
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .ok_or("input_index")?;
    // A signed 32-bit integer in the file; its bit pattern is the hash type.
    let hash_type = row
        .get(3)
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok())
        .map(|v| SigHashType::from_u32(v as u32))
        .ok_or("hashType is not a 32-bit integer")?;

    let mut spent_outputs = vec![TxOut::default(); tx.inputs.len()];
    spent_outputs
        .get_mut(input_index)
        .ok_or("input_index out of range")?
        .script_pubkey = script.clone();
    let cache = SighashCache::with_spent_outputs(&tx, &spent_outputs)
        .map_err(|e| format!("precompute: {e}"))?;
    let exec = ExecutionData::for_script(&script);

    let mut errors = Vec::new();
    for (column, (name, flags)) in COLUMNS.iter().enumerate() {
        let want = str_at(4 + column, name)?;
        match cache.signature_hash(input_index, &script, 0, hash_type, Some(&exec), *flags) {
            Ok(d) if display_hex(&d) == want => {}
            Ok(d) => errors.push(format!("{name}: got {}, expected {want}", display_hex(&d))),
            Err(e) => errors.push(format!("{name}: failed ({e}), expected {want}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "hash type {:#010x}: {}",
            hash_type.raw(),
            errors.join("; ")
        ))
    }
}
