//! Proposals: the transaction a member asks the group to sign, signed by that member, and the
//! checks every co-signer runs on it itself before a person is asked to approve it.
//!
//! A proposal carries the unsigned transaction *and* the output each input spends, so every
//! co-signer computes amounts, fee, change and the sighashes on its own instead of trusting the
//! proposer (analysis §2.2: the sighash commits to the whole transaction, so what is reviewed
//! here is exactly what can be broadcast). [`Proposal::validate`] turns a proposal into a
//! [`Review`] — the facts shown to the person — or a typed error that says which rule failed.
//! The review's digest is what an approval names; a session refuses any other.
//!
//! Standardness and amounts follow lotusd (givelotus/lotusd `src/amount.h`,
//! `src/policy/policy.{h,cpp}`, `src/script/standard.{h,cpp}`), because a transaction a node
//! will not relay is a session that completes for nothing.

use std::collections::BTreeMap;
use std::fmt;

use lotus::address::{taproot_address, XAddress};
use lotus::hash::tagged_hash;
use lotus::schnorr::{self, Signature};
use lotus::script::{opcodes, Instruction, Script};
use lotus::sighash::{SigHashType, SighashCache, SighashError};
use lotus::spend::{self, TxVerifyError};
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use lotus::PrivateKey;

use crate::pool::PoolRef;

use crate::group::{GroupDescriptor, GroupError, GroupId, OutputType};
use crate::messages::MAX_INPUTS;
use crate::wire::{DecodeError, Reader, Writer};

const PROPOSAL_VERSION: u8 = 1;
const SIGNING_TAG: &str = "LotusCosigner/proposal";
const REVIEW_TAG: &str = "LotusCosigner/review";

/// 1 XPI = 1,000,000 satoshis (lotusd `LOTUS`).
pub const SATS_PER_XPI: i64 = 1_000_000;
/// lotusd `MAX_MONEY` = 2,100,000,000 XPI. Lotus has no supply cap; lotusd keeps this bound as
/// an overflow guard, and no amount or sum above it is valid.
pub const MAX_MONEY: i64 = 2_100_000_000 * SATS_PER_XPI;
/// lotusd `MAX_STANDARD_TX_SIZE`: larger transactions are not relayed.
pub const MAX_STANDARD_TX_SIZE: usize = 100_000;
/// lotusd `MAX_OP_RETURN_RELAY`: the whole OP_RETURN scriptPubKey (opcode and pushes
/// included — 220 data bytes, +1 for OP_RETURN, +2 for a PUSHDATA1) may be at most this long.
pub const MAX_OP_RETURN_SCRIPT_BYTES: usize = 223;
/// lotusd `IsStandardTx`: at most three OP_RETURN outputs per transaction.
pub const MAX_DATA_OUTPUTS: usize = 3;
/// lotusd `CTransaction::MAX_STANDARD_VERSION`; versions 1..=2 are standard.
pub const MAX_STANDARD_TX_VERSION: i32 = 2;
/// lotusd `DUST_RELAY_TX_FEE`, satoshis per 1000 bytes.
pub const DUST_RELAY_FEE_SAT_PER_KB: i64 = 1_000;
/// Default `-minrelaytxfee` (1000 sat/kB, inherited from Bitcoin ABC): a lower fee rate is
/// not relayed by default nodes.
pub const MIN_RELAY_FEE_SAT_PER_KB: u64 = 1_000;

/// Hard fee ceiling: a fee above this share of the inputs *and* above [`MAX_FEE_FLOOR_SAT`] is
/// refused outright — it is a mistake or an attack, never something to ask a person about.
pub const MAX_FEE_PERCENT_OF_INPUTS: i64 = 10;
/// Below this absolute fee the percentage ceiling does not apply (small spends of small coins
/// can legitimately pay a large share).
pub const MAX_FEE_FLOOR_SAT: i64 = SATS_PER_XPI;
/// Fee rate above which the review warns (10× the minimum relay fee).
pub const HIGH_FEE_RATE_SAT_PER_KB: u64 = 10_000;
/// Fee as a share of the amount sent out (change excluded) above which the review warns, in
/// basis points (500 = 5%).
pub const HIGH_FEE_SHARE_BASIS_POINTS: u64 = 500;

/// How far a proposal's creation time may be ahead of this member's clock.
pub const MAX_CLOCK_AHEAD_MS: u64 = 60_000;

pub const MAX_EVIDENCE_RECORDS: usize = 16;
pub const MAX_EVIDENCE_RECORD_BYTES: usize = 16 * 1024;
/// lotusd `MAX_SCRIPT_SIZE`, the bound for a spent output's script on the wire.
const MAX_SCRIPT_BYTES: usize = 10_000;
/// Smallest encoded spent output: value 8 + script length 4.
const MIN_SPENT_OUTPUT_BYTES: usize = 12;

/// scriptSig of a Taproot key-path spend: one push of sig64 ‖ hashtype (1 + 65 bytes).
const TAPROOT_SCRIPT_SIG_BYTES: usize = 66;
/// scriptSig of a P2PKH spend: push(sig64 ‖ hashtype) push(33-byte Q) = 66 + 34 bytes.
const P2PKH_SCRIPT_SIG_BYTES: usize = 100;

/// A session's identity, chosen at random by the proposer (the caller supplies the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 32]);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl SessionId {
    /// From 64 hex characters (how ids are shown).
    pub fn from_hex(text: &str) -> Option<Self> {
        Some(Self(hex_32(text)?))
    }
}

/// The digest of a [`Review`]: an approval names it, so a changed proposal cannot inherit one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewDigest(pub [u8; 32]);

impl ReviewDigest {
    /// From 64 hex characters (how digests are shown).
    pub fn from_hex(text: &str) -> Option<Self> {
        Some(Self(hex_32(text)?))
    }
}

impl fmt::Display for ReviewDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn hex_32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// Everything the proposer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedProposal {
    pub group_id: GroupId,
    pub session_id: SessionId,
    /// The proposer's index in the group's member order.
    pub proposer: u16,
    /// The transaction with empty scriptSigs.
    pub tx: Transaction,
    /// `spent_outputs[i]` is the output `tx.inputs[i]` spends.
    pub spent_outputs: Vec<TxOut>,
    pub hash_type: SigHashType,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// The group's proposal counter (round-robin election input; replay order).
    pub sequence: u64,
    /// Opaque misbehaviour evidence records (interpreted by the evidence module).
    pub evidence: Vec<Vec<u8>>,
    /// Per member (member order), the pooled nonces attempt 0 uses; empty: attempt 0 runs
    /// its rounds like any other (see `pool`).
    pub pools: Vec<PoolRef>,
}

impl UnsignedProposal {
    /// Refuses what the wire format cannot carry, so that every signed proposal also decodes.
    fn check_encodable(&self) -> Result<(), DecodeError> {
        let tx_len = self.tx.serialized_size();
        if tx_len > MAX_STANDARD_TX_SIZE {
            return Err(too_long("transaction", tx_len, MAX_STANDARD_TX_SIZE));
        }
        if self.spent_outputs.len() > MAX_INPUTS {
            return Err(too_long(
                "spent outputs",
                self.spent_outputs.len(),
                MAX_INPUTS,
            ));
        }
        if let Some(out) = self
            .spent_outputs
            .iter()
            .find(|o| o.script_pubkey.len() > MAX_SCRIPT_BYTES)
        {
            let len = out.script_pubkey.len();
            return Err(too_long("spent output script", len, MAX_SCRIPT_BYTES));
        }
        if self.pools.len() > crate::group::MAX_MEMBERS {
            return Err(too_long(
                "pool references",
                self.pools.len(),
                crate::group::MAX_MEMBERS,
            ));
        }
        if self.evidence.len() > MAX_EVIDENCE_RECORDS {
            let len = self.evidence.len();
            return Err(too_long("evidence records", len, MAX_EVIDENCE_RECORDS));
        }
        if let Some(record) = self
            .evidence
            .iter()
            .find(|r| r.len() > MAX_EVIDENCE_RECORD_BYTES)
        {
            let len = record.len();
            return Err(too_long("evidence record", len, MAX_EVIDENCE_RECORD_BYTES));
        }
        Ok(())
    }

    /// The canonical encoding the signature and the review digest are over. Callers check
    /// [`Self::check_encodable`] first.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROPOSAL_VERSION)
            .raw(&self.group_id.0)
            .raw(&self.session_id.0)
            .u16(self.proposer)
            .u64(self.sequence)
            .u64(self.created_ms)
            .u64(self.expires_ms)
            .u32(self.hash_type.raw())
            .bytes(&self.tx.encode());
        w.count(self.spent_outputs.len());
        for out in &self.spent_outputs {
            // Two's complement keeps the bijection for the (invalid) negative amounts.
            w.u64(out.value as u64).bytes(out.script_pubkey.as_bytes());
        }
        w.count(self.evidence.len());
        for record in &self.evidence {
            w.bytes(record);
        }
        w.count(self.pools.len());
        for pool in &self.pools {
            pool.encode(&mut w);
        }
        w.into_bytes()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("proposal version")?;
        if version != PROPOSAL_VERSION {
            return Err(DecodeError::invalid(
                "proposal version",
                format!("unsupported version {version}"),
            ));
        }
        let group_id = GroupId(r.array("group id")?);
        let session_id = SessionId(r.array("session id")?);
        let proposer = r.u16("proposer")?;
        let sequence = r.u64("sequence")?;
        let created_ms = r.u64("created")?;
        let expires_ms = r.u64("expires")?;
        let hash_type = SigHashType::from_u32(r.u32("hash type")?);
        let tx = Transaction::decode(r.bytes(MAX_STANDARD_TX_SIZE, "transaction")?)
            .map_err(|e| DecodeError::invalid("transaction", e.to_string()))?;
        let n = r.count(MAX_INPUTS, MIN_SPENT_OUTPUT_BYTES, "spent outputs")?;
        let spent_outputs = (0..n)
            .map(|_| {
                let value = r.u64("spent output value")? as i64;
                let script = r.bytes(MAX_SCRIPT_BYTES, "spent output script")?;
                Ok(TxOut::new(value, Script::from(script.to_vec())))
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let n = r.count(MAX_EVIDENCE_RECORDS, 4, "evidence records")?;
        let evidence = (0..n)
            .map(|_| {
                Ok(r.bytes(MAX_EVIDENCE_RECORD_BYTES, "evidence record")?
                    .to_vec())
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let n = r.count(crate::group::MAX_MEMBERS, 34, "pool references")?;
        let pools = (0..n)
            .map(|_| PoolRef::decode(r))
            .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(Self {
            group_id,
            session_id,
            proposer,
            tx,
            spent_outputs,
            hash_type,
            created_ms,
            expires_ms,
            sequence,
            evidence,
            pools,
        })
    }
}

fn too_long(field: &'static str, len: usize, max: usize) -> DecodeError {
    DecodeError::TooLong { field, len, max }
}

/// A proposal signed by its proposer. Built only by [`Proposal::sign`] or
/// [`Proposal::decode`], so its signing bytes are exactly what was signed (or received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    unsigned: UnsignedProposal,
    signing_bytes: Vec<u8>,
    signature: Signature,
}

/// Read access to the signed fields (`proposal.tx`, `proposal.session_id`, …); there is no
/// mutable access, so the fields always match the signed bytes.
impl std::ops::Deref for Proposal {
    type Target = UnsignedProposal;

    fn deref(&self) -> &UnsignedProposal {
        &self.unsigned
    }
}

/// Where an amount sits, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountAt {
    /// The output spent by input `i`.
    Input(usize),
    Output(usize),
    InputsTotal,
    OutputsTotal,
}

impl fmt::Display for AmountAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountAt::Input(i) => write!(f, "input {i}"),
            AmountAt::Output(i) => write!(f, "output {i}"),
            AmountAt::InputsTotal => f.write_str("the inputs' total"),
            AmountAt::OutputsTotal => f.write_str("the outputs' total"),
        }
    }
}

/// Why an output script is not one this wallet sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonStandardReason {
    /// Not P2PKH, P2SH, Taproot or OP_RETURN data.
    UnknownScript,
    /// A Taproot output whose commitment is not a curve point: nobody could ever spend it.
    InvalidTaprootCommitment,
    /// OP_RETURN followed by something other than pushes.
    DataNotPushOnly,
    /// OP_RETURN script longer than [`MAX_OP_RETURN_SCRIPT_BYTES`].
    DataTooLong { len: usize, max: usize },
}

impl fmt::Display for NonStandardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonStandardReason::UnknownScript => {
                f.write_str("its script is not P2PKH, P2SH, Taproot or OP_RETURN data")
            }
            NonStandardReason::InvalidTaprootCommitment => {
                f.write_str("its Taproot commitment is not a valid public key")
            }
            NonStandardReason::DataNotPushOnly => {
                f.write_str("its OP_RETURN data contains non-push opcodes")
            }
            NonStandardReason::DataTooLong { len, max } => {
                write!(f, "its OP_RETURN script is {len} bytes, above {max}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("the proposal is malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("the proposal is for group {got}, not this group ({expected})")]
    WrongGroup { expected: GroupId, got: GroupId },
    #[error("proposer {index} is not a member (the group has {members} members)")]
    UnknownProposer { index: u16, members: usize },
    #[error("the proposer's signature does not verify")]
    BadSignature,
    #[error("the proposal names pooled nonces for {got} members of {members} (all or none)")]
    PoolReferences { got: usize, members: usize },
    #[error(
        "the proposal names pooled entries {first}..{end}; its proposer may only name \
         {start}..{limit}"
    )]
    PoolOutsideSlice {
        first: usize,
        end: usize,
        start: usize,
        limit: usize,
    },
    #[error(
        "hash type {got:#04x} does not match the group's output type (expected {expected:#04x})"
    )]
    WrongHashType { expected: u32, got: u32 },
    #[error("the proposal was created {ahead_ms} ms in the future (at most {max_ms} ms allowed)")]
    CreatedInFuture { ahead_ms: u64, max_ms: u64 },
    #[error("the proposal expired at {expires_ms} (now {now_ms})")]
    Expired { expires_ms: u64, now_ms: u64 },
    #[error("the proposal expires ({expires_ms}) before it was created ({created_ms})")]
    ExpiresBeforeCreated { created_ms: u64, expires_ms: u64 },
    #[error("the proposal lives {lifetime_ms} ms, longer than the group allows ({max_ms} ms)")]
    LifetimeTooLong { lifetime_ms: u64, max_ms: u64 },
    #[error("transaction version {version} is not standard (1..={MAX_STANDARD_TX_VERSION})")]
    NonStandardVersion { version: i32 },
    #[error("the transaction has no inputs")]
    NoInputs,
    #[error("the transaction has no outputs")]
    NoOutputs,
    #[error("the transaction has {count} inputs; a session signs at most {max}")]
    TooManyInputs { count: usize, max: usize },
    #[error("input {input} already has a scriptSig; a proposal's transaction is unsigned")]
    ScriptSigNotEmpty { input: usize },
    #[error("input {second} spends the same coin as input {first} ({outpoint:?})")]
    DuplicateInput {
        first: usize,
        second: usize,
        outpoint: OutPoint,
    },
    #[error("{spent_outputs} spent outputs given for {inputs} inputs")]
    SpentOutputCount { inputs: usize, spent_outputs: usize },
    #[error("input {input} does not spend the group's address")]
    ForeignInput { input: usize },
    #[error("{at} has a non-positive amount ({value} sat)")]
    NonPositiveAmount { at: AmountAt, value: i64 },
    #[error("{at} is {value} sat, above the {MAX_MONEY}-sat maximum")]
    AmountTooLarge { at: AmountAt, value: i64 },
    #[error("the outputs ({outputs_sat} sat) exceed the inputs ({inputs_sat} sat)")]
    OutputsExceedInputs { inputs_sat: i64, outputs_sat: i64 },
    #[error(
        "the fee of {fee_sat} sat is above {MAX_FEE_PERCENT_OF_INPUTS}% of the inputs \
         ({inputs_sat} sat) and above {MAX_FEE_FLOOR_SAT} sat"
    )]
    FeeTooHigh { fee_sat: i64, inputs_sat: i64 },
    #[error("output {output} is not standard: {reason}")]
    NonStandardOutput {
        output: usize,
        reason: NonStandardReason,
    },
    #[error("{count} OP_RETURN outputs; at most {max} are standard")]
    TooManyDataOutputs { count: usize, max: usize },
    #[error(
        "output {output} pays {amount_sat} sat, below the dust threshold of {threshold_sat} sat"
    )]
    DustOutput {
        output: usize,
        amount_sat: i64,
        threshold_sat: i64,
    },
    #[error(
        "the signed transaction would be about {size} bytes, above the {max}-byte standard limit"
    )]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("sighash: {0}")]
    Sighash(#[from] SighashError),
    #[error("{got} signatures for {expected} inputs")]
    SignatureCount { expected: usize, got: usize },
    #[error("the finished transaction does not verify: {0}")]
    FinalTransaction(#[from] TxVerifyError),
}

/// What an output pays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    P2pkh,
    P2sh,
    /// Taproot key path, with the optional 32-byte state lotusd allows.
    Taproot {
        state: Option<[u8; 32]>,
    },
    /// OP_RETURN data; `payload` is the script after the OP_RETURN opcode.
    Data {
        payload: Vec<u8>,
    },
}

/// One output as the person reviews it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewOutput {
    pub index: usize,
    pub kind: OutputKind,
    /// XAddress on the group's network; `None` for data outputs. A Taproot output shows the
    /// address of its commitment (its state, if any, is in `kind`).
    pub address: Option<String>,
    pub amount_sat: i64,
    /// Pays the group's own scriptPubKey ("to this group").
    pub is_change: bool,
}

/// Things a person should notice but that do not make the proposal invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewWarning {
    HighFeeRate {
        sat_per_kb: u64,
        threshold_sat_per_kb: u64,
    },
    /// The fee is a large share of what leaves the group.
    HighFeeShare {
        basis_points: u64,
        threshold_basis_points: u64,
    },
    /// Default nodes will not relay the transaction.
    BelowMinRelayFee {
        sat_per_kb: u64,
        minimum_sat_per_kb: u64,
    },
    /// An OP_RETURN output carries coins, which are destroyed.
    BurnsCoins { output: usize, amount_sat: i64 },
    /// A non-zero locktime with non-final inputs: the transaction cannot be mined before it.
    TimeLocked { lock_time: u32 },
}

/// Exactly what a co-signer reviews before approving; `digest` names it in the approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub group_id: GroupId,
    pub session_id: SessionId,
    pub proposer: u16,
    pub sequence: u64,
    /// The final txid: Lotus txids exclude scriptSigs, so signing does not change it.
    pub txid: TxId,
    pub outputs: Vec<ReviewOutput>,
    pub inputs_total_sat: i64,
    pub outputs_total_sat: i64,
    /// What leaves the group: outputs that are not change.
    pub sent_sat: i64,
    pub change_sat: i64,
    pub fee_sat: i64,
    /// Size of the transaction once its scriptSigs are in (exact for this wallet's scripts).
    pub signed_size_bytes: usize,
    /// Fee per 1000 bytes of `signed_size_bytes` (divide by 1000 for sat/byte).
    pub fee_rate_sat_per_kb: u64,
    /// Fee as a share of `sent_sat` in basis points (100 = 1%); `None` when nothing leaves
    /// the group.
    pub fee_share_basis_points: Option<u64>,
    pub warnings: Vec<ReviewWarning>,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub evidence_records: usize,
    pub digest: [u8; 32],
}

/// The hash type the group's inputs are signed with: SIGHASH_ALL|LOTUS for Taproot (key path,
/// spend type 0), SIGHASH_ALL|FORKID for P2PKH (valid on every Lotus epoch).
pub fn required_hash_type(output: OutputType) -> SigHashType {
    match output {
        OutputType::Taproot => SigHashType::ALL_LOTUS,
        OutputType::P2pkh => SigHashType::ALL_FORKID,
    }
}

/// Size of `tx` once each input has the group's scriptSig, for a `tx` with empty scriptSigs.
/// Both scriptSigs are under 253 bytes, so each input's length prefix stays one byte.
pub fn estimated_signed_size(tx: &Transaction, output: OutputType) -> usize {
    let script_sig = match output {
        OutputType::Taproot => TAPROOT_SCRIPT_SIG_BYTES,
        OutputType::P2pkh => P2PKH_SCRIPT_SIG_BYTES,
    };
    tx.serialized_size()
        .saturating_add(tx.inputs.len().saturating_mul(script_sig))
}

/// lotusd `GetDustThreshold` at the default dust relay fee: an output is dust if spending it
/// would cost more than a third of its value. With S = serialized output size (8-byte value +
/// script with its length prefix) and 148 = the size of a typical input spending it
/// (32 + 4 + 1 + 107 + 4), threshold = 3 × (S + 148) × 1000 sat/kB ÷ 1000. Unspendable
/// (OP_RETURN) outputs have threshold 0. P2PKH: 3 × (34 + 148) = 546 sat.
pub fn dust_threshold(output: &TxOut) -> i64 {
    if is_unspendable(&output.script_pubkey) {
        return 0;
    }
    let size = output.to_bytes().len() as i64 + 148;
    3 * (size * DUST_RELAY_FEE_SAT_PER_KB / 1000)
}

/// lotusd `CScript::IsUnspendable`.
fn is_unspendable(script: &Script) -> bool {
    script.as_bytes().first() == Some(&opcodes::OP_RETURN) || script.len() > MAX_SCRIPT_BYTES
}

/// Recognises the output scripts this wallet pays to (lotusd's standard types minus bare
/// P2PK and multisig, which the wallet never creates).
pub fn classify_output(script: &Script) -> Result<OutputKind, NonStandardReason> {
    if script.as_p2pkh().is_some() {
        return Ok(OutputKind::P2pkh);
    }
    if script.as_p2sh().is_some() {
        return Ok(OutputKind::P2sh);
    }
    if let Some(taproot) = script.as_taproot() {
        taproot
            .commitment_key()
            .map_err(|_| NonStandardReason::InvalidTaprootCommitment)?;
        return Ok(OutputKind::Taproot {
            state: taproot.state,
        });
    }
    if let [opcodes::OP_RETURN, payload @ ..] = script.as_bytes() {
        return classify_data(script, payload);
    }
    Err(NonStandardReason::UnknownScript)
}

/// lotusd `Solver` NULL_DATA (OP_RETURN then push-only, where pushes need not be minimal and
/// OP_1NEGATE..OP_16 count as pushes) and `IsStandard`'s size limit.
fn classify_data(script: &Script, payload: &[u8]) -> Result<OutputKind, NonStandardReason> {
    let push_only = Script::from(payload.to_vec())
        .instructions()
        .all(|ins| match ins {
            Ok(Instruction::Push { .. }) => true,
            Ok(Instruction::Op(op)) => op <= opcodes::OP_16,
            Err(_) => false,
        });
    if !push_only {
        return Err(NonStandardReason::DataNotPushOnly);
    }
    if script.len() > MAX_OP_RETURN_SCRIPT_BYTES {
        return Err(NonStandardReason::DataTooLong {
            len: script.len(),
            max: MAX_OP_RETURN_SCRIPT_BYTES,
        });
    }
    Ok(OutputKind::Data {
        payload: payload.to_vec(),
    })
}

impl Proposal {
    /// Signs `unsigned` with the proposer's member key. Whether the key belongs to member
    /// `unsigned.proposer` is checked by [`Self::verify_signature`].
    pub fn sign(unsigned: UnsignedProposal, key: &PrivateKey) -> Result<Self, ProposalError> {
        unsigned.check_encodable()?;
        let signing_bytes = unsigned.encode();
        let signature = schnorr::sign(key, &signing_digest(&signing_bytes));
        Ok(Self {
            unsigned,
            signing_bytes,
            signature,
        })
    }

    /// Decodes a proposal of at most `max_len` bytes (the group's `limits.max_message_bytes`),
    /// checking the size before parsing anything. No curve operations.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_len {
            return Err(too_long("proposal", bytes.len(), max_len));
        }
        let mut r = Reader::new(bytes);
        let unsigned = UnsignedProposal::decode(&mut r)?;
        let signed_len = bytes.len() - r.remaining();
        let signature = Signature::from_bytes(r.array("signature")?);
        r.finish()?;
        Ok(Self {
            unsigned,
            // The exact received bytes: the signature is checked over what arrived.
            signing_bytes: bytes[..signed_len].to_vec(),
            signature,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.signing_bytes.len() + 64);
        bytes.extend_from_slice(&self.signing_bytes);
        bytes.extend_from_slice(&self.signature.to_bytes());
        bytes
    }

    pub fn unsigned(&self) -> &UnsignedProposal {
        &self.unsigned
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical encoding without the signature.
    pub fn signing_bytes(&self) -> &[u8] {
        &self.signing_bytes
    }

    /// TH("LotusCosigner/review", signing bytes): what `UserApproved` carries.
    pub fn review_digest(&self) -> [u8; 32] {
        tagged_hash(REVIEW_TAG, &[&self.signing_bytes])
    }

    /// Checks the proposer's signature under its member key (one curve operation).
    pub fn verify_signature(&self, group: &GroupDescriptor) -> Result<(), ProposalError> {
        let key = self.proposer_key(group)?;
        let digest = signing_digest(&self.signing_bytes);
        if schnorr::verify(&self.signature, &digest, key) {
            Ok(())
        } else {
            Err(ProposalError::BadSignature)
        }
    }

    fn proposer_key<'g>(
        &self,
        group: &'g GroupDescriptor,
    ) -> Result<&'g lotus::secp256k1::PublicKey, ProposalError> {
        let index = self.unsigned.proposer;
        group
            .members
            .get(usize::from(index))
            .ok_or(ProposalError::UnknownProposer {
                index,
                members: group.members.len(),
            })
    }

    /// Every check a co-signer runs itself, cheapest first: the signature (one curve
    /// operation) comes after the field checks and before anything that aggregates the
    /// group's keys or hashes the transaction.
    pub fn validate(&self, group: &GroupDescriptor, now_ms: u64) -> Result<Review, ProposalError> {
        let p = &self.unsigned;
        let expected = group.id();
        if p.group_id != expected {
            return Err(ProposalError::WrongGroup {
                expected,
                got: p.group_id,
            });
        }
        self.proposer_key(group)?;
        check_hash_type(p.hash_type, group.output)?;
        check_timing(p, group, now_ms)?;
        check_pool_references(p, group)?;
        self.verify_signature(group)?;

        check_structure(&p.tx, &p.spent_outputs)?;
        let group_script = group.script_pubkey()?;
        check_inputs_are_the_groups(&p.spent_outputs, &group_script)?;
        let amounts = check_amounts(&p.tx, &p.spent_outputs)?;
        let outputs = review_outputs(&p.tx, group, &group_script)?;
        let signed_size_bytes = estimated_signed_size(&p.tx, group.output);
        if signed_size_bytes > MAX_STANDARD_TX_SIZE {
            return Err(ProposalError::TooLarge {
                size: signed_size_bytes,
                max: MAX_STANDARD_TX_SIZE,
            });
        }
        Ok(self.review(outputs, amounts, signed_size_bytes))
    }

    fn review(&self, outputs: Vec<ReviewOutput>, amounts: Amounts, size: usize) -> Review {
        let p = &self.unsigned;
        let change_sat: i64 = outputs
            .iter()
            .filter(|o| o.is_change)
            .map(|o| o.amount_sat)
            .sum();
        // Both are bounded by MAX_MONEY, checked before.
        let sent_sat = amounts.outputs - change_sat;
        let fee = FeeFacts::new(amounts.fee(), size, sent_sat);
        let mut warnings = fee.warnings();
        warnings.extend(burn_warnings(&outputs));
        if is_time_locked(&p.tx) {
            warnings.push(ReviewWarning::TimeLocked {
                lock_time: p.tx.lock_time,
            });
        }
        Review {
            group_id: p.group_id,
            session_id: p.session_id,
            proposer: p.proposer,
            sequence: p.sequence,
            txid: p.tx.txid(),
            outputs,
            inputs_total_sat: amounts.inputs,
            outputs_total_sat: amounts.outputs,
            sent_sat,
            change_sat,
            fee_sat: amounts.fee(),
            signed_size_bytes: size,
            fee_rate_sat_per_kb: fee.rate_sat_per_kb,
            fee_share_basis_points: fee.share_basis_points,
            warnings,
            created_ms: p.created_ms,
            expires_ms: p.expires_ms,
            evidence_records: p.evidence.len(),
            digest: self.review_digest(),
        }
    }

    /// The message each input's MuSig2 signature is over, computed from this proposal's own
    /// transaction and spent outputs. Run [`Self::validate`] first; this only re-checks what
    /// the digests themselves depend on (hash type, spent-output count).
    pub fn sighashes(&self, group: &GroupDescriptor) -> Result<Vec<[u8; 32]>, ProposalError> {
        let p = &self.unsigned;
        check_hash_type(p.hash_type, group.output)?;
        check_spent_output_count(&p.tx, &p.spent_outputs)?;
        let cache = SighashCache::with_spent_outputs(&p.tx, &p.spent_outputs)?;
        match group.output {
            OutputType::Taproot => (0..p.tx.inputs.len())
                .map(|i| Ok(cache.lotus(i, SigHashType::ALL_LOTUS, None)?))
                .collect(),
            OutputType::P2pkh => {
                // BIP143 scriptCode: the group's own P2PKH script, whatever the proposal says.
                let script_code = group.script_pubkey()?;
                p.spent_outputs
                    .iter()
                    .enumerate()
                    .map(|(i, spent)| {
                        Ok(cache.bip143(i, &script_code, spent.value, SigHashType::ALL_FORKID)?)
                    })
                    .collect()
            }
        }
    }

    /// Puts one aggregated signature per input into the scriptSigs and verifies the finished
    /// transaction the way lotusd does before returning it.
    pub fn finalize(
        &self,
        group: &GroupDescriptor,
        signatures: &[Signature],
    ) -> Result<Transaction, ProposalError> {
        let p = &self.unsigned;
        check_hash_type(p.hash_type, group.output)?;
        if signatures.len() != p.tx.inputs.len() {
            return Err(ProposalError::SignatureCount {
                expected: p.tx.inputs.len(),
                got: signatures.len(),
            });
        }
        // A P2PKH scriptSig reveals the untweaked aggregated key Q; the Taproot one only the
        // signature (the commitment is in the spent output).
        let aggregated_key = match group.output {
            OutputType::Taproot => None,
            OutputType::P2pkh => Some(*group.key_agg()?.aggregated_key()),
        };
        let mut tx = p.tx.clone();
        for (input, signature) in tx.inputs.iter_mut().zip(signatures) {
            input.script_sig = match &aggregated_key {
                None => spend::taproot_key_path_script_sig(signature, SigHashType::ALL_LOTUS),
                Some(q) => spend::p2pkh_script_sig(signature, SigHashType::ALL_FORKID, q),
            };
        }
        spend::verify_transaction(&tx, &p.spent_outputs)?;
        Ok(tx)
    }
}

fn signing_digest(signing_bytes: &[u8]) -> [u8; 32] {
    tagged_hash(SIGNING_TAG, &[signing_bytes])
}

fn check_hash_type(hash_type: SigHashType, output: OutputType) -> Result<(), ProposalError> {
    let expected = required_hash_type(output);
    if hash_type == expected {
        Ok(())
    } else {
        Err(ProposalError::WrongHashType {
            expected: expected.raw(),
            got: hash_type.raw(),
        })
    }
}

/// Pooled nonces are all or nothing (one reference per member), and only from the proposer's
/// own slice of each pool: a proposal can't use up (and so waste) another proposer's entries.
fn check_pool_references(
    p: &UnsignedProposal,
    group: &GroupDescriptor,
) -> Result<(), ProposalError> {
    if p.pools.is_empty() {
        return Ok(());
    }
    let members = group.members.len();
    if p.pools.len() != members {
        return Err(ProposalError::PoolReferences {
            got: p.pools.len(),
            members,
        });
    }
    let slice = crate::pool::slice_len(members);
    let start = usize::from(p.proposer) * slice;
    let inputs = p.tx.inputs.len();
    for r in &p.pools {
        let first = usize::from(r.first);
        if first < start || first + inputs > start + slice {
            return Err(ProposalError::PoolOutsideSlice {
                first,
                end: first + inputs,
                start,
                limit: start + slice,
            });
        }
    }
    Ok(())
}

fn check_timing(
    p: &UnsignedProposal,
    group: &GroupDescriptor,
    now_ms: u64,
) -> Result<(), ProposalError> {
    let ahead_ms = p.created_ms.saturating_sub(now_ms);
    if ahead_ms > MAX_CLOCK_AHEAD_MS {
        return Err(ProposalError::CreatedInFuture {
            ahead_ms,
            max_ms: MAX_CLOCK_AHEAD_MS,
        });
    }
    if p.expires_ms <= p.created_ms {
        return Err(ProposalError::ExpiresBeforeCreated {
            created_ms: p.created_ms,
            expires_ms: p.expires_ms,
        });
    }
    if now_ms >= p.expires_ms {
        return Err(ProposalError::Expired {
            expires_ms: p.expires_ms,
            now_ms,
        });
    }
    let lifetime_ms = p.expires_ms - p.created_ms;
    let max_ms = group.timeouts.max_proposal_ttl_ms;
    if lifetime_ms > max_ms {
        return Err(ProposalError::LifetimeTooLong {
            lifetime_ms,
            max_ms,
        });
    }
    Ok(())
}

fn check_spent_output_count(tx: &Transaction, spent: &[TxOut]) -> Result<(), ProposalError> {
    if spent.len() == tx.inputs.len() {
        Ok(())
    } else {
        Err(ProposalError::SpentOutputCount {
            inputs: tx.inputs.len(),
            spent_outputs: spent.len(),
        })
    }
}

/// Shape checks that need no keys and no amounts.
fn check_structure(tx: &Transaction, spent: &[TxOut]) -> Result<(), ProposalError> {
    if !(1..=MAX_STANDARD_TX_VERSION).contains(&tx.version) {
        return Err(ProposalError::NonStandardVersion {
            version: tx.version,
        });
    }
    if tx.inputs.is_empty() {
        return Err(ProposalError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(ProposalError::NoOutputs);
    }
    if tx.inputs.len() > MAX_INPUTS {
        return Err(ProposalError::TooManyInputs {
            count: tx.inputs.len(),
            max: MAX_INPUTS,
        });
    }
    if let Some(input) = tx.inputs.iter().position(|i| !i.script_sig.is_empty()) {
        return Err(ProposalError::ScriptSigNotEmpty { input });
    }
    check_unique_inputs(&tx.inputs)?;
    check_spent_output_count(tx, spent)
}

fn check_unique_inputs(inputs: &[TxIn]) -> Result<(), ProposalError> {
    let mut seen: BTreeMap<OutPoint, usize> = BTreeMap::new();
    for (second, input) in inputs.iter().enumerate() {
        if let Some(&first) = seen.get(&input.prev_out) {
            return Err(ProposalError::DuplicateInput {
                first,
                second,
                outpoint: input.prev_out,
            });
        }
        seen.insert(input.prev_out, second);
    }
    Ok(())
}

fn check_inputs_are_the_groups(
    spent: &[TxOut],
    group_script: &Script,
) -> Result<(), ProposalError> {
    match spent.iter().position(|s| s.script_pubkey != *group_script) {
        Some(input) => Err(ProposalError::ForeignInput { input }),
        None => Ok(()),
    }
}

/// Totals that passed the amount rules: every value and both sums within 0..=MAX_MONEY,
/// inputs ≥ outputs, fee under the hard ceiling.
#[derive(Debug, Clone, Copy)]
struct Amounts {
    inputs: i64,
    outputs: i64,
}

impl Amounts {
    fn fee(&self) -> i64 {
        self.inputs - self.outputs
    }
}

fn check_amounts(tx: &Transaction, spent: &[TxOut]) -> Result<Amounts, ProposalError> {
    let inputs = spent
        .iter()
        .enumerate()
        .map(|(i, s)| check_value(AmountAt::Input(i), s.value, false));
    let inputs = checked_total(inputs, AmountAt::InputsTotal)?;
    let outputs = tx.outputs.iter().enumerate().map(|(i, o)| {
        let data = is_unspendable(&o.script_pubkey);
        check_value(AmountAt::Output(i), o.value, data)
    });
    let outputs = checked_total(outputs, AmountAt::OutputsTotal)?;
    if outputs > inputs {
        return Err(ProposalError::OutputsExceedInputs {
            inputs_sat: inputs,
            outputs_sat: outputs,
        });
    }
    let amounts = Amounts { inputs, outputs };
    check_fee_ceiling(amounts)?;
    Ok(amounts)
}

/// Every amount must be positive, except a data output's, which may be zero.
fn check_value(at: AmountAt, value: i64, zero_allowed: bool) -> Result<i64, ProposalError> {
    if value < 0 || (value == 0 && !zero_allowed) {
        return Err(ProposalError::NonPositiveAmount { at, value });
    }
    if value > MAX_MONEY {
        return Err(ProposalError::AmountTooLarge { at, value });
    }
    Ok(value)
}

/// Sums values that are each ≤ MAX_MONEY; like lotusd, the running sum must stay in range
/// too (and so can never overflow i64).
fn checked_total(
    values: impl Iterator<Item = Result<i64, ProposalError>>,
    at: AmountAt,
) -> Result<i64, ProposalError> {
    let mut total: i64 = 0;
    for value in values {
        total += value?;
        if total > MAX_MONEY {
            return Err(ProposalError::AmountTooLarge { at, value: total });
        }
    }
    Ok(total)
}

fn check_fee_ceiling(amounts: Amounts) -> Result<(), ProposalError> {
    let fee = amounts.fee();
    // fee·100 ≤ 2.1e17, far inside i64.
    let above_share = fee * 100 > amounts.inputs * MAX_FEE_PERCENT_OF_INPUTS;
    if above_share && fee > MAX_FEE_FLOOR_SAT {
        return Err(ProposalError::FeeTooHigh {
            fee_sat: fee,
            inputs_sat: amounts.inputs,
        });
    }
    Ok(())
}

/// Classifies every output (standardness, dust, data-output count) and describes it.
fn review_outputs(
    tx: &Transaction,
    group: &GroupDescriptor,
    group_script: &Script,
) -> Result<Vec<ReviewOutput>, ProposalError> {
    let outputs = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(index, output)| review_output(index, output, group, group_script))
        .collect::<Result<Vec<_>, _>>()?;
    let data = outputs
        .iter()
        .filter(|o| matches!(o.kind, OutputKind::Data { .. }))
        .count();
    if data > MAX_DATA_OUTPUTS {
        return Err(ProposalError::TooManyDataOutputs {
            count: data,
            max: MAX_DATA_OUTPUTS,
        });
    }
    Ok(outputs)
}

fn review_output(
    index: usize,
    output: &TxOut,
    group: &GroupDescriptor,
    group_script: &Script,
) -> Result<ReviewOutput, ProposalError> {
    let kind = classify_output(&output.script_pubkey).map_err(|reason| {
        ProposalError::NonStandardOutput {
            output: index,
            reason,
        }
    })?;
    let threshold_sat = dust_threshold(output);
    if output.value < threshold_sat {
        return Err(ProposalError::DustOutput {
            output: index,
            amount_sat: output.value,
            threshold_sat,
        });
    }
    Ok(ReviewOutput {
        index,
        address: output_address(&output.script_pubkey, &kind, group),
        kind,
        amount_sat: output.value,
        is_change: output.script_pubkey == *group_script,
    })
}

/// Taproot outputs show the type-2 address of their commitment — the form the group's own
/// address takes, so change reads the same as the group address; P2PKH and P2SH show the
/// type-0 script address.
fn output_address(script: &Script, kind: &OutputKind, group: &GroupDescriptor) -> Option<String> {
    match kind {
        OutputKind::Data { .. } => None,
        OutputKind::Taproot { .. } => {
            let commitment = script.as_taproot()?.commitment_key().ok()?;
            Some(taproot_address(&commitment, group.network))
        }
        OutputKind::P2pkh | OutputKind::P2sh => {
            Some(XAddress::for_script(script, group.network).encode())
        }
    }
}

/// lotusd `IsFinalTx`: a locktime only binds when some input's sequence is not final.
fn is_time_locked(tx: &Transaction) -> bool {
    tx.lock_time != 0 && tx.inputs.iter().any(|i| i.sequence != TxIn::SEQUENCE_FINAL)
}

fn burn_warnings(outputs: &[ReviewOutput]) -> impl Iterator<Item = ReviewWarning> + '_ {
    outputs
        .iter()
        .filter(|o| matches!(o.kind, OutputKind::Data { .. }) && o.amount_sat > 0)
        .map(|o| ReviewWarning::BurnsCoins {
            output: o.index,
            amount_sat: o.amount_sat,
        })
}

/// Fee figures derived from validated amounts (all non-negative, ≤ MAX_MONEY).
struct FeeFacts {
    fee_sat: u64,
    size: u64,
    rate_sat_per_kb: u64,
    share_basis_points: Option<u64>,
}

impl FeeFacts {
    fn new(fee_sat: i64, size: usize, sent_sat: i64) -> Self {
        let fee_sat = u64::try_from(fee_sat).unwrap_or(0);
        let size = (size as u64).max(1);
        let sent = u64::try_from(sent_sat).unwrap_or(0);
        Self {
            fee_sat,
            size,
            // fee ≤ 2.1e15, so ×10_000 stays far below u64::MAX.
            rate_sat_per_kb: fee_sat * 1000 / size,
            share_basis_points: (sent > 0).then(|| fee_sat * 10_000 / sent),
        }
    }

    fn warnings(&self) -> Vec<ReviewWarning> {
        let mut warnings = Vec::new();
        if self.rate_sat_per_kb > HIGH_FEE_RATE_SAT_PER_KB {
            warnings.push(ReviewWarning::HighFeeRate {
                sat_per_kb: self.rate_sat_per_kb,
                threshold_sat_per_kb: HIGH_FEE_RATE_SAT_PER_KB,
            });
        }
        if let Some(bp) = self
            .share_basis_points
            .filter(|&bp| bp > HIGH_FEE_SHARE_BASIS_POINTS)
        {
            warnings.push(ReviewWarning::HighFeeShare {
                basis_points: bp,
                threshold_basis_points: HIGH_FEE_SHARE_BASIS_POINTS,
            });
        }
        // lotusd compares the fee with minRelayTxFee.GetFee(size) = size × rate ÷ 1000.
        if self.fee_sat < self.size * MIN_RELAY_FEE_SAT_PER_KB / 1000 {
            warnings.push(ReviewWarning::BelowMinRelayFee {
                sat_per_kb: self.rate_sat_per_kb,
                minimum_sat_per_kb: MIN_RELAY_FEE_SAT_PER_KB,
            });
        }
        warnings
    }
}
