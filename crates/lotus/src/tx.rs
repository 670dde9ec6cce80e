//! Transactions: Bitcoin serialization (no segwit), strict bounded decoding, and the Lotus txid.
//!
//! The Lotus txid is not SHA256d of the bytes (lotusd `ComputeTxId`): it is
//! SHA256d(version || inputs root || u8 height || outputs root || u8 height || locktime), with
//! input leaves SHA256d(outpoint || sequence) — scriptSigs are excluded, so signing cannot change
//! the txid — and output leaves SHA256d(serialized output). SHA256d of the full serialization
//! still exists as the transaction *hash*.
//!
//! Decoding treats its input as hostile: every length is checked against the bytes that remain
//! before anything is allocated from it, and anything malformed is a [`TxDecodeError`].

use std::fmt;
use std::str::FromStr;

use crate::hash::{sha256d, Sha256dWriter};
use crate::merkle::{merkle_root, MerkleRoot};
use crate::script::Script;

/// Largest transaction this crate decodes (lotusd `MAX_TX_SIZE`, consensus).
pub const MAX_TX_SIZE: usize = 1_000_000;
/// lotusd `MAX_SIZE`: the largest compact size `ReadCompactSize` accepts.
const MAX_COMPACT_SIZE: u64 = 0x0200_0000;
/// Smallest serialized input: outpoint 36 + empty script 1 + sequence 4.
const MIN_INPUT_SIZE: usize = 41;
/// Smallest serialized output: value 8 + empty script 1.
const MIN_OUTPUT_SIZE: usize = 9;

/// A 32-byte hash in internal byte order (as it appears in outpoints and preimages). Displayed
/// and parsed in lotusd's `uint256::GetHex` order, i.e. byte-reversed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub [u8; 32]);

impl TxId {
    pub fn to_display_hex(&self) -> String {
        display_hex(&self.0)
    }

    pub fn from_display_hex(s: &str) -> Result<TxId, HexError> {
        from_display_hex(s).map(TxId)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display_hex())
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.to_display_hex())
    }
}

impl FromStr for TxId {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TxId::from_display_hex(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("expected 64 hex characters, got {0}")]
    Length(usize),
    #[error("invalid hex character at {0}")]
    Character(usize),
}

/// Hex of `hash` in display (byte-reversed) order.
pub fn display_hex(hash: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash.iter().rev() {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses display-order hex (64 characters, either case) into internal byte order.
pub fn from_display_hex(s: &str) -> Result<[u8; 32], HexError> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return Err(HexError::Length(bytes.len()));
    }
    let nibble = |i: usize| -> Result<u8, HexError> {
        let c = bytes[i];
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HexError::Character(i)),
        }
    };
    let mut out = [0u8; 32];
    for (k, slot) in out.iter_mut().rev().enumerate() {
        *slot = (nibble(2 * k)? << 4) | nibble(2 * k + 1)?;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    pub txid: TxId,
    pub vout: u32,
}

impl OutPoint {
    pub fn new(txid: TxId, vout: u32) -> Self {
        Self { txid, vout }
    }

    /// txid (32) || vout u32 LE.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.txid.0);
        out.extend_from_slice(&self.vout.to_le_bytes());
    }

    pub fn to_bytes(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[..32].copy_from_slice(&self.txid.0);
        b[32..].copy_from_slice(&self.vout.to_le_bytes());
        b
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TxIn {
    pub prev_out: OutPoint,
    pub script_sig: Script,
    pub sequence: u32,
}

impl TxIn {
    pub const SEQUENCE_FINAL: u32 = 0xffff_ffff;

    /// Leaf of the inputs merkle tree: SHA256d(outpoint || sequence).
    pub fn merkle_leaf(&self) -> [u8; 32] {
        let mut w = Sha256dWriter::new();
        w.write(&self.prev_out.to_bytes())
            .write(&self.sequence.to_le_bytes());
        w.finish()
    }

    fn encode_to(&self, out: &mut Vec<u8>) {
        self.prev_out.encode_to(out);
        write_script(out, &self.script_sig);
        out.extend_from_slice(&self.sequence.to_le_bytes());
    }
}

/// An output. `value` is in satoshis (1 XPI = 1,000,000 sat) and signed, as lotusd's `Amount`
/// is: a default `CTxOut` has value -1, which the sighash vectors rely on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxOut {
    pub value: i64,
    pub script_pubkey: Script,
}

impl Default for TxOut {
    /// lotusd's null `CTxOut`: value -1 sat, empty script.
    fn default() -> Self {
        Self {
            value: -1,
            script_pubkey: Script::new(),
        }
    }
}

impl TxOut {
    pub fn new(value: i64, script_pubkey: Script) -> Self {
        Self {
            value,
            script_pubkey,
        }
    }

    /// value i64 LE || compact-size script length || script.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value.to_le_bytes());
        write_script(out, &self.script_pubkey);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(9 + self.script_pubkey.len());
        self.encode_to(&mut v);
        v
    }

    /// SHA256d of the serialized output: the outputs / spent-outputs merkle leaf, and the
    /// SIGHASH_SINGLE output hash.
    pub fn hash(&self) -> [u8; 32] {
        sha256d(&self.to_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    pub version: i32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    pub lock_time: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxDecodeError {
    #[error("transaction is {size} bytes, more than the {MAX_TX_SIZE}-byte limit")]
    TooLarge { size: usize },
    #[error("unexpected end of data at byte {at} reading {what}")]
    UnexpectedEnd { at: usize, what: &'static str },
    #[error("non-canonical compact size at byte {at}")]
    NonCanonicalCompactSize { at: usize },
    #[error("compact size {value} at byte {at} exceeds the limit")]
    CompactSizeTooLarge { at: usize, value: u64 },
    #[error("{count} inputs cannot fit in the {remaining} bytes left")]
    TooManyInputs { count: u64, remaining: usize },
    #[error("{count} outputs cannot fit in the {remaining} bytes left")]
    TooManyOutputs { count: u64, remaining: usize },
    #[error("script of {len} bytes at byte {at} is longer than the {remaining} bytes left")]
    ScriptTooLong {
        at: usize,
        len: u64,
        remaining: usize,
    },
    #[error("{count} trailing bytes after the transaction")]
    TrailingBytes { count: usize },
}

impl Transaction {
    /// Decodes exactly one transaction occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Transaction, TxDecodeError> {
        if bytes.len() > MAX_TX_SIZE {
            return Err(TxDecodeError::TooLarge { size: bytes.len() });
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = i32::from_le_bytes(r.array("version")?);

        let n_in = r.compact_size()?;
        if n_in > (r.remaining() / MIN_INPUT_SIZE) as u64 {
            return Err(TxDecodeError::TooManyInputs {
                count: n_in,
                remaining: r.remaining(),
            });
        }
        // Bounded by the check above, so the cast and the allocation are both safe.
        let mut inputs = Vec::with_capacity(n_in as usize);
        for _ in 0..n_in {
            let txid = TxId(r.array("prevout txid")?);
            let vout = u32::from_le_bytes(r.array("prevout index")?);
            let script_sig = r.script()?;
            let sequence = u32::from_le_bytes(r.array("sequence")?);
            inputs.push(TxIn {
                prev_out: OutPoint { txid, vout },
                script_sig,
                sequence,
            });
        }

        let n_out = r.compact_size()?;
        if n_out > (r.remaining() / MIN_OUTPUT_SIZE) as u64 {
            return Err(TxDecodeError::TooManyOutputs {
                count: n_out,
                remaining: r.remaining(),
            });
        }
        let mut outputs = Vec::with_capacity(n_out as usize);
        for _ in 0..n_out {
            let value = i64::from_le_bytes(r.array("output value")?);
            let script_pubkey = r.script()?;
            outputs.push(TxOut {
                value,
                script_pubkey,
            });
        }

        let lock_time = u32::from_le_bytes(r.array("locktime")?);
        if r.remaining() != 0 {
            return Err(TxDecodeError::TrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(Transaction {
            version,
            inputs,
            outputs,
            lock_time,
        })
    }

    /// The standard serialization.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.serialized_size());
        self.encode_to(&mut out);
        out
    }

    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.inputs.len() as u64);
        for input in &self.inputs {
            input.encode_to(out);
        }
        write_compact_size(out, self.outputs.len() as u64);
        for output in &self.outputs {
            output.encode_to(out);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
    }

    pub fn serialized_size(&self) -> usize {
        let scripts = |s: &Script| compact_size_len(s.len() as u64) + s.len();
        4 + compact_size_len(self.inputs.len() as u64)
            + self
                .inputs
                .iter()
                .map(|i| 40 + scripts(&i.script_sig))
                .sum::<usize>()
            + compact_size_len(self.outputs.len() as u64)
            + self
                .outputs
                .iter()
                .map(|o| 8 + scripts(&o.script_pubkey))
                .sum::<usize>()
            + 4
    }

    /// The Lotus txid (merkle form, scriptSigs excluded).
    pub fn txid(&self) -> TxId {
        let inputs = self.inputs_merkle();
        let outputs = self.outputs_merkle();
        let mut w = Sha256dWriter::new();
        w.write(&self.version.to_le_bytes())
            .write(&inputs.root)
            .write(&[inputs.height])
            .write(&outputs.root)
            .write(&[outputs.height])
            .write(&self.lock_time.to_le_bytes());
        TxId(w.finish())
    }

    /// SHA256d of the full serialization (lotusd `GetHash`), internal byte order.
    pub fn hash(&self) -> [u8; 32] {
        sha256d(&self.encode())
    }

    /// Merkle root of SHA256d(outpoint || sequence) over the inputs.
    pub fn inputs_merkle(&self) -> MerkleRoot {
        let leaves: Vec<[u8; 32]> = self.inputs.iter().map(TxIn::merkle_leaf).collect();
        merkle_root(&leaves)
    }

    /// Merkle root of SHA256d(serialized output) over the outputs.
    pub fn outputs_merkle(&self) -> MerkleRoot {
        outputs_merkle(&self.outputs)
    }
}

/// Merkle root over SHA256d(serialized output); also the SIGHASH_LOTUS spent-outputs root.
pub fn outputs_merkle(outputs: &[TxOut]) -> MerkleRoot {
    let leaves: Vec<[u8; 32]> = outputs.iter().map(TxOut::hash).collect();
    merkle_root(&leaves)
}

/// Bitcoin compact size (canonical: the shortest form).
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    if n < 0xfd {
        out.push(n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(0xfd);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0xfe);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn compact_size_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Compact-size length prefix followed by the script bytes.
pub(crate) fn write_script(out: &mut Vec<u8>, script: &Script) {
    write_compact_size(out, script.len() as u64);
    out.extend_from_slice(script.as_bytes());
}

/// A cursor that never reads past its slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TxDecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(TxDecodeError::UnexpectedEnd { at: self.pos, what })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TxDecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// lotusd `ReadCompactSize` with its range check: canonical encodings only, at most
    /// `MAX_SIZE`.
    fn compact_size(&mut self) -> Result<u64, TxDecodeError> {
        let at = self.pos;
        let [tag] = self.array::<1>("compact size")?;
        let (value, min) = match tag {
            0xfd => (
                u64::from(u16::from_le_bytes(self.array("compact size")?)),
                0xfd,
            ),
            0xfe => (
                u64::from(u32::from_le_bytes(self.array("compact size")?)),
                0x1_0000,
            ),
            0xff => (
                u64::from_le_bytes(self.array("compact size")?),
                0x1_0000_0000,
            ),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(TxDecodeError::NonCanonicalCompactSize { at });
        }
        if value > MAX_COMPACT_SIZE {
            return Err(TxDecodeError::CompactSizeTooLarge { at, value });
        }
        Ok(value)
    }

    fn script(&mut self) -> Result<Script, TxDecodeError> {
        let at = self.pos;
        let len = self.compact_size()?;
        if len > self.remaining() as u64 {
            return Err(TxDecodeError::ScriptTooLong {
                at,
                len,
                remaining: self.remaining(),
            });
        }
        Ok(Script::from_bytes(
            self.take(len as usize, "script")?.to_vec(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // lotusd sighash_lotus_tests.cpp precompute_lotus_sighash: txFrom and txTo.
    const TX_FROM: &str = "020000000002e8030000000000000151d007000000000000015200000000";
    const TX_TO: &str = "020000000240d1261669175d34d27c9dfd80deb72fd7e7811032a4201c2cdd25ded40a99280000000000feffffff40d1261669175d34d27c9dfd80deb72fd7e7811032a4201c2cdd25ded40a99280100000000ffffffff03b80b0000000000000153a00f00000000000001548813000000000000015500000000";

    #[test]
    fn txid_is_the_merkle_form() {
        let from = Transaction::decode(&h(TX_FROM)).unwrap();
        assert_eq!(
            from.txid().to_string(),
            "28990ad4de25dd2c1c20a4321081e7d72fb7de80fd9d7cd2345d17691626d140"
        );
        assert_eq!(
            display_hex(&from.hash()),
            "b691de70195fab2d9ca4f3600657439eb7892d9d593766e3ed4d0e85da2c1c85"
        );
        let to = Transaction::decode(&h(TX_TO)).unwrap();
        assert_eq!(to.inputs[0].prev_out.txid, from.txid());
        let m = to.inputs_merkle();
        assert_eq!(
            display_hex(&m.root),
            "8b516e759e1628a4bd02743d3006e042e25dbf98d4f4ebc1042fde7d6660542a"
        );
        assert_eq!(m.height, 2);
        assert_eq!(to.outputs_merkle().height, 3);
        assert_eq!(to.encode(), h(TX_TO));
        assert_eq!(to.serialized_size(), TX_TO.len() / 2);
    }

    #[test]
    fn scriptsig_changes_hash_but_not_txid() {
        let mut tx = Transaction::decode(&h(TX_TO)).unwrap();
        let (txid, hash) = (tx.txid(), tx.hash());
        tx.inputs[0].script_sig = Script::from(vec![0x51]);
        assert_eq!(tx.txid(), txid);
        assert_ne!(tx.hash(), hash);
    }

    #[test]
    fn display_hex_roundtrip() {
        let mut a = [0u8; 32];
        a[0] = 0xab;
        a[31] = 0x01;
        let s = display_hex(&a);
        assert!(s.starts_with("01") && s.ends_with("ab"));
        assert_eq!(from_display_hex(&s), Ok(a));
        assert_eq!(from_display_hex(&s.to_uppercase()), Ok(a));
        assert_eq!(from_display_hex("00"), Err(HexError::Length(2)));
        assert_eq!(
            from_display_hex(&"g".repeat(64)),
            Err(HexError::Character(0))
        );
    }

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        let bytes = h(TX_TO);
        for cut in 0..bytes.len() {
            assert!(Transaction::decode(&bytes[..cut]).is_err(), "prefix {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Transaction::decode(&long),
            Err(TxDecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn rejects_non_canonical_and_oversized_compact_sizes() {
        // version, vin count 0 written as fd 00 00.
        let e = Transaction::decode(&h("01000000fd0000000000000000")).unwrap_err();
        assert_eq!(e, TxDecodeError::NonCanonicalCompactSize { at: 4 });
        let e = Transaction::decode(&h("01000000feffff0000")).unwrap_err();
        assert_eq!(e, TxDecodeError::NonCanonicalCompactSize { at: 4 });
        let e = Transaction::decode(&h("01000000ffffffffff00000000")).unwrap_err();
        assert_eq!(e, TxDecodeError::NonCanonicalCompactSize { at: 4 });
        let e = Transaction::decode(&h("01000000feffffffff")).unwrap_err();
        assert_eq!(
            e,
            TxDecodeError::CompactSizeTooLarge {
                at: 4,
                value: 0xffff_ffff
            }
        );
    }

    #[test]
    fn rejects_counts_and_lengths_beyond_the_input_before_allocating() {
        // 0xfc inputs claimed, nothing behind them.
        let e = Transaction::decode(&h("01000000fc")).unwrap_err();
        assert!(matches!(e, TxDecodeError::TooManyInputs { count: 252, .. }));
        // 0 inputs, 2^25 outputs claimed.
        let e = Transaction::decode(&h("0100000000fe00000002")).unwrap_err();
        assert!(matches!(e, TxDecodeError::TooManyOutputs { .. }));
        // One output whose script claims 0xfd00 bytes.
        let e = Transaction::decode(&h("0100000000010000000000000000fd00fd00000000")).unwrap_err();
        assert!(matches!(
            e,
            TxDecodeError::ScriptTooLong { len: 0xfd00, .. }
        ));
        let e = Transaction::decode(&vec![0; MAX_TX_SIZE + 1]).unwrap_err();
        assert_eq!(
            e,
            TxDecodeError::TooLarge {
                size: MAX_TX_SIZE + 1
            }
        );
    }

    #[test]
    fn compact_size_encoding_is_canonical() {
        for (n, len) in [
            (0u64, 1),
            (0xfc, 1),
            (0xfd, 3),
            (0xffff, 3),
            (0x1_0000, 5),
            (0xffff_ffff, 5),
            (0x1_0000_0000, 9),
        ] {
            let mut v = Vec::new();
            write_compact_size(&mut v, n);
            assert_eq!(v.len(), len);
            assert_eq!(compact_size_len(n), len);
            if n <= MAX_COMPACT_SIZE {
                let mut r = Reader { bytes: &v, pos: 0 };
                assert_eq!(r.compact_size(), Ok(n));
            }
        }
    }
}
