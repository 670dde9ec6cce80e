//! Signature hashes: what a signature on a Lotus transaction input commits to.
//!
//! Three algorithms, selected by the hash type's algorithm bits (lotusd `SignatureHash`):
//! - SIGHASH_FORKID (0x40): the BCH BIP143 digest ([`SighashCache::bip143`]). The wallet signs
//!   P2PKH inputs with 0x41.
//! - SIGHASH_LOTUS (0x60): commits to every spent output and to merkle roots of the inputs and
//!   outputs ([`SighashCache::lotus`]). The wallet signs Taproot key-path inputs with 0x61
//!   (spend type 0, no execution data).
//! - Legacy (0x00), original Bitcoin including the SIGHASH_SINGLE "one" bug. Lotus consensus
//!   rejects it (SCRIPT_ENABLE_SIGHASH_FORKID is always on); it exists only so that lotusd's
//!   `sighash.json` "no forkid" column can be checked. **The wallet never signs with it.**
//!
//! Per-transaction hashes are computed once in [`SighashCache`], so signing or verifying every
//! input of a k-input transaction costs O(k) hashing, not O(k²).
//!
//! Digests are the raw SHA256d output (the bytes Schnorr signs), not display order.

use crate::hash::{sha256d, Sha256dWriter};
use crate::merkle::MerkleRoot;
use crate::script::{self, opcodes::OP_CODESEPARATOR, Instruction, Script};
use crate::tx::{outputs_merkle, write_compact_size, write_script, Transaction, TxOut};

/// A 32-bit signature hash type: the low byte is what a transaction signature carries; bits
/// 8..32 are the fork value (0 unless replay protection rewrites it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigHashType(u32);

/// The output-selection part (`raw & 0x1f`; the unused bits 0x1c make other values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseType {
    All,
    None,
    Single,
    /// Any other value of the low five bits.
    Unsupported(u8),
}

/// The algorithm bits (`raw & 0x60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Legacy,
    /// 0x20, reserved: no digest exists.
    Reserved,
    ForkId,
    Lotus,
}

impl SigHashType {
    pub const ALL: u32 = 0x01;
    pub const NONE: u32 = 0x02;
    pub const SINGLE: u32 = 0x03;
    pub const FORKID: u32 = 0x40;
    pub const LOTUS: u32 = 0x60;
    pub const ANYONECANPAY: u32 = 0x80;
    const BASE_MASK: u32 = 0x1f;
    const UNUSED_MASK: u32 = 0x1c;
    const ALGORITHM_MASK: u32 = 0x60;

    /// 0x41: what the wallet uses for P2PKH inputs.
    pub const ALL_FORKID: SigHashType = SigHashType(0x41);
    /// 0x61: what the wallet uses for Taproot key-path inputs.
    pub const ALL_LOTUS: SigHashType = SigHashType(0x61);

    pub const fn from_u32(raw: u32) -> Self {
        Self(raw)
    }

    /// From the byte that follows a signature in a transaction (fork value 0).
    pub const fn from_byte(b: u8) -> Self {
        Self(b as u32)
    }

    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The low byte, as appended to a signature.
    pub const fn byte(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    pub fn base_type(self) -> BaseType {
        match self.0 & Self::BASE_MASK {
            Self::ALL => BaseType::All,
            Self::NONE => BaseType::None,
            Self::SINGLE => BaseType::Single,
            other => BaseType::Unsupported(other as u8),
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self.0 & Self::ALGORITHM_MASK {
            0x00 => Algorithm::Legacy,
            0x20 => Algorithm::Reserved,
            0x40 => Algorithm::ForkId,
            _ => Algorithm::Lotus,
        }
    }

    pub fn anyone_can_pay(self) -> bool {
        self.0 & Self::ANYONECANPAY != 0
    }

    pub fn fork_value(self) -> u32 {
        self.0 >> 8
    }

    /// lotusd's "defined" hash type (sigencoding `CheckSighashEncoding`): base type ALL, NONE or
    /// SINGLE with the unused bits clear, and an algorithm other than the reserved one.
    pub fn is_defined(self) -> bool {
        !matches!(self.base_type(), BaseType::Unsupported(_))
            && self.algorithm() != Algorithm::Reserved
    }

    /// lotusd `withForkValue`: replaces bits 8..32.
    pub fn with_fork_value(self, fork_value: u32) -> Self {
        Self((fork_value << 8) | (self.0 & 0xff))
    }

    /// What lotusd does under SCRIPT_ENABLE_REPLAY_PROTECTION:
    /// fork value := 0xff0000 | (fork value XOR 0xdead).
    pub fn with_replay_protection(self) -> Self {
        self.with_fork_value(0xff_0000 | (self.fork_value() ^ 0xdead))
    }
}

/// Execution data of a SIGHASH_LOTUS signature made while running a script (spend type 2).
/// A Taproot key-path signature has none (spend type 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionData {
    /// Opcode position of the last executed OP_CODESEPARATOR, 0xffffffff if none.
    pub codeseparator_pos: u32,
    /// SHA256d of the executed script (for a plain output: its scriptPubKey).
    pub executed_script_hash: [u8; 32],
}

impl ExecutionData {
    /// lotusd `ScriptExecutionData(script)`: no code separator, SHA256d of the raw script.
    pub fn for_script(script: &Script) -> Self {
        Self {
            codeseparator_pos: 0xffff_ffff,
            executed_script_hash: sha256d(script.as_bytes()),
        }
    }

    pub fn with_codeseparator_pos(mut self, pos: u32) -> Self {
        self.codeseparator_pos = pos;
        self
    }
}

/// The subset of lotusd script flags that change the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SighashFlags {
    /// SCRIPT_ENABLE_SIGHASH_FORKID: without it every hash type uses the legacy algorithm.
    pub enable_forkid: bool,
    /// SCRIPT_ENABLE_REPLAY_PROTECTION: rewrite the fork value first.
    pub replay_protection: bool,
}

impl SighashFlags {
    /// Lotus consensus today: FORKID on, no replay protection (wallets sign with fork value 0).
    pub const CONSENSUS: SighashFlags = SighashFlags {
        enable_forkid: true,
        replay_protection: false,
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SighashError {
    #[error("input index {index} out of range for {inputs} inputs")]
    InputIndexOutOfRange { index: usize, inputs: usize },
    #[error("SIGHASH_LOTUS needs the spent output of every input")]
    SpentOutputsMissing,
    #[error("{got} spent outputs given for {expected} inputs")]
    SpentOutputsCountMismatch { expected: usize, got: usize },
    #[error("hash type {0:#x} is undefined for SIGHASH_LOTUS (base type 0 or unused bits set)")]
    UndefinedHashType(u32),
    #[error("hash type {0:#x} uses the reserved algorithm 0x20")]
    ReservedAlgorithm(u32),
    #[error("SIGHASH_SINGLE at input {index} but the transaction has {outputs} outputs")]
    SingleWithoutOutput { index: usize, outputs: usize },
}

/// SIGHASH_LOTUS per-transaction data (lotusd `PrecomputedTransactionData`).
#[derive(Debug, Clone)]
struct LotusData<'a> {
    spent_outputs: &'a [TxOut],
    spent_outputs_root: [u8; 32],
    inputs: MerkleRoot,
    outputs: MerkleRoot,
    amount_inputs: i64,
    amount_outputs: i64,
}

/// Digests for the inputs of one transaction, with the per-transaction parts computed once.
#[derive(Debug, Clone)]
pub struct SighashCache<'a> {
    tx: &'a Transaction,
    hash_prevouts: [u8; 32],
    hash_sequence: [u8; 32],
    hash_outputs: [u8; 32],
    lotus: Option<LotusData<'a>>,
}

impl<'a> SighashCache<'a> {
    /// FORKID and legacy digests only; SIGHASH_LOTUS needs [`Self::with_spent_outputs`].
    pub fn new(tx: &'a Transaction) -> Self {
        let mut prevouts = Sha256dWriter::new();
        let mut sequences = Sha256dWriter::new();
        for input in &tx.inputs {
            prevouts.write(&input.prev_out.to_bytes());
            sequences.write(&input.sequence.to_le_bytes());
        }
        let mut outputs = Sha256dWriter::new();
        let mut buf = Vec::new();
        for output in &tx.outputs {
            buf.clear();
            output.encode_to(&mut buf);
            outputs.write(&buf);
        }
        Self {
            tx,
            hash_prevouts: prevouts.finish(),
            hash_sequence: sequences.finish(),
            hash_outputs: outputs.finish(),
            lotus: None,
        }
    }

    /// All three algorithms; `spent_outputs[i]` is the output input `i` spends.
    pub fn with_spent_outputs(
        tx: &'a Transaction,
        spent_outputs: &'a [TxOut],
    ) -> Result<Self, SighashError> {
        if spent_outputs.len() != tx.inputs.len() {
            return Err(SighashError::SpentOutputsCountMismatch {
                expected: tx.inputs.len(),
                got: spent_outputs.len(),
            });
        }
        let mut cache = Self::new(tx);
        // lotusd sums `Amount`s without overflow checks; wrapping keeps this total on hostile
        // values (a real node rejects such amounts long before any signature is checked).
        let sum = |outs: &[TxOut]| outs.iter().fold(0i64, |acc, o| acc.wrapping_add(o.value));
        cache.lotus = Some(LotusData {
            spent_outputs,
            spent_outputs_root: outputs_merkle(spent_outputs).root,
            inputs: tx.inputs_merkle(),
            outputs: tx.outputs_merkle(),
            amount_inputs: sum(spent_outputs),
            amount_outputs: sum(&tx.outputs),
        });
        Ok(cache)
    }

    pub fn transaction(&self) -> &'a Transaction {
        self.tx
    }

    /// The spent outputs given to [`Self::with_spent_outputs`].
    pub fn spent_outputs(&self) -> Option<&'a [TxOut]> {
        self.lotus.as_ref().map(|l| l.spent_outputs)
    }

    /// BIP143 `hashPrevouts`, `hashSequence`, `hashOutputs` (for ALL, no ANYONECANPAY).
    pub fn bip143_hashes(&self) -> ([u8; 32], [u8; 32], [u8; 32]) {
        (self.hash_prevouts, self.hash_sequence, self.hash_outputs)
    }

    /// Merkle root of the spent outputs, if given.
    pub fn spent_outputs_merkle_root(&self) -> Option<[u8; 32]> {
        self.lotus.as_ref().map(|l| l.spent_outputs_root)
    }

    fn check_index(&self, index: usize) -> Result<(), SighashError> {
        if index < self.tx.inputs.len() {
            Ok(())
        } else {
            Err(SighashError::InputIndexOutOfRange {
                index,
                inputs: self.tx.inputs.len(),
            })
        }
    }

    /// lotusd `SignatureHash`: picks the algorithm from the hash type and `flags`.
    /// `script_code` and `amount` are used by FORKID and legacy, `exec` by LOTUS.
    pub fn signature_hash(
        &self,
        index: usize,
        script_code: &Script,
        amount: i64,
        hash_type: SigHashType,
        exec: Option<&ExecutionData>,
        flags: SighashFlags,
    ) -> Result<[u8; 32], SighashError> {
        self.check_index(index)?;
        let hash_type = if flags.replay_protection {
            hash_type.with_replay_protection()
        } else {
            hash_type
        };
        if !flags.enable_forkid {
            return self.legacy(index, script_code, hash_type);
        }
        match hash_type.algorithm() {
            Algorithm::Legacy => self.legacy(index, script_code, hash_type),
            Algorithm::ForkId => self.bip143(index, script_code, amount, hash_type),
            Algorithm::Lotus => self.lotus(index, hash_type, exec),
            Algorithm::Reserved => Err(SighashError::ReservedAlgorithm(hash_type.raw())),
        }
    }

    /// BIP143 digest as in BCH/lotusd (`SignatureHashBIP143`). `hash_type` is hashed as given
    /// (all 32 bits), whatever its algorithm bits.
    pub fn bip143(
        &self,
        index: usize,
        script_code: &Script,
        amount: i64,
        hash_type: SigHashType,
    ) -> Result<[u8; 32], SighashError> {
        self.check_index(index)?;
        let base = hash_type.base_type();
        let acp = hash_type.anyone_can_pay();
        let single_or_none = matches!(base, BaseType::Single | BaseType::None);
        let zero = [0u8; 32];

        let prevouts = if acp { zero } else { self.hash_prevouts };
        let sequence = if acp || single_or_none {
            zero
        } else {
            self.hash_sequence
        };
        let outputs = match (base, self.tx.outputs.get(index)) {
            (BaseType::Single, Some(out)) => out.hash(),
            (BaseType::Single | BaseType::None, _) => zero,
            _ => self.hash_outputs,
        };

        let input = &self.tx.inputs[index];
        let mut buf = Vec::with_capacity(160 + script_code.len());
        buf.extend_from_slice(&self.tx.version.to_le_bytes());
        buf.extend_from_slice(&prevouts);
        buf.extend_from_slice(&sequence);
        input.prev_out.encode_to(&mut buf);
        write_script(&mut buf, script_code);
        buf.extend_from_slice(&amount.to_le_bytes());
        buf.extend_from_slice(&input.sequence.to_le_bytes());
        buf.extend_from_slice(&outputs);
        buf.extend_from_slice(&self.tx.lock_time.to_le_bytes());
        buf.extend_from_slice(&hash_type.raw().to_le_bytes());
        Ok(sha256d(&buf))
    }

    /// SIGHASH_LOTUS digest (lotusd `SignatureHashLotus`). `exec = None` is spend type 0 (the
    /// Taproot key path); `Some` is spend type 2 and commits to the execution data.
    pub fn lotus(
        &self,
        index: usize,
        hash_type: SigHashType,
        exec: Option<&ExecutionData>,
    ) -> Result<[u8; 32], SighashError> {
        self.check_index(index)?;
        let lotus = self
            .lotus
            .as_ref()
            .ok_or(SighashError::SpentOutputsMissing)?;
        let raw = hash_type.raw();
        if raw & 0x03 == 0 || raw & SigHashType::UNUSED_MASK != 0 {
            return Err(SighashError::UndefinedHashType(raw));
        }
        let base = hash_type.base_type();
        let acp = hash_type.anyone_can_pay();
        let input = &self.tx.inputs[index];

        let spend_type: u8 = if exec.is_some() { 2 } else { 0 };
        let mut input_hash = Sha256dWriter::new();
        let mut spent = Vec::new();
        lotus.spent_outputs[index].encode_to(&mut spent);
        input_hash
            .write(&[spend_type])
            .write(&input.prev_out.to_bytes())
            .write(&input.sequence.to_le_bytes())
            .write(&spent);

        let mut w = Sha256dWriter::new();
        w.write(&raw.to_le_bytes()).write(&input_hash.finish());
        if let Some(exec) = exec {
            w.write(&exec.codeseparator_pos.to_le_bytes())
                .write(&exec.executed_script_hash);
        }
        if !acp {
            // A transaction index fits u32 (lotusd serializes `uint32_t in_pos`); inputs are
            // bounded by the transaction size limit.
            let index32 = u32::try_from(index).unwrap_or(u32::MAX);
            w.write(&index32.to_le_bytes())
                .write(&lotus.spent_outputs_root)
                .write(&lotus.amount_inputs.to_le_bytes());
        }
        if base == BaseType::All {
            w.write(&lotus.amount_outputs.to_le_bytes());
        }
        w.write(&self.tx.version.to_le_bytes());
        if !acp {
            w.write(&lotus.inputs.root).write(&[lotus.inputs.height]);
        }
        if base == BaseType::Single {
            let out = self
                .tx
                .outputs
                .get(index)
                .ok_or(SighashError::SingleWithoutOutput {
                    index,
                    outputs: self.tx.outputs.len(),
                })?;
            w.write(&out.hash());
        }
        if base == BaseType::All {
            w.write(&lotus.outputs.root).write(&[lotus.outputs.height]);
        }
        w.write(&self.tx.lock_time.to_le_bytes());
        Ok(w.finish())
    }

    /// Original Bitcoin digest (lotusd `SignatureHashLegacy`), for test vectors only: Lotus
    /// consensus never accepts it and the wallet never signs with it. SIGHASH_SINGLE without a
    /// matching output returns the digest 1 (0x01 followed by 31 zero bytes), Bitcoin's bug.
    /// OP_CODESEPARATORs are removed from `script_code`.
    pub fn legacy(
        &self,
        index: usize,
        script_code: &Script,
        hash_type: SigHashType,
    ) -> Result<[u8; 32], SighashError> {
        self.check_index(index)?;
        let tx = self.tx;
        let base = hash_type.base_type();
        if base == BaseType::Single && index >= tx.outputs.len() {
            let mut one = [0u8; 32];
            one[0] = 1;
            return Ok(one);
        }
        let acp = hash_type.anyone_can_pay();
        let single_or_none = matches!(base, BaseType::Single | BaseType::None);

        let mut buf = Vec::with_capacity(tx.serialized_size() + script_code.len() + 8);
        buf.extend_from_slice(&tx.version.to_le_bytes());
        let inputs: Vec<usize> = if acp {
            vec![index]
        } else {
            (0..tx.inputs.len()).collect()
        };
        write_compact_size(&mut buf, inputs.len() as u64);
        for i in inputs {
            let input = &tx.inputs[i];
            input.prev_out.encode_to(&mut buf);
            if i == index {
                write_script_code_without_codeseparators(&mut buf, script_code);
            } else {
                buf.push(0);
            }
            let sequence = if i != index && single_or_none {
                0
            } else {
                input.sequence
            };
            buf.extend_from_slice(&sequence.to_le_bytes());
        }
        let n_outputs = match base {
            BaseType::None => 0,
            BaseType::Single => index + 1,
            _ => tx.outputs.len(),
        };
        write_compact_size(&mut buf, n_outputs as u64);
        for (i, out) in tx.outputs.iter().take(n_outputs).enumerate() {
            if base == BaseType::Single && i != index {
                TxOut::default().encode_to(&mut buf);
            } else {
                out.encode_to(&mut buf);
            }
        }
        buf.extend_from_slice(&tx.lock_time.to_le_bytes());
        buf.extend_from_slice(&hash_type.raw().to_le_bytes());
        Ok(sha256d(&buf))
    }
}

/// lotusd `CTransactionSignatureSerializer::SerializeScriptCode`. The declared length is the
/// script length minus the number of OP_CODESEPARATORs; the bytes written stop where lotusd's
/// opcode iterator stops, which on a truncated push is before the end of the script (so the
/// declared length then overstates what follows — reproduced deliberately).
fn write_script_code_without_codeseparators(out: &mut Vec<u8>, script_code: &Script) {
    let bytes = script_code.as_bytes();
    let separators = script_code
        .instructions()
        .filter(|ins| matches!(ins, Ok(Instruction::Op(OP_CODESEPARATOR))))
        .count();
    write_compact_size(out, (bytes.len() - separators) as u64);
    let mut begin = 0;
    let mut pc = 0;
    while pc < bytes.len() {
        match script::read_op(bytes, pc) {
            Ok((ins, next)) => {
                pc = next;
                if ins == Instruction::Op(OP_CODESEPARATOR) {
                    out.extend_from_slice(&bytes[begin..pc - 1]);
                    begin = pc;
                }
            }
            Err(stopped) => {
                pc = stopped;
                break;
            }
        }
    }
    if begin != bytes.len() {
        out.extend_from_slice(&bytes[begin..pc.max(begin)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::display_hex;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const TX_TO: &str = "020000000240d1261669175d34d27c9dfd80deb72fd7e7811032a4201c2cdd25ded40a99280000000000feffffff40d1261669175d34d27c9dfd80deb72fd7e7811032a4201c2cdd25ded40a99280100000000ffffffff03b80b0000000000000153a00f00000000000001548813000000000000015500000000";

    fn spent() -> Vec<TxOut> {
        vec![
            TxOut::new(1000, Script::from(vec![0x51])),
            TxOut::new(2000, Script::from(vec![0x52])),
        ]
    }

    #[test]
    fn hash_type_parts() {
        let t = SigHashType::from_u32(0xe3);
        assert_eq!(t.base_type(), BaseType::Single);
        assert_eq!(t.algorithm(), Algorithm::Lotus);
        assert!(t.anyone_can_pay());
        assert!(t.is_defined());
        assert!(!SigHashType::from_u32(0x65).is_defined());
        assert!(!SigHashType::from_u32(0x60).is_defined());
        assert!(!SigHashType::from_u32(0x21).is_defined());
        assert_eq!(
            SigHashType::from_u32(0x61).with_replay_protection().raw(),
            0xffde_ad61
        );
        assert_eq!(SigHashType::ALL_FORKID.byte(), 0x41);
    }

    #[test]
    fn precompute_lotus_sighash_values() {
        // lotusd sighash_lotus_tests.cpp precompute_lotus_sighash asserts these.
        let tx = Transaction::decode(&h(TX_TO)).unwrap();
        let spent = spent();
        let cache = SighashCache::with_spent_outputs(&tx, &spent).unwrap();
        let (p, s, o) = cache.bip143_hashes();
        assert_eq!(
            display_hex(&p),
            "91737a8b58112c5bb792245e22700f22c88fa84944ff46c5cae3fd522f5da68e"
        );
        assert_eq!(
            display_hex(&s),
            "b805fcb22768d3701b2fb60a55b5a5d7122bfdb2ba3d31340c6e2bf17d425e98"
        );
        assert_eq!(
            display_hex(&o),
            "b351743e5d8984941a46ec73b2cbbc41ee858abae9928ce2c52d52fdc567a50c"
        );
        assert_eq!(
            display_hex(&cache.spent_outputs_merkle_root().unwrap()),
            "2c87544fb644b4ee6e955738e5e1feca7019890859314b04da0526b47d22aa73"
        );
    }

    #[test]
    fn lotus_error_paths() {
        let tx = Transaction::decode(&h(TX_TO)).unwrap();
        let spent = spent();
        let no_spent = SighashCache::new(&tx);
        assert_eq!(
            no_spent.lotus(0, SigHashType::ALL_LOTUS, None),
            Err(SighashError::SpentOutputsMissing)
        );
        assert_eq!(
            SighashCache::with_spent_outputs(&tx, &spent[..1]).unwrap_err(),
            SighashError::SpentOutputsCountMismatch {
                expected: 2,
                got: 1
            }
        );
        let cache = SighashCache::with_spent_outputs(&tx, &spent).unwrap();
        assert_eq!(
            cache.lotus(2, SigHashType::ALL_LOTUS, None),
            Err(SighashError::InputIndexOutOfRange {
                index: 2,
                inputs: 2
            })
        );
        for raw in [0x60, 0x64, 0x70, 0xfc] {
            assert_eq!(
                cache.lotus(0, SigHashType::from_u32(raw), None),
                Err(SighashError::UndefinedHashType(raw))
            );
        }
        let flags = SighashFlags::CONSENSUS;
        assert_eq!(
            cache.signature_hash(
                0,
                &Script::new(),
                0,
                SigHashType::from_u32(0x21),
                None,
                flags
            ),
            Err(SighashError::ReservedAlgorithm(0x21))
        );
        // SINGLE needs an output at the input index: give the tx fewer outputs than inputs.
        let mut short = tx.clone();
        short.outputs.truncate(1);
        let cache = SighashCache::with_spent_outputs(&short, &spent).unwrap();
        assert_eq!(
            cache.lotus(1, SigHashType::from_u32(0x63), None),
            Err(SighashError::SingleWithoutOutput {
                index: 1,
                outputs: 1
            })
        );
        // ...while legacy returns Bitcoin's "one" digest.
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            cache.legacy(1, &Script::new(), SigHashType::from_u32(0x03)),
            Ok(one)
        );
    }

    #[test]
    fn spend_type_and_execution_data_change_the_digest() {
        let tx = Transaction::decode(&h(TX_TO)).unwrap();
        let spent = spent();
        let cache = SighashCache::with_spent_outputs(&tx, &spent).unwrap();
        let t = SigHashType::ALL_LOTUS;
        let key_path = cache.lotus(0, t, None).unwrap();
        let exec = ExecutionData::for_script(&spent[0].script_pubkey);
        let with_exec = cache.lotus(0, t, Some(&exec)).unwrap();
        assert_ne!(key_path, with_exec);
        let moved = exec.with_codeseparator_pos(0);
        assert_ne!(cache.lotus(0, t, Some(&moved)).unwrap(), with_exec);
        // ANYONECANPAY does not commit to the other input's spent amount.
        let mut other = spent.clone();
        other[1].value += 1;
        let cache2 = SighashCache::with_spent_outputs(&tx, &other).unwrap();
        let acp = SigHashType::from_u32(0xe1);
        assert_eq!(cache.lotus(0, acp, None), cache2.lotus(0, acp, None));
        assert_ne!(cache.lotus(0, t, None), cache2.lotus(0, t, None));
    }

    #[test]
    fn codeseparators_are_removed_from_legacy_script_code() {
        let mut out = Vec::new();
        write_script_code_without_codeseparators(
            &mut out,
            &Script::from(vec![0xab, 0x51, 0xab, 0xac, 0xab]),
        );
        assert_eq!(out, vec![2, 0x51, 0xac]);
        // A push containing 0xab is data, not a separator.
        let mut out = Vec::new();
        write_script_code_without_codeseparators(&mut out, &Script::from(vec![0x01, 0xab, 0xab]));
        assert_eq!(out, vec![2, 0x01, 0xab]);
        // Truncated push: lotusd declares len - separators but writes only up to where its
        // iterator stopped (after the opcode byte).
        let mut out = Vec::new();
        write_script_code_without_codeseparators(
            &mut out,
            &Script::from(vec![0xab, 0x51, 0x05, 1, 2]),
        );
        assert_eq!(out, vec![4, 0x51, 0x05]);
    }
}
