//! A signed session's transaction as the chain sees it (mempool, confirmations), and the way
//! out for one nobody ever saw: cancel it by spending one of its coins elsewhere first.

use chain::multi::StatusReport;
use serde::Serialize;
use ts_rs::TS;

use super::{internal, parse_session_id, Engine};
use crate::payment_form::DEFAULT_EXPIRY_MINUTES;
use crate::proposals::{self, ProposalView};
use crate::{error_view, ErrorKind, ErrorView, Explain};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct TransactionView {
    pub txid: String,
    /// `offline` (no chain backend), `unreachable` (fewer backends than the quorum answered),
    /// `not_seen`, `partly_seen` (by fewer backends than the quorum), `mempool`, `confirmed`
    /// or `conflicted`.
    pub state: String,
    pub confirmations: u32,
    /// How many backends have it in their mempool or a block, of how many asked.
    pub seen_by: u32,
    pub backends: u32,
    /// Signed, but no backend has it: the person may cancel it (see [`Engine::cancel_unseen`]).
    pub can_cancel: bool,
}

/// The verdict of one status round, in the words the view uses. "Never seen" needs at least
/// `quorum` backends to have answered: fewer cannot outvote the ones that did not.
fn state_of(report: &StatusReport, quorum: usize) -> &'static str {
    let answered = report.reports.iter().filter(|r| r.answer.is_ok()).count();
    if answered == 0 {
        "unreachable"
    } else if report.conflicted {
        "conflicted"
    } else if report.confirmed_depth.is_some() {
        "confirmed"
    } else if report.seen {
        "mempool"
    } else if report.seen_by > 0 {
        "partly_seen"
    } else if answered < quorum {
        "unreachable"
    } else {
        "not_seen"
    }
}

impl Engine {
    /// Asks this member's chain backends about a signed session's transaction.
    pub async fn transaction_status(&self, id: &str) -> Result<TransactionView, ErrorView> {
        let session = parse_session_id(id)?;
        let running = self.running()?;
        let signed = self.with_profile(|profile| {
            let record = profile
                .store()
                .session(&session.0)
                .map_err(|e| internal("The session cannot be read", e))?
                .ok_or_else(|| super::unknown_session(id))?;
            record.signed_tx.ok_or_else(|| not_signed(id))
        })?;
        let tx = lotus::tx::Transaction::decode(&signed)
            .map_err(|e| internal("The stored signed transaction does not decode", e))?;
        let txid = tx.txid().to_display_hex();
        let Some(chains) = running.chains.clone() else {
            return Ok(TransactionView {
                txid,
                state: "offline".into(),
                confirmations: 0,
                seen_by: 0,
                backends: 0,
                can_cancel: false,
            });
        };
        let backends = chains.labels().len() as u32;
        let quorum = chains.seen_quorum();
        // On the engine's runtime: the caller's may not be tokio's.
        let report = running
            .handle()
            .spawn(async move { chains.status(&tx).await })
            .await
            .map_err(|e| internal("The chain question failed", e))?;
        let state = state_of(&report, quorum);
        Ok(TransactionView {
            txid,
            state: state.into(),
            confirmations: report.confirmed_depth.unwrap_or(0),
            seen_by: report.seen_by as u32,
            backends,
            can_cancel: state == "not_seen",
        })
    }

    /// Proposes paying the first coin of a signed transaction nobody has seen back to the
    /// group. Once that confirms, the old transaction can never be mined: the way to take
    /// back a signature the group gave (a locktime cannot make it expire).
    pub async fn cancel_unseen(&self, id: &str) -> Result<ProposalView, ErrorView> {
        let status = self.transaction_status(id).await?;
        if !status.can_cancel {
            return Err(error_view(
                ErrorKind::ProposalRefused,
                "This transaction cannot be cancelled now",
                format!(
                    "its state is '{}' ({} of {} chain backends have it); only a transaction \
                     no backend has seen can be cancelled",
                    status.state, status.seen_by, status.backends
                ),
                "Wait for it to confirm, or check the chain backends in Settings.",
            ));
        }
        let session = parse_session_id(id)?;
        let fee_rate = self.fee_rate_per_kb()?;
        let request = self.with_profile(|profile| {
            proposals::cancel_request(profile, &session.0, fee_rate, DEFAULT_EXPIRY_MINUTES)
                .map_err(|e| e.view())
        })?;
        tracing::info!(
            session = id,
            "proposing to cancel an unseen signed transaction"
        );
        self.propose(request).await
    }
}

fn not_signed(id: &str) -> ErrorView {
    error_view(
        ErrorKind::UnknownSession,
        "Not signed yet",
        format!("session {id} has no signed transaction"),
        "Wait until every co-signer has signed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::multi::Report;
    use chain::{ChainError, TxStatus};

    fn report(answers: Vec<Result<TxStatus, ()>>, quorum: usize) -> StatusReport {
        let reports: Vec<Report<TxStatus>> = answers
            .into_iter()
            .enumerate()
            .map(|(i, a)| Report {
                backend: format!("b{i}"),
                answer: a.map_err(|_| ChainError::Unreachable {
                    backend: format!("b{i}"),
                    detail: "down".into(),
                }),
            })
            .collect();
        let ok = || reports.iter().filter_map(|r| r.answer.as_ref().ok());
        let seen_by = ok().filter(|s| s.is_seen()).count();
        StatusReport {
            txid: lotus::tx::TxId([0; 32]),
            seen_by,
            seen: seen_by >= quorum,
            confirmed_depth: ok()
                .filter_map(|s| match s {
                    TxStatus::Confirmed { depth, .. } => Some(*depth),
                    _ => None,
                })
                .max()
                .filter(|_| seen_by >= quorum),
            conflicted: ok().filter(|s| **s == TxStatus::Conflicted).count() >= quorum,
            reports,
        }
    }

    #[test]
    fn only_a_transaction_no_answering_backend_has_is_not_seen() {
        use TxStatus::*;
        let confirmed = Confirmed {
            height: 9,
            depth: 2,
        };
        // (what each backend answered, the seen quorum, the verdict)
        let cases = [
            (vec![Ok(Unknown), Ok(Unknown)], 1, "not_seen"),
            (vec![Ok(Unknown), Err(())], 1, "not_seen"),
            // One backend down and one that has it: seen, not cancellable.
            (vec![Ok(Mempool), Err(())], 1, "mempool"),
            // Seen by fewer than the quorum is not "never seen" either.
            (vec![Ok(Mempool), Ok(Unknown)], 2, "partly_seen"),
            // Nobody answered: we know nothing, so nothing may be cancelled.
            (vec![Err(()), Err(())], 1, "unreachable"),
            (vec![Ok(confirmed)], 1, "confirmed"),
            (vec![Ok(Conflicted)], 1, "conflicted"),
            // With a quorum of two, one backend's "never heard of it" is not enough.
            (vec![Ok(Unknown), Err(())], 2, "unreachable"),
            (vec![Ok(Unknown), Ok(Unknown)], 2, "not_seen"),
        ];
        for (answers, quorum, verdict) in cases {
            let shown = format!("{answers:?} with quorum {quorum}");
            assert_eq!(
                state_of(&report(answers, quorum), quorum),
                verdict,
                "{shown}"
            );
        }
    }
}
