//! Blame evidence: a self-contained record that any third party holding the group descriptor
//! re-verifies from signed messages alone, without trusting whoever reports it.
//!
//! Silence is never evidence (it is a timeout record, see `session::Event::TimedOut`).

use musig::{AggregatedNonce, KeyAggContext, Session as MusigSession};

use crate::election::{derive_salt, elect, ElectionInput};
use crate::envelope::{Envelope, MessageKind};
use crate::group::GroupDescriptor;
use crate::messages::{Commitment, Completed, Nonces, Partials};
use crate::pool::{pooled_nonces, salt_commitment};
use crate::proposal::Proposal;
use crate::wire::{DecodeError, Reader, Writer};

/// Largest envelope an evidence record carries (a proposal may be large).
const MAX_EVIDENCE_ENVELOPE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Offence {
    /// A partial signature that does not verify against the sender's own signed nonces.
    InvalidPartial,
    /// Two different signed messages for the same slot (session, attempt, kind).
    Equivocation,
    /// A signed contribution that breaks the rules on its face: round-1 nonces that don't open
    /// the round-0 commitment, the wrong number of nonces or partials, or final signatures
    /// that don't verify.
    MalformedContribution,
    /// A round-2 message whose election proof differs from the one the data determines.
    WrongElectionProof,
}

impl Offence {
    pub fn name(self) -> &'static str {
        match self {
            Offence::InvalidPartial => "invalid partial signature",
            Offence::Equivocation => "equivocation",
            Offence::MalformedContribution => "malformed signed contribution",
            Offence::WrongElectionProof => "wrong election proof",
        }
    }

    fn code(self) -> u8 {
        match self {
            Offence::InvalidPartial => 1,
            Offence::Equivocation => 2,
            Offence::MalformedContribution => 3,
            Offence::WrongElectionProof => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        [
            Offence::InvalidPartial,
            Offence::Equivocation,
            Offence::MalformedContribution,
            Offence::WrongElectionProof,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }
}

/// The record: the offence claimed and the signed envelopes that prove it. The culprit is
/// derived (the signer of the offending message), never taken from the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub offence: Offence,
    /// The signed proposal (needed to recompute sighashes and the election); may be empty
    /// for equivocation.
    pub proposal: Vec<u8>,
    /// Signed envelopes, in an order fixed per offence (see `verify`).
    pub envelopes: Vec<Vec<u8>>,
}

/// What verified evidence establishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blame {
    pub offence: Offence,
    pub culprit: u16,
    pub session_id: [u8; 32],
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence is malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("a message in the evidence is not validly signed by a member: {0}")]
    Unsigned(String),
    #[error("the messages do not belong together: {0}")]
    Inconsistent(&'static str),
    #[error("the messages do not show the claimed offence")]
    NoOffence,
}

impl Evidence {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.offence.code())
            .bytes(&self.proposal)
            .count(self.envelopes.len());
        for e in &self.envelopes {
            w.bytes(e);
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = r.u8("offence")?;
        let offence = Offence::from_code(code)
            .ok_or_else(|| DecodeError::invalid("offence", format!("code {code}")))?;
        let proposal = r.bytes(MAX_EVIDENCE_ENVELOPE, "proposal")?.to_vec();
        let count = r.count(crate::group::MAX_MEMBERS + 1, 4, "envelopes")?;
        let envelopes = (0..count)
            .map(|_| Ok(r.bytes(MAX_EVIDENCE_ENVELOPE, "envelope")?.to_vec()))
            .collect::<Result<Vec<_>, DecodeError>>()?;
        r.finish()?;
        Ok(Self {
            offence,
            proposal,
            envelopes,
        })
    }

    /// Re-verifies everything from the signed bytes and returns who is to blame. The cheap
    /// structure (how many messages the offence takes) is checked before any signature.
    pub fn verify(&self, group: &GroupDescriptor) -> Result<Blame, EvidenceError> {
        let n = group.members.len();
        let count_ok = match self.offence {
            Offence::Equivocation => self.envelopes.len() == 2,
            Offence::MalformedContribution => (1..=2).contains(&self.envelopes.len()),
            Offence::InvalidPartial | Offence::WrongElectionProof => self.envelopes.len() == n + 1,
        };
        if !count_ok {
            return Err(EvidenceError::Inconsistent(
                "wrong number of messages for the offence",
            ));
        }
        let envelopes = self
            .envelopes
            .iter()
            .map(|bytes| {
                let e = Envelope::decode(bytes, MAX_EVIDENCE_ENVELOPE)?;
                e.verify_signature(group)
                    .map_err(|err| EvidenceError::Unsigned(err.to_string()))?;
                Ok(e)
            })
            .collect::<Result<Vec<_>, EvidenceError>>()?;
        // No session has attempts beyond the limit: evidence naming one is made up (and an
        // attempt number near u32::MAX must never reach attempt arithmetic).
        if envelopes
            .iter()
            .any(|e| e.header.attempt >= crate::session::MAX_ATTEMPTS)
        {
            return Err(EvidenceError::Inconsistent("attempt beyond the limit"));
        }
        match self.offence {
            Offence::Equivocation => verify_equivocation(&envelopes),
            Offence::InvalidPartial => self.verify_invalid_partial(group, &envelopes),
            Offence::MalformedContribution => self.verify_malformed(group, &envelopes),
            Offence::WrongElectionProof => self.verify_wrong_proof(group, &envelopes),
        }
    }

    /// The proposal `anchor` was signed for: its review digest must be the one the message
    /// binds, so nobody can pair a genuine message with another proposal that reuses its
    /// session id.
    fn proposal_of(
        &self,
        group: &GroupDescriptor,
        anchor: &Envelope,
    ) -> Result<Proposal, EvidenceError> {
        let proposal = Proposal::decode(&self.proposal, MAX_EVIDENCE_ENVELOPE)
            .map_err(EvidenceError::Decode)?;
        if proposal.review_digest() != anchor.header.proposal
            || proposal.session_id.0 != anchor.header.session_id
        {
            return Err(EvidenceError::Inconsistent(
                "the message is bound to another proposal",
            ));
        }
        proposal
            .verify_signature(group)
            .map_err(|e| EvidenceError::Unsigned(e.to_string()))?;
        Ok(proposal)
    }

    /// A round-2 message with what it is judged against: the proposal its header names and,
    /// once its payload decodes, the attempt as the signer itself saw it (the nonces it
    /// committed to). envelopes = [the culprit's Partials, then every member's Nonces].
    fn signer_view<'e>(
        &self,
        group: &GroupDescriptor,
        envelopes: &'e [Envelope],
    ) -> Result<SignerView<'e>, EvidenceError> {
        let (partials_env, nonce_envs) = envelopes
            .split_first()
            .ok_or(EvidenceError::Inconsistent("no messages"))?;
        expect_kind(partials_env, MessageKind::Partials)?;
        let proposal = self.proposal_of(group, partials_env)?;
        let partials = match Partials::decode(&partials_env.payload) {
            Ok(partials) => {
                let context = attempt_context(
                    group,
                    &proposal,
                    partials_env,
                    nonce_envs,
                    &partials.nonces_used,
                )?;
                Ok((partials, context))
            }
            Err(e) => Err(e),
        };
        Ok(SignerView {
            partials_env,
            proposal,
            partials,
        })
    }

    fn verify_invalid_partial(
        &self,
        group: &GroupDescriptor,
        envelopes: &[Envelope],
    ) -> Result<Blame, EvidenceError> {
        let view = self.signer_view(group, envelopes)?;
        let blame = blame_for(Offence::InvalidPartial, view.partials_env);
        // Signed garbage in a partials slot is itself the fault.
        let Ok((partials, context)) = view.partials else {
            return Ok(blame);
        };
        if partials.partials.len() != context.messages.len() {
            return Ok(blame);
        }
        let sender = view.partials_env.header.sender as usize;
        let signer = context.sorted_index[sender];
        for (input, partial) in partials.partials.iter().enumerate() {
            let session = MusigSession::new(
                &context.key_agg,
                group.output.spend_path(),
                &context.aggregated[input],
                &context.messages[input],
            )
            .map_err(|_| EvidenceError::Inconsistent("nonces do not aggregate"))?;
            if !session.verify_partial(signer, &context.nonces[sender].nonces[input], partial) {
                return Ok(blame);
            }
        }
        Err(EvidenceError::NoOffence)
    }

    fn verify_wrong_proof(
        &self,
        group: &GroupDescriptor,
        envelopes: &[Envelope],
    ) -> Result<Blame, EvidenceError> {
        let view = self.signer_view(group, envelopes)?;
        let (partials, context) = view.partials?;
        let header = &view.partials_env.header;
        if header.attempt == 0 && !view.proposal.pools.is_empty() && group.election.needs_salt() {
            // A pooled salted election runs after signing: the round-2 proof is zero.
            return if partials.election_proof == [0; 32] {
                Err(EvidenceError::NoOffence)
            } else {
                Ok(blame_for(Offence::WrongElectionProof, view.partials_env))
            };
        }
        let shares: Vec<[u8; 32]> = context.nonces.iter().map(|n| n.salt_share).collect();
        let penalized = election_penalties(group, &view.proposal);
        let election = elect(
            group.election,
            &ElectionInput {
                members: &group.members,
                session_id: header.session_id,
                attempt: header.attempt,
                sequence: view.proposal.sequence,
                salt: Some(derive_salt(&header.session_id, header.attempt, &shares)),
                penalized: &penalized,
            },
        )
        .map_err(|_| EvidenceError::Inconsistent("election cannot run"))?;
        if election.proof != partials.election_proof {
            Ok(blame_for(Offence::WrongElectionProof, view.partials_env))
        } else {
            Err(EvidenceError::NoOffence)
        }
    }

    /// envelopes = [the offending message, optionally the same sender's commitment].
    fn verify_malformed(
        &self,
        group: &GroupDescriptor,
        envelopes: &[Envelope],
    ) -> Result<Blame, EvidenceError> {
        let offending = envelopes
            .first()
            .ok_or(EvidenceError::Inconsistent("no messages"))?;
        let proposal = self.proposal_of(group, offending)?;
        let blame = blame_for(Offence::MalformedContribution, offending);
        let inputs = proposal.tx.inputs.len();
        match offending.header.kind {
            MessageKind::Nonces => {
                let Ok(nonces) = Nonces::decode(&offending.payload) else {
                    return Ok(blame);
                };
                if nonces.nonces.len() != inputs {
                    return Ok(blame);
                }
                let commitment_env = envelopes.get(1).ok_or(EvidenceError::NoOffence)?;
                expect_kind(commitment_env, MessageKind::Commitment)?;
                same_slot_owner(offending, commitment_env)?;
                if commitment_env.header.proposal != offending.header.proposal {
                    return Err(EvidenceError::Inconsistent(
                        "the commitment is bound to another proposal",
                    ));
                }
                let commitment = Commitment::decode(&commitment_env.payload)?;
                let h = &offending.header;
                if nonces.commitment(&h.session_id, h.attempt, h.sender) != commitment.0 {
                    Ok(blame)
                } else {
                    Err(EvidenceError::NoOffence)
                }
            }
            MessageKind::Partials => match Partials::decode(&offending.payload) {
                Ok(p)
                    if p.nonces_used.len() == group.members.len() && p.partials.len() == inputs =>
                {
                    match envelopes.get(1) {
                        // [its partials, its named pool]: the revealed salt share must open
                        // the pool entry's commitment.
                        Some(pool) => verify_salt_reveal(group, &proposal, offending, &p, pool),
                        None => Err(EvidenceError::NoOffence),
                    }
                }
                _ => Ok(blame),
            },
            MessageKind::Commitment => match Commitment::decode(&offending.payload) {
                Ok(_) => Err(EvidenceError::NoOffence),
                Err(_) => Ok(blame),
            },
            MessageKind::Completed => {
                let Ok(completed) = Completed::decode(&offending.payload) else {
                    return Ok(blame);
                };
                let sighashes = proposal
                    .sighashes(group)
                    .map_err(|_| EvidenceError::Inconsistent("proposal has no sighashes"))?;
                let key_agg = group
                    .key_agg()
                    .map_err(|_| EvidenceError::Inconsistent("group key"))?;
                let key = key_agg.signing_key(group.output.spend_path()).key;
                let all_valid = completed.signatures.len() == sighashes.len()
                    && completed
                        .signatures
                        .iter()
                        .zip(&sighashes)
                        .all(|(s, m)| lotus::schnorr::verify(s, m, &key));
                if all_valid {
                    Err(EvidenceError::NoOffence)
                } else {
                    Ok(blame)
                }
            }
            _ => Err(EvidenceError::Inconsistent(
                "this message kind cannot be malformed evidence",
            )),
        }
    }
}

/// A pooled attempt of a salted election: the share revealed with the partials must open the
/// commitment of the sender's first named pool entry.
fn verify_salt_reveal(
    group: &GroupDescriptor,
    proposal: &Proposal,
    partials_env: &Envelope,
    partials: &Partials,
    pool: &Envelope,
) -> Result<Blame, EvidenceError> {
    let h = &partials_env.header;
    if h.attempt != 0 || proposal.pools.is_empty() || !group.election.needs_salt() {
        return Err(EvidenceError::Inconsistent("not a pooled salted attempt"));
    }
    let sender = h.sender as usize;
    let pool_ref = proposal
        .pools
        .get(sender)
        .ok_or(EvidenceError::Inconsistent("no pool for the sender"))?;
    let pooled = pooled_nonces(
        pool,
        &proposal.group_id,
        group.members.len(),
        h.sender,
        proposal.proposer,
        pool_ref,
        proposal.tx.inputs.len(),
    )
    .map_err(|_| EvidenceError::Inconsistent("not the pool the proposal names"))?;
    let revealed = partials.salt_share.as_ref().map(salt_commitment);
    if revealed == Some(pooled.salt_commitment) {
        Err(EvidenceError::NoOffence)
    } else {
        Ok(blame_for(Offence::MalformedContribution, partials_env))
    }
}

fn blame_for(offence: Offence, envelope: &Envelope) -> Blame {
    Blame {
        offence,
        culprit: envelope.header.sender,
        session_id: envelope.header.session_id,
        attempt: envelope.header.attempt,
    }
}

fn expect_kind(envelope: &Envelope, kind: MessageKind) -> Result<(), EvidenceError> {
    if envelope.header.kind == kind {
        Ok(())
    } else {
        Err(EvidenceError::Inconsistent("unexpected message kind"))
    }
}

fn same_slot_owner(a: &Envelope, b: &Envelope) -> Result<(), EvidenceError> {
    let (x, y) = (&a.header, &b.header);
    if x.group_id == y.group_id
        && x.session_id == y.session_id
        && x.attempt == y.attempt
        && x.sender == y.sender
    {
        Ok(())
    } else {
        Err(EvidenceError::Inconsistent(
            "messages are from different senders or attempts",
        ))
    }
}

/// envelopes = [first, second]: same sender, session, attempt and kind; different payloads.
/// Only kinds with an exclusive slot count (a proposal, commitment, nonces, partials): an
/// honest member may send two different notices for one attempt.
fn verify_equivocation(envelopes: &[Envelope]) -> Result<Blame, EvidenceError> {
    let [first, second] = envelopes else {
        return Err(EvidenceError::Inconsistent(
            "equivocation needs exactly two messages",
        ));
    };
    same_slot_owner(first, second)?;
    if first.header.kind != second.header.kind {
        return Err(EvidenceError::Inconsistent("different message kinds"));
    }
    if !first.header.kind.has_exclusive_slot() {
        return Err(EvidenceError::Inconsistent(
            "two different notices are not equivocation",
        ));
    }
    if first.payload == second.payload {
        return Err(EvidenceError::NoOffence);
    }
    Ok(blame_for(Offence::Equivocation, first))
}

/// A round-2 message, the proposal it names, and its decoded payload with the attempt it was
/// made in (or why the payload does not decode).
struct SignerView<'e> {
    partials_env: &'e Envelope,
    proposal: Proposal,
    partials: Result<(Partials, AttemptContext), DecodeError>,
}

/// What the rest of an attempt looked like, rebuilt from every member's signed nonces.
struct AttemptContext {
    key_agg: KeyAggContext,
    messages: Vec<[u8; 32]>,
    nonces: Vec<Nonces>,
    aggregated: Vec<AggregatedNonce>,
    /// member index → MuSig2 sorted index.
    sorted_index: Vec<usize>,
}

/// `nonces_used` are the envelope ids the anchor (a Partials message) committed to: the nonce
/// envelopes must be exactly those, so the signer is judged against its own view.
fn attempt_context(
    group: &GroupDescriptor,
    proposal: &Proposal,
    anchor: &Envelope,
    nonce_envs: &[Envelope],
    nonces_used: &[[u8; 32]],
) -> Result<AttemptContext, EvidenceError> {
    let h = &anchor.header;
    let n = group.members.len();
    if nonce_envs.len() != n || nonces_used.len() != n {
        return Err(EvidenceError::Inconsistent("need every member's nonces"));
    }
    // A pooled attempt's round 1 is the pools the proposal names (bound to no proposal).
    let pooled = h.attempt == 0 && !proposal.pools.is_empty();
    if nonce_envs
        .iter()
        .zip(nonces_used)
        .any(|(env, id)| env.id() != *id || (!pooled && env.header.proposal != h.proposal))
    {
        return Err(EvidenceError::Inconsistent(
            "the nonces are not the ones the signer committed to",
        ));
    }
    let messages = proposal
        .sighashes(group)
        .map_err(|_| EvidenceError::Inconsistent("proposal has no sighashes"))?;
    let mut nonces = Vec::with_capacity(n);
    for (member, env) in nonce_envs.iter().enumerate() {
        let e = &env.header;
        if pooled {
            let pooled = pooled_nonces(
                env,
                &proposal.group_id,
                n,
                member as u16,
                proposal.proposer,
                &proposal.pools[member],
                messages.len(),
            )
            .map_err(|_| EvidenceError::Inconsistent("not the pooled nonces the proposal names"))?;
            nonces.push(Nonces {
                salt_share: [0; 32],
                nonces: pooled.nonces,
                audit_head: None,
            });
            continue;
        }
        if e.kind != MessageKind::Nonces
            || e.sender as usize != member
            || e.session_id != h.session_id
            || e.attempt != h.attempt
        {
            return Err(EvidenceError::Inconsistent(
                "nonces must be every member's, in member order, for this attempt",
            ));
        }
        let decoded = Nonces::decode(&env.payload)?;
        if decoded.nonces.len() != messages.len() {
            return Err(EvidenceError::Inconsistent(
                "a member's nonces are malformed (that is separate evidence)",
            ));
        }
        nonces.push(decoded);
    }
    let key_agg = group
        .key_agg()
        .map_err(|_| EvidenceError::Inconsistent("group key"))?;
    let sorted_index: Vec<usize> = group
        .members
        .iter()
        .map(|k| {
            key_agg
                .index_of(k)
                .expect("member keys are in the aggregate")
        })
        .collect();
    let mut aggregated = Vec::with_capacity(messages.len());
    for input in 0..messages.len() {
        // Sum in sorted order, as every signer does (addition is commutative anyway).
        let per_input: Vec<_> = nonces.iter().map(|n| n.nonces[input]).collect();
        aggregated.push(
            AggregatedNonce::sum(&per_input)
                .map_err(|_| EvidenceError::Inconsistent("nonces do not aggregate"))?,
        );
    }
    Ok(AttemptContext {
        key_agg,
        messages,
        nonces,
        aggregated,
        sorted_index,
    })
}

/// The penalized members an election uses: only the reputation-aware method reads the
/// proposal's evidence (every other method ignores it, so a proposer can't change the proof
/// an honest member computes by attaching evidence).
pub fn election_penalties(group: &GroupDescriptor, proposal: &Proposal) -> Vec<u16> {
    if group.election == crate::election::ElectionMethod::ReputationAware {
        penalized_members(group, proposal)
    } else {
        Vec::new()
    }
}

/// Members named by verified evidence attached to a proposal (reputation-aware election).
/// Records that don't verify are ignored, so a proposer cannot penalize anyone by claiming.
pub fn penalized_members(group: &GroupDescriptor, proposal: &Proposal) -> Vec<u16> {
    let mut penalized: Vec<u16> = proposal
        .evidence
        .iter()
        .filter_map(|bytes| Evidence::decode(bytes).ok())
        // Wrong-election-proof records are not followed here: verifying one needs the penalized
        // list of *its* proposal, and following that chain would make verification unbounded.
        .filter(|e| e.offence != Offence::WrongElectionProof)
        .filter_map(|e| e.verify(group).ok())
        .map(|blame| blame.culprit)
        .collect();
    penalized.sort_unstable();
    penalized.dedup();
    penalized
}
