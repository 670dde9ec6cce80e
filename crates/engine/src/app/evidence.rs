//! The evidence viewer: each stored blame record against a signer, verified again now from its
//! signed messages alone (as any third party holding the group would), explained in words,
//! and saved as a file on request. Evidence holds signed public messages only, no secret.

use protocol::envelope::Envelope;
use protocol::evidence::{Evidence, Offence};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

use super::{internal, Engine};
use crate::group_backup::{self, SavedFileView};
use crate::{error_view, ErrorKind, ErrorView};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct EvidenceView {
    /// SHA256 of the record (hex): its id.
    pub id: String,
    pub offence: String,
    /// What was checked and why it failed, in words.
    pub explanation: String,
    pub session_id: String,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub attempt: u32,
    /// 1-based member number of the culprit.
    pub culprit: u32,
    #[ts(type = "number")]
    pub recorded_ms: u64,
    /// The re-verification just now: `null` when it holds, else why not.
    pub verification_error: Option<String>,
    /// The signed messages that prove it.
    pub messages: Vec<EvidenceMessageView>,
    pub size_bytes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct EvidenceMessageView {
    /// 1-based member number of the signer.
    pub sender: u32,
    pub kind: String,
    pub attempt: u32,
    pub sha256: String,
    pub size_bytes: u32,
}

fn explanation(offence: Offence, culprit: u32) -> String {
    match offence {
        Offence::InvalidPartial => format!(
            "Member {culprit}'s partial signature does not verify against the public nonces it \
             signed in round 1 and its own key (s·G ≠ R + e·a·X for the session's sighash). \
             The record holds the proposal, every member's signed nonces and member \
             {culprit}'s signed partials: anyone with the group can recompute it."
        ),
        Offence::Equivocation => format!(
            "Member {culprit} signed two different messages for the same round of the same \
             attempt. Both signed messages are in the record."
        ),
        Offence::MalformedContribution => format!(
            "Member {culprit} signed a contribution that breaks the rules on its face: nonces \
             that do not open its round-0 commitment, the wrong number of nonces or partials, \
             or final signatures that do not verify."
        ),
        Offence::WrongElectionProof => format!(
            "Member {culprit}'s round-2 message names a coordinator election other than the one \
             the session's data determines (a try to steer who broadcasts)."
        ),
    }
}

/// A signer's public key from its hex, as the screens send it.
fn signer_key(text: &str) -> Result<[u8; 33], ErrorView> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            error_view(
                ErrorKind::InvalidFile,
                "That is not a signer key",
                format!("'{text}' is not a 33-byte public key in hex"),
                "Pick a co-signer from the list.",
            )
        })
}

impl Engine {
    /// Every blame record against the signer (public key hex), newest first.
    pub fn evidence_against(&self, signer: &str) -> Result<Vec<EvidenceView>, ErrorView> {
        let key = signer_key(signer)?;
        self.with_profile(|profile| {
            let records = profile
                .store()
                .evidence_against(&key)
                .map_err(|e| internal("The evidence cannot be read", e))?;
            let groups = profile.groups().map_err(|e| crate::Explain::view(&e))?;
            let mut views = Vec::new();
            for record in records {
                let group_id = profile
                    .store()
                    .session(&record.session_id)
                    .ok()
                    .flatten()
                    .map(|s| s.group_id);
                let group = group_id.and_then(|id| groups.iter().find(|(g, _)| g.id().0 == id));
                let decoded = Evidence::decode(&record.bytes);
                let verification_error = match (&decoded, group) {
                    (Err(e), _) => Some(format!("the record cannot be read: {e}")),
                    (Ok(_), None) => Some("the group is not in this profile".to_owned()),
                    (Ok(evidence), Some((group, _))) => {
                        evidence.verify(group).err().map(|e| e.to_string())
                    }
                };
                let messages = decoded
                    .as_ref()
                    .map(|e| {
                        e.envelopes
                            .iter()
                            .map(|bytes| {
                                let header =
                                    Envelope::decode(bytes, bytes.len()).map(|e| e.header).ok();
                                EvidenceMessageView {
                                    sender: header.map_or(0, |h| u32::from(h.sender) + 1),
                                    kind: header.map_or("unreadable".to_owned(), |h| {
                                        format!("{:?}", h.kind).to_lowercase()
                                    }),
                                    attempt: header.map_or(0, |h| h.attempt),
                                    sha256: hex::encode(Sha256::digest(bytes)),
                                    size_bytes: bytes.len() as u32,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let culprit = u32::from(record.culprit) + 1;
                let offence = decoded.as_ref().map(|e| e.offence).ok();
                views.push(EvidenceView {
                    id: hex::encode(record.id),
                    offence: offence
                        .map_or(record.offence.as_str().to_owned(), |o| o.name().to_owned()),
                    explanation: offence.map_or_else(
                        || "The record cannot be read.".to_owned(),
                        |o| explanation(o, culprit),
                    ),
                    session_id: hex::encode(record.session_id),
                    group_id: group.map(|(g, _)| g.id().to_string()),
                    group_name: group.map(|(g, _)| g.name.clone()),
                    attempt: record.attempt,
                    culprit,
                    recorded_ms: record.recorded_ms,
                    verification_error,
                    messages,
                    size_bytes: record.bytes.len() as u32,
                });
            }
            views.sort_by_key(|v| std::cmp::Reverse(v.recorded_ms));
            Ok(views)
        })
    }

    /// Saves one blame record (its exact bytes) for a third party to verify.
    pub fn save_evidence(&self, signer: &str, id: &str) -> Result<SavedFileView, ErrorView> {
        let key = signer_key(signer)?;
        let record = self.with_profile(|profile| {
            profile
                .store()
                .evidence_against(&key)
                .map_err(|e| internal("The evidence cannot be read", e))?
                .into_iter()
                .find(|r| hex::encode(r.id) == id)
                .ok_or_else(|| internal("No such evidence", id))
        })?;
        let folder = self.export_folder()?;
        let path = group_backup::write_new(
            &folder,
            &format!("lotus-cosigner-evidence-{}", &id[..16.min(id.len())]),
            "bin",
            &record.bytes,
        )
        .map_err(|e| internal("The evidence cannot be saved", e))?;
        Ok(SavedFileView {
            path: path.display().to_string(),
            saved_at_ms: crate::unix_now_ms(),
        })
    }
}

/// One entry of the tamper-evident log, as the Audit screen lists and filters it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct AuditEntryView {
    #[ts(type = "number")]
    pub seq: u64,
    #[ts(type = "number")]
    pub time_ms: u64,
    pub kind: String,
    pub session_id: Option<String>,
    pub group_id: Option<String>,
    /// The signer the entry is about (hex), if any.
    pub signer: Option<String>,
    /// The entry's own fields (JSON), for the detail line.
    pub detail: String,
    pub hash: String,
}

impl Engine {
    /// The audit log's entries, newest first (at most `limit`).
    pub async fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntryView>, ErrorView> {
        let log = self.audit_export().await?;
        let mut entries: Vec<AuditEntryView> = log
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|entry| {
                let text = |field: &str| entry[field].as_str().map(str::to_owned);
                let mut detail = entry["event"].clone();
                if let Some(map) = detail.as_object_mut() {
                    for redundant in ["kind", "session_id", "group_id"] {
                        map.remove(redundant);
                    }
                }
                AuditEntryView {
                    seq: entry["seq"].as_u64().unwrap_or(0),
                    time_ms: entry["time_ms"].as_u64().unwrap_or(0),
                    kind: text("kind").unwrap_or_default(),
                    session_id: text("session_id"),
                    group_id: text("group_id"),
                    signer: text("signer"),
                    detail: detail.to_string(),
                    hash: text("hash").unwrap_or_default(),
                }
            })
            .collect();
        entries.reverse();
        entries.truncate(limit);
        Ok(entries)
    }
}
