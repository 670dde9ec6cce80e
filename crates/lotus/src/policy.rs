//! lotusd's relay policy (src/policy/policy.h), the part a wallet must respect to be relayed:
//! standard output scripts, dust, size, the relay fee floor. The devnet enforces it and the
//! wallet builds to it.
//! Sizes and rules from lotusd src/policy/policy.h and policy.cpp.

use crate::script::{opcodes, Script};
use crate::tx::{Transaction, TxOut};

/// MAX_STANDARD_TX_SIZE.
pub const MAX_STANDARD_TX_SIZE: usize = 100_000;
/// The default relay fee floor and dust relay fee, in satoshis per 1000 bytes.
pub const DEFAULT_RELAY_FEE_PER_KB: i64 = 1_000;
/// The largest standard OP_RETURN script (MAX_OP_RETURN_RELAY).
pub const MAX_OP_RETURN_RELAY: usize = 223;
/// MAX_MONEY is unbounded on Lotus (inflationary); a sanity bound on a single amount.
pub const MAX_AMOUNT: i64 = 21_000_000_000 * SATS_PER_XPI;
/// Satoshis per XPI (lotusd `src/amount.h`).
pub const SATS_PER_XPI: i64 = 1_000_000;

/// The output script kinds lotusd relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardScript {
    P2pkh,
    P2sh,
    Taproot,
    NullData,
}

pub fn classify(script: &Script) -> Option<StandardScript> {
    if script.as_p2pkh().is_some() {
        Some(StandardScript::P2pkh)
    } else if script.as_p2sh().is_some() {
        Some(StandardScript::P2sh)
    } else if script.as_taproot().is_some() {
        Some(StandardScript::Taproot)
    } else if script.as_bytes().first() == Some(&opcodes::OP_RETURN)
        && script.len() <= MAX_OP_RETURN_RELAY
        && Script::from_bytes(script.as_bytes()[1..].to_vec())
            .push_only_stack()
            .is_some()
    {
        Some(StandardScript::NullData)
    } else {
        None
    }
}

/// GetDustThreshold: three times the fee of spending the output (148 bytes of input).
pub fn dust_threshold(output: &TxOut, dust_relay_fee_per_kb: i64) -> i64 {
    if output.script_pubkey.as_bytes().first() == Some(&opcodes::OP_RETURN) {
        return 0;
    }
    let spend_size = output.to_bytes().len() as i64 + 148;
    3 * spend_size * dust_relay_fee_per_kb / 1000
}

pub fn is_dust(output: &TxOut, dust_relay_fee_per_kb: i64) -> bool {
    output.value < dust_threshold(output, dust_relay_fee_per_kb)
}

/// The minimum fee for `size` bytes at `fee_per_kb` (rounded up, at least one satoshi per
/// kB-fraction like CFeeRate::GetFee).
pub fn fee_for_size(size: usize, fee_per_kb: i64) -> i64 {
    let fee = fee_per_kb * size as i64 / 1000;
    if fee == 0 && size != 0 && fee_per_kb > 0 {
        1
    } else {
        fee
    }
}

/// Why a transaction is not standard, in lotusd's words.
pub fn check_standard(tx: &Transaction) -> Result<(), &'static str> {
    if !(1..=2).contains(&tx.version) {
        return Err("version");
    }
    if tx.serialized_size() > MAX_STANDARD_TX_SIZE {
        return Err("tx-size");
    }
    for input in &tx.inputs {
        if input.script_sig.len() > 1650 {
            return Err("scriptsig-size");
        }
        if input.script_sig.push_only_stack().is_none() {
            return Err("scriptsig-not-pushonly");
        }
    }
    let mut null_data = 0;
    for output in &tx.outputs {
        match classify(&output.script_pubkey) {
            None => return Err("scriptpubkey"),
            Some(StandardScript::NullData) => null_data += 1,
            Some(_) if is_dust(output, DEFAULT_RELAY_FEE_PER_KB) => return Err("dust"),
            Some(_) => {}
        }
    }
    if null_data > 1 {
        return Err("multi-op-return");
    }
    Ok(())
}
