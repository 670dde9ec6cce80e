//! sighash_lotus.json (lotusd, verbatim): SIGHASH_LOTUS preimages with execution data.
//!
//! Each row's preimage is given as nested parts (an array part is the SHA256d of its
//! processed elements); the digest SHA256d(preimage) must equal ours, and rows marked
//! `["failure"]` must fail. Harness as lotusd `lotus_sighash_from_data`: execution data is
//! (codeseparator_pos, SHA256d(spent_outputs[input_index].script)).

use lotus::hash::sha256d;
use lotus::script::Script;
use lotus::sighash::{ExecutionData, SigHashType, SighashCache, SighashFlags};
use lotus::tx::{Transaction, TxOut};
use serde_json::Value;

use crate::script_notation::parse_script;
use crate::util::array_rows;
use crate::FileReport;

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, row) in array_rows(json)? {
        // lotusd treats rows shorter than the vector shape as comments.
        if row.len() < 4 {
            continue;
        }
        let comment = row.get(7).and_then(Value::as_str).unwrap_or("");
        report.record(&format!("row {index} ({comment})"), check_row(row));
    }
    Ok(report)
}

fn check_row(row: &[Value]) -> Result<(), String> {
    let field = |i: usize, name: &str| row.get(i).ok_or_else(|| format!("missing {name}"));
    let tx_hex: String = field(0, "tx")?
        .as_array()
        .ok_or("tx is not an array")?
        .iter()
        .map(|p| p.as_str().ok_or("tx part is not a string"))
        .collect::<Result<_, _>>()?;
    let tx_bytes = hex::decode(&tx_hex).map_err(|e| format!("tx hex: {e}"))?;
    let tx = Transaction::decode(&tx_bytes).map_err(|e| format!("tx does not decode: {e}"))?;

    let spent_outputs = field(1, "spent_outputs")?
        .as_array()
        .ok_or("spent_outputs is not an array")?
        .iter()
        .map(parse_spent_output)
        .collect::<Result<Vec<TxOut>, String>>()?;
    let hash_type = parse_hash_type(field(2, "sighash_type")?.as_str().ok_or("sighash_type")?)?;
    let input_index = usize::try_from(field(3, "input_index")?.as_u64().ok_or("input_index")?)
        .map_err(|e| format!("input_index: {e}"))?;
    let codesep = u32::try_from(field(4, "codeseparator_pos")?.as_u64().ok_or("codesep")?)
        .map_err(|e| format!("codeseparator_pos: {e}"))?;
    let flags = parse_flags(field(5, "script_flags")?.as_str().ok_or("script_flags")?)?;
    let preimage = field(6, "sighash_preimage")?;

    let spent_script = &spent_outputs
        .get(input_index)
        .ok_or("input_index has no spent output")?
        .script_pubkey;
    let exec = ExecutionData::for_script(spent_script).with_codeseparator_pos(codesep);
    let cache = SighashCache::with_spent_outputs(&tx, &spent_outputs)
        .map_err(|e| format!("precompute: {e}"))?;
    // script_code and amount only matter for FORKID/legacy rows, which this file has none of;
    // pass what lotusd's harness would (the spent output).
    let amount = spent_outputs[input_index].value;
    let ours = cache.signature_hash(
        input_index,
        spent_script,
        amount,
        hash_type,
        Some(&exec),
        flags,
    );

    if is_failure_marker(preimage) {
        return match ours {
            Err(_) => Ok(()),
            Ok(d) => Err(format!("expected failure, got digest {}", hex::encode(d))),
        };
    }
    let mut bytes = Vec::new();
    flatten_preimage(preimage, &mut bytes)?;
    let want = sha256d(&bytes);
    match ours {
        Ok(d) if d == want => Ok(()),
        Ok(d) => Err(format!(
            "digest {} != SHA256d(preimage) {}",
            hex::encode(d),
            hex::encode(want)
        )),
        Err(e) => Err(format!("sighash failed: {e}")),
    }
}

fn parse_spent_output(v: &Value) -> Result<TxOut, String> {
    let pair = v.as_array().ok_or("spent output is not [value, script]")?;
    let value = pair
        .first()
        .and_then(Value::as_i64)
        .ok_or("spent output value")?;
    let script = pair
        .get(1)
        .and_then(Value::as_str)
        .ok_or("spent output script")?;
    Ok(TxOut::new(value, Script::from(parse_script(script)?)))
}

/// `ALL|LOTUS|ANYONECANPAY` style names.
pub(crate) fn parse_hash_type(s: &str) -> Result<SigHashType, String> {
    let mut raw = 0u32;
    for part in s.split('|') {
        raw |= match part.trim() {
            "ALL" => SigHashType::ALL,
            "NONE" => SigHashType::NONE,
            "SINGLE" => SigHashType::SINGLE,
            "FORKID" => SigHashType::FORKID,
            "LOTUS" => SigHashType::LOTUS,
            "ANYONECANPAY" => SigHashType::ANYONECANPAY,
            other => return Err(format!("unknown sighash flag {other:?}")),
        };
    }
    Ok(SigHashType::from_u32(raw))
}

fn parse_flags(s: &str) -> Result<SighashFlags, String> {
    let mut flags = SighashFlags {
        enable_forkid: false,
        replay_protection: false,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "SIGHASH_FORKID" => flags.enable_forkid = true,
            "REPLAY_PROTECTION" => flags.replay_protection = true,
            // Flags that do not change the digest.
            "NONE" => {}
            other => return Err(format!("unknown script flag {other:?}")),
        }
    }
    Ok(flags)
}

fn is_failure_marker(v: &Value) -> bool {
    matches!(v.as_array().map(Vec::as_slice), Some([Value::String(s)]) if s == "failure")
}

/// A string part is hex appended as-is; an array part is SHA256d of its processed elements.
fn flatten_preimage(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let parts = v.as_array().ok_or("preimage is not an array")?;
    for part in parts {
        match part {
            Value::String(s) => {
                out.extend(hex::decode(s).map_err(|e| format!("preimage part {s:?}: {e}"))?)
            }
            Value::Array(_) => {
                let mut inner = Vec::new();
                flatten_preimage(part, &mut inner)?;
                out.extend_from_slice(&sha256d(&inner));
            }
            other => return Err(format!("preimage part {other} is neither hex nor array")),
        }
    }
    Ok(())
}
