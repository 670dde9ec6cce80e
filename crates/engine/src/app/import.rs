//! Importing a session file in the app: the proposal in it goes through the running engine's
//! gate and validation exactly as if a co-signer had sent it, and the person then reviews it
//! like any other.

use super::{internal, parse_session_id, Engine};
use crate::runtime::EngineEvent;
use crate::session_files::{self, SessionFileError};
use crate::views::{Change, SessionView};
use crate::{ErrorView, Explain};

/// Larger than any real session file (a proposal is a few KB), small enough to refuse junk.
const MAX_FILE_BYTES: usize = 1 << 20;

impl Engine {
    /// Takes a session file's text (`lotus-cosigner-session/1`) and answers the session to
    /// review. A session already here is opened, if the file holds the same proposal.
    pub async fn import_session_file(&self, text: &str) -> Result<SessionView, ErrorView> {
        if text.len() > MAX_FILE_BYTES {
            return Err(SessionFileError::NotASessionFile(format!(
                "{} bytes, larger than any session file",
                text.len()
            ))
            .view());
        }
        let file = session_files::parse(text).map_err(|e| e.view())?;
        let session = parse_session_id(&file.session_id)?;
        let (bytes, envelope) = session_files::proposal_of(&file).map_err(|e| e.view())?;
        let header = &envelope.header;
        let known_group = self.with_profile(|profile| {
            Ok(profile
                .groups()
                .map_err(|e| internal("The groups cannot be read", e))?
                .iter()
                .any(|(group, _)| group.id() == header.group_id))
        })?;
        if !known_group {
            return Err(SessionFileError::UnknownGroup(file.group_id.clone()).view());
        }
        // Already here (over the network, or imported before): the same proposal opens it.
        let stored = self.with_profile(|profile| {
            profile
                .store()
                .session(&session.0)
                .map_err(|e| internal("The session cannot be read", e))
        })?;
        if let Some(record) = stored {
            if record.proposal_envelope != bytes {
                return Err(SessionFileError::Refused(
                    "this session is already here with another proposal: the proposer \
                     signed two different payments under one session id"
                        .into(),
                )
                .view());
            }
            return self.session(&file.session_id).await;
        }

        let running = self.running()?;
        // Listen before delivering: a refusal is announced while the core handles it.
        let mut events = running.sessions.events();
        let verdict = running
            .sessions
            .receive_by_hand(bytes)
            .await
            .map_err(|e| e.view())?;
        if let Err(rejection) = verdict {
            return Err(SessionFileError::Refused(rejection.to_string()).view());
        }
        while let Ok(event) = events.try_recv() {
            if let EngineEvent::Session {
                session_id,
                event: protocol::session::Event::ProposalRefused { error, .. },
            } = event
            {
                if session_id == session {
                    return Err(SessionFileError::Refused(error).view());
                }
            }
        }
        let view = self
            .session(&file.session_id)
            .await
            .map_err(|_| SessionFileError::NoReview.view())?;
        let _ = self.changes.send(Change::Session {
            id: session.to_string(),
        });
        Ok(view)
    }
}
