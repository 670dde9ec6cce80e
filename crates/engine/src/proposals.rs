//! Proposing a payment from a group: the wallet builds it from the group's coins (or from
//! coins named by hand), the upgrade calendar is checked, and the session runtime signs and
//! stores the proposal. The key stays in custody; the caller gets public data back.

use lotus::script::Script;
use lotus::tx::{OutPoint, TxId, TxOut};
use protocol::group::GroupDescriptor;
use serde::Serialize;
use ts_rs::TS;
use wallet::{Amount, Coin, SpendKind};

use crate::custody::Custody;
use crate::group_wallet::{self, GroupWalletError, PaymentPreviewView};
use crate::profile::Profile;
use crate::runtime::{Clock, RuntimeError, SessionEngine, SystemClock};
use crate::upgrades::{self, StraddlesUpgrade};

/// `XADDR:SATS` or `XADDR:all`.
pub fn parse_pay(spec: &str) -> Result<(String, Amount), String> {
    let (address, amount) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("'{spec}': write XADDR:SATS (or XADDR:all)"))?;
    let amount = if amount == "all" {
        Amount::Everything
    } else {
        Amount::Sats(amount.parse().map_err(|_| {
            format!("'{amount}' is not a whole number of satoshis (1 XPI = 1000000)")
        })?)
    };
    Ok((address.to_owned(), amount))
}

/// `TXID:VOUT:SATS`: a coin of the group named by hand.
pub fn parse_input(spec: &str) -> Result<(OutPoint, i64), String> {
    let mut parts = spec.split(':');
    let (Some(txid), Some(vout), Some(sats), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("'{spec}': write TXID:VOUT:SATS"));
    };
    let txid = TxId::from_display_hex(txid).map_err(|e| format!("'{txid}' is not a txid: {e}"))?;
    let vout: u32 = vout
        .parse()
        .map_err(|_| format!("'{vout}' is not an output index"))?;
    let sats: i64 = sats
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("'{sats}' is not a positive number of satoshis"))?;
    Ok((OutPoint::new(txid, vout), sats))
}

#[derive(Debug)]
pub struct ProposeRequest {
    /// A group id or an unambiguous prefix of it.
    pub group: String,
    /// `(XAddress, amount)`.
    pub pay: Vec<(String, Amount)>,
    /// Coins named by hand (`TXID:VOUT:SATS`, paying the group); empty: the wallet selects.
    pub inputs: Vec<(OutPoint, i64)>,
    pub fee_rate_per_kb: i64,
    pub expires_minutes: u64,
    pub allow_unconfirmed: bool,
}

/// What was proposed: the session and exactly what co-signers will review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ProposalView {
    pub session_id: String,
    pub group_id: String,
    /// The digest an approval is bound to (`session approve ID --digest HEX`).
    pub review_digest: String,
    #[ts(type = "number")]
    pub expires_ms: u64,
    pub payment: PaymentPreviewView,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    Wallet(#[from] GroupWalletError),
    #[error(transparent)]
    Upgrade(#[from] StraddlesUpgrade),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Offline(#[from] crate::runtime::offline::OfflineError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("the session expires in {0} minutes; give 1 to 10080 (a week)")]
    Expiry(u64),
    #[error("no session {0} in this profile")]
    UnknownSession(String),
    #[error("session {0} has no signed transaction to cancel")]
    NotSigned(String),
    #[error("the stored signed transaction of session {0} does not decode")]
    BadSignedTransaction(String),
}

/// A signed transaction that was never seen can only be cancelled by spending one of its
/// inputs elsewhere first (a locktime cannot make it expire): this proposes paying that one
/// coin back to the group, less the fee. Once that confirms, the old transaction is invalid.
pub async fn propose_cancel(
    profile: &mut Profile,
    custody: &Custody,
    session_id: &[u8; 32],
    fee_rate_per_kb: i64,
    expires_minutes: u64,
) -> Result<ProposalView, ProposeError> {
    let request = cancel_request(profile, session_id, fee_rate_per_kb, expires_minutes)?;
    propose(profile, custody, request).await
}

/// The proposal that cancels session `session_id`'s signed transaction: its first coin, paid
/// back to the group.
pub fn cancel_request(
    profile: &Profile,
    session_id: &[u8; 32],
    fee_rate_per_kb: i64,
    expires_minutes: u64,
) -> Result<ProposeRequest, ProposeError> {
    let hex_id = hex::encode(session_id);
    let record = profile
        .store()
        .session(session_id)?
        .ok_or_else(|| ProposeError::UnknownSession(hex_id.clone()))?;
    let signed = record
        .signed_tx
        .as_deref()
        .ok_or_else(|| ProposeError::NotSigned(hex_id.clone()))?;
    let signed = lotus::tx::Transaction::decode(signed)
        .map_err(|_| ProposeError::BadSignedTransaction(hex_id.clone()))?;
    let group_id = hex::encode(record.group_id);
    let (group, _) = profile.group(&group_id).map_err(GroupWalletError::from)?;
    let first = signed
        .inputs
        .first()
        .ok_or_else(|| ProposeError::NotSigned(hex_id.clone()))?;
    // The amount comes from the proposal the group signed (its spent outputs).
    let proposal = protocol::envelope::Envelope::decode(&record.proposal_envelope, usize::MAX)
        .ok()
        .and_then(|e| {
            let (_, bytes) = protocol::node::split_proposal_payload(&e.payload).ok()?;
            protocol::proposal::Proposal::decode(bytes, usize::MAX).ok()
        })
        .ok_or_else(|| ProposeError::BadSignedTransaction(hex_id.clone()))?;
    let value = proposal
        .spent_outputs
        .first()
        .map(|o| o.value)
        .ok_or_else(|| ProposeError::BadSignedTransaction(hex_id))?;
    Ok(ProposeRequest {
        group: group_id,
        pay: vec![(
            group.address().map_err(GroupWalletError::from)?,
            Amount::Everything,
        )],
        inputs: vec![(first.prev_out, value)],
        fee_rate_per_kb,
        expires_minutes,
        allow_unconfirmed: false,
    })
}

/// A payment built and checked, ready for the session runtime to sign and store.
pub struct Prepared {
    group: GroupDescriptor,
    preview: PaymentPreviewView,
    payment: wallet::Payment,
    expires_ms: u64,
}

/// Builds the payment from the group's coins (or the coins named by hand) and checks the
/// lifetime and the upgrade calendar. Nothing is stored yet.
pub fn prepare(profile: &Profile, request: &ProposeRequest) -> Result<Prepared, ProposeError> {
    if !(1..=7 * 24 * 60).contains(&request.expires_minutes) {
        return Err(ProposeError::Expiry(request.expires_minutes));
    }
    let (group, _) = profile
        .group(&request.group)
        .map_err(GroupWalletError::from)?;
    let now_ms = SystemClock.now_ms();
    let expires_ms = now_ms + request.expires_minutes * 60_000;
    upgrades::check_window(group.network, now_ms / 1000, expires_ms / 1000)?;
    let (preview, payment) = if request.inputs.is_empty() {
        group_wallet::preview_payment(
            profile,
            &group,
            &request.pay,
            request.fee_rate_per_kb,
            request.allow_unconfirmed,
        )?
    } else {
        let script: Script = group.script_pubkey().map_err(GroupWalletError::from)?;
        let kind = SpendKind::of(&script).expect("a group's script is P2PKH or Taproot");
        let coins: Vec<Coin> = request
            .inputs
            .iter()
            .map(|(outpoint, sats)| Coin {
                outpoint: *outpoint,
                output: TxOut::new(*sats, script.clone()),
                kind,
                confirmed: true,
            })
            .collect();
        group_wallet::preview_from_coins(
            &group,
            &request.pay,
            request.fee_rate_per_kb,
            true,
            &coins,
        )?
    };
    Ok(Prepared {
        group,
        preview,
        payment,
        expires_ms,
    })
}

/// Has `engine` sign and store the prepared proposal (it goes out to the co-signers from
/// there); returns what they will review.
pub async fn submit(
    engine: &SessionEngine,
    prepared: Prepared,
) -> Result<ProposalView, ProposeError> {
    let Prepared {
        group,
        preview,
        payment,
        expires_ms,
    } = prepared;
    let session = engine
        .propose(group.id(), payment.tx, payment.spent_outputs, expires_ms)
        .await?;
    let detail = engine.session_detail(session).await?;
    Ok(ProposalView {
        session_id: session.to_string(),
        group_id: group.id().to_string(),
        review_digest: detail
            .map(|d| hex::encode(d.review.digest))
            .unwrap_or_default(),
        expires_ms,
        payment: preview,
    })
}

/// [`prepare`] and [`submit`] through a runtime of its own, for a one-shot command (no node of
/// this profile may be running: the app or `node` use their engine's runtime instead).
pub async fn propose(
    profile: &mut Profile,
    custody: &Custody,
    request: ProposeRequest,
) -> Result<ProposalView, ProposeError> {
    let prepared = prepare(profile, &request)?;
    let (engine, task, _deliver, _lock) =
        crate::runtime::offline::spawn_for_profile(profile, custody)?;
    let view = submit(&engine, prepared).await;
    drop(engine);
    task.finish();
    view
}
