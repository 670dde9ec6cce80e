//! The group wallet on top of the profile: groups as the UI and CLI show them, coins refreshed
//! from the chain backends into the database, balance and history, and payment previews built
//! by `crates/wallet` from the stored coins.

use chain::multi::Chains;
use lotus::address::{Network, XAddress};
use lotus::policy::classify;
use lotus::secp256k1::PublicKey;
use lotus::tx::{OutPoint, TxId};
use protocol::group::{Acceptance, GroupDescriptor, OutputType};
use serde::Serialize;
use ts_rs::TS;
use wallet::{Amount, Coin, PaymentError, PaymentRequest, Recipient, SpendKind};

use crate::profile::{Profile, ProfileError};

/// A group as screens and `group show --json` present it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub network: String,
    pub output: String,
    pub election: String,
    pub address: String,
    /// Read aloud to co-signers to compare.
    pub fingerprint: String,
    pub invite: String,
    pub members: Vec<MemberView>,
    pub accepted: u32,
    pub balance: BalanceView,
    /// Bootstrap/relay nodes the group names (multiaddrs), dialled by every member.
    pub peers: Vec<String>,
    /// Unix milliseconds when this profile last saved the group's backup file; `null`: never.
    #[ts(type = "number | null")]
    pub backup_saved_at_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct MemberView {
    /// 1-based, as people count.
    pub number: u32,
    pub public_key: String,
    pub is_me: bool,
    pub accepted: bool,
}

/// What the group holds, from the last refresh.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, TS)]
pub struct BalanceView {
    #[ts(type = "number")]
    pub confirmed_sats: i64,
    #[ts(type = "number")]
    pub unconfirmed_sats: i64,
    pub coins: u32,
    /// The backend that reported the coins last, if any did.
    pub backend: Option<String>,
}

/// One line of a group's history: a coin received, or a coin seen spent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct HistoryEntryView {
    pub kind: HistoryKind,
    pub txid: String,
    pub vout: u32,
    #[ts(type = "number")]
    pub amount_sats: i64,
    pub height: Option<u32>,
    #[ts(type = "number")]
    pub time_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    Received,
    Spent,
}

/// Exactly what co-signers would review, before proposing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PaymentPreviewView {
    pub txid: String,
    pub inputs: Vec<PreviewInput>,
    pub outputs: Vec<PreviewOutput>,
    #[ts(type = "number")]
    pub fee_sats: i64,
    pub size_bytes: u32,
    #[ts(type = "number")]
    pub fee_rate_per_kb: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PreviewInput {
    pub outpoint: String,
    #[ts(type = "number")]
    pub amount_sats: i64,
    pub confirmed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct PreviewOutput {
    pub address: String,
    #[ts(type = "number")]
    pub amount_sats: i64,
    /// Change back to this group.
    pub is_change: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupWalletError {
    #[error(transparent)]
    Profile(Box<ProfileError>),
    #[error(transparent)]
    Store(Box<store::Error>),
    #[error(transparent)]
    Group(#[from] protocol::group::GroupError),
    #[error("no chain backend answered: {0}")]
    ChainUnreachable(String),
    #[error(
        "no chain backend is configured: add one with --chain rpc://HOST:PORT or in the settings"
    )]
    NoChain,
    #[error("recipient {index}: {reason}")]
    Recipient { index: usize, reason: String },
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

impl From<ProfileError> for GroupWalletError {
    fn from(e: ProfileError) -> Self {
        Self::Profile(Box::new(e))
    }
}

impl From<store::Error> for GroupWalletError {
    fn from(e: store::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

pub fn network_name(network: Network) -> &'static str {
    network.name()
}

/// The group's view, balance from the stored coins.
pub fn view(
    profile: &Profile,
    group: &GroupDescriptor,
    acceptances: &[Acceptance],
    me: Option<&PublicKey>,
) -> Result<GroupView, GroupWalletError> {
    let accepted: Vec<u16> = acceptances.iter().map(|a| a.member).collect();
    Ok(GroupView {
        id: group.id().to_string(),
        name: group.name.clone(),
        network: network_name(group.network).to_owned(),
        output: match group.output {
            OutputType::Taproot => "taproot",
            OutputType::P2pkh => "p2pkh",
        }
        .to_owned(),
        election: group.election.name().to_owned(),
        address: group.address()?,
        fingerprint: group.fingerprint(),
        invite: group.invite(),
        members: group
            .members
            .iter()
            .enumerate()
            .map(|(i, key)| MemberView {
                number: i as u32 + 1,
                public_key: hex::encode(key.serialize()),
                is_me: me == Some(key),
                accepted: accepted.contains(&(i as u16)),
            })
            .collect(),
        accepted: accepted.len() as u32,
        balance: balance(profile, group)?,
        peers: group.peers.clone(),
        backup_saved_at_ms: profile.store().group_backup(&group.id().0)?,
    })
}

pub fn balance(
    profile: &Profile,
    group: &GroupDescriptor,
) -> Result<BalanceView, GroupWalletError> {
    let coins = profile.store().coins(&group.id().0, false)?;
    Ok(BalanceView {
        confirmed_sats: coins
            .iter()
            .filter(|c| c.height.is_some())
            .map(|c| c.value)
            .sum(),
        unconfirmed_sats: coins
            .iter()
            .filter(|c| c.height.is_none())
            .map(|c| c.value)
            .sum(),
        coins: coins.len() as u32,
        backend: coins.last().map(|c| c.backend.clone()),
    })
}

/// Received coins and coins seen spent, newest first.
pub fn history(
    profile: &Profile,
    group: &GroupDescriptor,
) -> Result<Vec<HistoryEntryView>, GroupWalletError> {
    let mut entries = Vec::new();
    for coin in profile.store().coins(&group.id().0, true)? {
        let txid = TxId(coin.txid).to_display_hex();
        entries.push(HistoryEntryView {
            kind: HistoryKind::Received,
            txid: txid.clone(),
            vout: coin.vout,
            amount_sats: coin.value,
            height: coin.height,
            time_ms: coin.first_seen_ms,
        });
        if let Some(spent) = coin.spent_seen_ms {
            entries.push(HistoryEntryView {
                kind: HistoryKind::Spent,
                txid,
                vout: coin.vout,
                amount_sats: coin.value,
                height: None,
                time_ms: spent,
            });
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
    Ok(entries)
}

/// Asks the backends for the group's unspent outputs and stores them.
pub async fn refresh(
    profile: &mut Profile,
    chains: &Chains,
    group: &GroupDescriptor,
    now_ms: u64,
) -> Result<store::CoinChanges, GroupWalletError> {
    let script = group.script_pubkey()?;
    store_answer(profile, group, chains.unspent(&script).await, now_ms)
}

/// Stores the backends' answer to "the group's unspent outputs", or says why none answered.
pub fn store_answer(
    profile: &mut Profile,
    group: &GroupDescriptor,
    answer: Result<(String, Vec<chain::Utxo>), Vec<chain::multi::Report<()>>>,
    now_ms: u64,
) -> Result<store::CoinChanges, GroupWalletError> {
    let (backend, utxos) = answer.map_err(|failures| {
        GroupWalletError::ChainUnreachable(
            failures
                .iter()
                .map(|r| match &r.answer {
                    Err(e) => e.to_string(),
                    Ok(()) => r.backend.clone(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    store_unspent(profile, group, &backend, &utxos, now_ms)
}

/// Stores what `backend` reported as the group's unspent outputs (the chain task's news, or a
/// refresh): new coins appear, vanished ones are marked spent.
pub fn store_unspent(
    profile: &mut Profile,
    group: &GroupDescriptor,
    backend: &str,
    utxos: &[chain::Utxo],
    now_ms: u64,
) -> Result<store::CoinChanges, GroupWalletError> {
    let script = group.script_pubkey()?;
    let unspent: Vec<store::Unspent> = utxos
        .iter()
        .map(|u| store::Unspent {
            txid: u.outpoint.txid.0,
            vout: u.outpoint.vout,
            value: u.output.value,
            height: u.height,
        })
        .collect();
    Ok(profile.store_mut().apply_unspent(
        &group.id().0,
        script.as_bytes(),
        &unspent,
        backend,
        now_ms,
    )?)
}

/// A payment from the group's stored coins: `recipients` are `(XAddress, amount)`.
pub fn preview_payment(
    profile: &Profile,
    group: &GroupDescriptor,
    recipients: &[(String, Amount)],
    fee_rate_per_kb: i64,
    allow_unconfirmed: bool,
) -> Result<(PaymentPreviewView, wallet::Payment), GroupWalletError> {
    let coins: Vec<Coin> = profile
        .store()
        .coins(&group.id().0, false)?
        .into_iter()
        .filter_map(|c| {
            let script = lotus::script::Script::from_bytes(c.script);
            Some(Coin {
                kind: SpendKind::of(&script)?,
                outpoint: OutPoint::new(TxId(c.txid), c.vout),
                output: lotus::tx::TxOut::new(c.value, script),
                confirmed: c.height.is_some(),
            })
        })
        .collect();
    preview_from_coins(
        group,
        recipients,
        fee_rate_per_kb,
        allow_unconfirmed,
        &coins,
    )
}

/// [`preview_payment`] from the given coins (e.g. named by hand).
pub fn preview_from_coins(
    group: &GroupDescriptor,
    recipients: &[(String, Amount)],
    fee_rate_per_kb: i64,
    allow_unconfirmed: bool,
    coins: &[Coin],
) -> Result<(PaymentPreviewView, wallet::Payment), GroupWalletError> {
    let change_script = group.script_pubkey()?;
    let recipients = recipients
        .iter()
        .enumerate()
        .map(|(index, (address, amount))| {
            let script = XAddress::parse(address, group.network)
                .map_err(|e| GroupWalletError::Recipient {
                    index: index + 1,
                    reason: format!("'{address}' is not a {} address: {e}", group.network.name()),
                })?
                .script_pubkey();
            if classify(&script).is_none() {
                return Err(GroupWalletError::Recipient {
                    index: index + 1,
                    reason: "nodes do not relay payments to this kind of address".into(),
                });
            }
            Ok(Recipient {
                script,
                amount: *amount,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let request = PaymentRequest {
        recipients,
        fee_rate_per_kb,
        change_script,
        allow_unconfirmed,
    };
    let payment = wallet::build_payment(&request, coins)?;
    let confirmed_of = |o: &OutPoint| coins.iter().any(|c| &c.outpoint == o && c.confirmed);
    let preview = PaymentPreviewView {
        txid: payment.tx.txid().to_display_hex(),
        inputs: payment
            .tx
            .inputs
            .iter()
            .zip(&payment.spent_outputs)
            .map(|(i, o)| PreviewInput {
                outpoint: format!("{}:{}", i.prev_out.txid.to_display_hex(), i.prev_out.vout),
                amount_sats: o.value,
                confirmed: confirmed_of(&i.prev_out),
            })
            .collect(),
        outputs: payment
            .tx
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| PreviewOutput {
                address: lotus::address::display_address(&o.script_pubkey, group.network),
                amount_sats: o.value,
                is_change: payment.change_index == Some(i),
            })
            .collect(),
        fee_sats: payment.fee,
        size_bytes: payment.size as u32,
        fee_rate_per_kb,
    };
    Ok((preview, payment))
}
