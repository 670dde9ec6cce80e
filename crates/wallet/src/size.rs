//! Serialized sizes of signed Lotus transactions, byte for byte.

use lotus::tx::TxOut;

use crate::select::SpendKind;

/// version (4) + locktime (4).
const FIXED: usize = 8;

pub fn compact_size_len(n: usize) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The size of one signed input: outpoint (36) + scriptSig length + scriptSig + sequence (4).
pub fn input_size(kind: SpendKind) -> usize {
    let script_sig = match kind {
        // <sig64||hashtype> <33-byte key>
        SpendKind::P2pkh => (1 + 65) + (1 + 33),
        // <sig64||hashtype>
        SpendKind::TaprootKeyPath => 1 + 65,
    };
    36 + compact_size_len(script_sig) + script_sig + 4
}

pub fn output_size(output: &TxOut) -> usize {
    output.to_bytes().len()
}

/// The signed size of a transaction spending `inputs` to `outputs`.
pub fn transaction_size(inputs: &[SpendKind], outputs: &[TxOut]) -> usize {
    FIXED
        + compact_size_len(inputs.len())
        + inputs.iter().map(|k| input_size(*k)).sum::<usize>()
        + compact_size_len(outputs.len())
        + outputs.iter().map(output_size).sum::<usize>()
}
