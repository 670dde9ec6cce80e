//! Offline use: a session as a file. Export writes the signed proposal (and the signed
//! transaction, once there is one); import on another machine shows the same review (the
//! proposal is validated in full, exactly as if it had arrived over the network) and can
//! broadcast the signed transaction from anywhere.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use protocol::envelope::{Envelope, MessageKind};

use crate::custody::Custody;
use crate::profile::Profile;
use crate::runtime::{EngineEvent, RuntimeError};

pub const FORMAT: &str = "lotus-cosigner-session/1";

/// The file's contents (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFile {
    pub format: String,
    pub session_id: String,
    pub group_id: String,
    /// The signed proposal envelope, hex.
    pub proposal: String,
    /// The fully signed transaction, hex, once the session produced it.
    pub signed_tx: Option<String>,
}

/// What an import showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ImportedView {
    pub session_id: String,
    pub group_id: String,
    pub txid: String,
    /// The digest to approve (`session approve ID --digest HEX`).
    pub review_digest: String,
    pub outputs: Vec<ImportedOutput>,
    #[ts(type = "number")]
    pub fee_sats: i64,
    /// The signed transaction in the file, hex, if any (for broadcasting).
    pub signed_tx: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ImportedOutput {
    pub address: Option<String>,
    #[ts(type = "number")]
    pub amount_sats: i64,
    pub is_change: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionFileError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Offline(#[from] crate::runtime::offline::OfflineError),
    #[error("no session {0} in this profile")]
    UnknownSession(String),
    #[error("this file is not a Lotus Cosigner session file ({0})")]
    NotASessionFile(String),
    #[error(
        "this session belongs to group {0}, which is not in this profile: accept its invite first"
    )]
    UnknownGroup(String),
    #[error("the proposal in the file was refused: {0}")]
    Refused(String),
    #[error("the proposal in the file was not taken up (it may have expired, or already be here)")]
    NoReview,
}

pub fn export(profile: &Profile, session_id: &[u8; 32]) -> Result<SessionFile, SessionFileError> {
    let record = profile
        .store()
        .session(session_id)?
        .ok_or_else(|| SessionFileError::UnknownSession(hex::encode(session_id)))?;
    Ok(SessionFile {
        format: FORMAT.to_owned(),
        session_id: hex::encode(record.session_id),
        group_id: hex::encode(record.group_id),
        proposal: hex::encode(&record.proposal_envelope),
        signed_tx: record.signed_tx.as_ref().map(hex::encode),
    })
}

/// The file's signed proposal, bytes and decoded, checked to be the session and group the file
/// names: a file naming one session while carrying another would show the wrong review.
/// (Its signature and contents are checked where it is delivered, like any message.)
pub fn proposal_of(file: &SessionFile) -> Result<(Vec<u8>, Envelope), SessionFileError> {
    let not_one = |why: String| SessionFileError::NotASessionFile(why);
    let bytes = hex::decode(&file.proposal)
        .map_err(|e| not_one(format!("the proposal is not hex: {e}")))?;
    let envelope = Envelope::decode(&bytes, bytes.len())
        .map_err(|e| not_one(format!("the proposal does not decode: {e}")))?;
    let header = &envelope.header;
    let named_session = hex::decode(file.session_id.trim()).ok();
    if header.kind != MessageKind::Proposal
        || named_session.as_deref() != Some(&header.session_id[..])
        || !header
            .group_id
            .to_string()
            .eq_ignore_ascii_case(file.group_id.trim())
    {
        return Err(not_one(
            "its proposal is not the session and group the file names".into(),
        ));
    }
    Ok((bytes, envelope))
}

pub fn parse(text: &str) -> Result<SessionFile, SessionFileError> {
    let file: SessionFile =
        serde_json::from_str(text).map_err(|e| SessionFileError::NotASessionFile(e.to_string()))?;
    if file.format != FORMAT {
        return Err(SessionFileError::NotASessionFile(format!(
            "format {:?}, expected {FORMAT:?}",
            file.format
        )));
    }
    Ok(file)
}

/// Feeds the file's proposal to this profile's session runtime, as if it had arrived from a
/// co-signer: full validation, then the review. The session is kept in the store.
pub async fn import(
    profile: &Profile,
    custody: &Custody,
    file: &SessionFile,
) -> Result<ImportedView, SessionFileError> {
    let (envelope, decoded) = proposal_of(file)?;
    let groups: Vec<_> = profile
        .groups()
        .map_err(|e| SessionFileError::NotASessionFile(e.to_string()))?
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    if !groups.iter().any(|g| g.id() == decoded.header.group_id) {
        return Err(SessionFileError::UnknownGroup(file.group_id.clone()));
    }
    let (engine, core, deliver, _lock) =
        crate::runtime::offline::spawn_for_profile(profile, custody)?;
    let mut events = engine.events();
    // Already here (imported before, or this profile's own): its review as the runtime has it.
    if let Some(id) = crate::runtime::SessionId::from_hex(&file.session_id) {
        if let Some(detail) = engine.session_detail(id).await? {
            drop(engine);
            drop(deliver);
            core.finish();
            return Ok(view_of(file, id, &detail.review));
        }
    }
    // The file is a local delivery; the protocol's budgets charge this connection id.
    let _ = deliver
        .send(crate::runtime::transport::Delivery::new(
            crate::runtime::transport::BY_HAND,
            envelope,
        ))
        .await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::Session {
                    session_id,
                    event: protocol::session::Event::ReviewReady { review },
                }) => {
                    return Ok((session_id, review));
                }
                Ok(EngineEvent::Session {
                    event: protocol::session::Event::ProposalRefused { error, .. },
                    ..
                }) => {
                    return Err(SessionFileError::Refused(error));
                }
                Ok(_) => {}
                Err(_) => return Err(SessionFileError::NoReview),
            }
        }
    })
    .await
    .unwrap_or(Err(SessionFileError::NoReview));
    drop(engine);
    drop(deliver);
    core.finish();
    let (session_id, review) = outcome?;
    Ok(view_of(file, session_id, &review))
}

fn view_of(
    file: &SessionFile,
    session_id: crate::runtime::SessionId,
    review: &protocol::proposal::Review,
) -> ImportedView {
    ImportedView {
        session_id: session_id.to_string(),
        group_id: file.group_id.clone(),
        txid: review.txid.to_display_hex(),
        review_digest: hex::encode(review.digest),
        outputs: review
            .outputs
            .iter()
            .map(|o| ImportedOutput {
                address: o.address.clone(),
                amount_sats: o.amount_sat,
                is_change: o.is_change,
            })
            .collect(),
        fee_sats: review.fee_sat,
        signed_tx: file.signed_tx.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::envelope::Header;
    use protocol::group::GroupId;

    fn file_of(kind: MessageKind, session_id: [u8; 32], group: [u8; 32]) -> SessionFile {
        let key = lotus::PrivateKey::from_bytes(&[7; 32]).unwrap();
        let header = Header::new(kind, GroupId(group), session_id, [0; 32], 0, 0, 0);
        SessionFile {
            format: FORMAT.to_owned(),
            session_id: hex::encode(session_id),
            group_id: hex::encode(group),
            proposal: hex::encode(Envelope::sign(header, vec![1, 2, 3], &key).encode()),
            signed_tx: None,
        }
    }

    #[test]
    fn a_file_whose_proposal_is_another_session_or_group_is_not_a_session_file() {
        let file = file_of(MessageKind::Proposal, [2; 32], [1; 32]);
        assert!(proposal_of(&file).is_ok());
        let mut other_session = file.clone();
        other_session.session_id = hex::encode([3; 32]);
        let mut other_group = file.clone();
        other_group.group_id = hex::encode([4; 32]);
        let mut not_hex = file.clone();
        not_hex.proposal = "zz".into();
        let nonces = file_of(MessageKind::Nonces, [2; 32], [1; 32]);
        for refused in [other_session, other_group, not_hex, nonces] {
            assert!(
                matches!(
                    proposal_of(&refused),
                    Err(SessionFileError::NotASessionFile(_))
                ),
                "{refused:?}"
            );
        }
    }
}
