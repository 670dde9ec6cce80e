//! A payment as the app's "new payment" form describes it: recipients with amounts in XPI
//! (as people write them), fee rate and expiry, turned into a [`ProposeRequest`].

use serde::Deserialize;
use ts_rs::TS;
use wallet::Amount;

use crate::proposals::ProposeRequest;

/// Satoshis in one XPI.
pub const SATS_PER_XPI: i64 = 1_000_000;

/// How long a proposal stays open unless the form says otherwise: a day, time for every
/// co-signer to look.
pub const DEFAULT_EXPIRY_MINUTES: u64 = 24 * 60;

#[derive(Clone, Debug, Deserialize, TS)]
pub struct PaymentForm {
    /// The group's id.
    pub group: String,
    pub recipients: Vec<RecipientForm>,
    /// Satoshis per 1000 bytes; `null`: the settings' rate.
    #[ts(type = "number | null")]
    pub fee_rate_per_kb: Option<i64>,
    #[ts(type = "number | null")]
    pub expires_minutes: Option<u64>,
    /// Spend coins still unconfirmed too.
    pub allow_unconfirmed: bool,
}

#[derive(Clone, Debug, Deserialize, TS)]
pub struct RecipientForm {
    pub address: String,
    /// XPI as typed ("12.5", "1,000.000001"), or "all" for everything left after the others
    /// and the fee.
    pub amount: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PaymentFormError {
    #[error("add at least one recipient")]
    NoRecipient,
    #[error("recipient {index}: enter the address to pay")]
    NoAddress { index: usize },
    #[error("recipient {index}: {reason}")]
    Amount { index: usize, reason: String },
    #[error("only one recipient can receive \"all\" (everything left)")]
    TwoEverythings,
    #[error("the fee rate must be a positive number of satoshis per 1000 bytes")]
    FeeRate,
    #[error("the expiry must be between 1 minute and 30 days")]
    Expiry,
}

/// XPI as people write them, in satoshis: up to six decimals, `,` or `_` or spaces as
/// thousands separators, nothing negative or zero.
pub fn parse_xpi(text: &str) -> Result<i64, String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' '))
        .collect();
    let cleaned = cleaned
        .strip_suffix("XPI")
        .or_else(|| cleaned.strip_suffix("xpi"))
        .unwrap_or(&cleaned)
        .trim();
    let bad = || format!("\"{}\" is not an amount in XPI (like 12.5)", text.trim());
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((cleaned, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if fraction.len() > 6 {
        return Err(format!(
            "\"{}\" has more than 6 decimals (1 XPI is 1,000,000 satoshis)",
            text.trim()
        ));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    let sats = whole
        .checked_mul(SATS_PER_XPI)
        .and_then(|s| s.checked_add(fraction))
        .ok_or_else(|| format!("\"{}\" is more XPI than exist", text.trim()))?;
    if sats == 0 {
        return Err("the amount must be more than zero".to_owned());
    }
    Ok(sats)
}

impl PaymentForm {
    /// The recipients as the wallet takes them.
    pub fn recipients(&self) -> Result<Vec<(String, Amount)>, PaymentFormError> {
        if self.recipients.is_empty() {
            return Err(PaymentFormError::NoRecipient);
        }
        let mut everything = false;
        self.recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let index = i + 1;
                let address = r.address.trim();
                if address.is_empty() {
                    return Err(PaymentFormError::NoAddress { index });
                }
                let amount = if r.amount.trim().eq_ignore_ascii_case("all") {
                    if std::mem::replace(&mut everything, true) {
                        return Err(PaymentFormError::TwoEverythings);
                    }
                    Amount::Everything
                } else {
                    Amount::Sats(
                        parse_xpi(&r.amount)
                            .map_err(|reason| PaymentFormError::Amount { index, reason })?,
                    )
                };
                Ok((address.to_owned(), amount))
            })
            .collect()
    }

    pub fn fee_rate(&self, default: i64) -> Result<i64, PaymentFormError> {
        match self.fee_rate_per_kb {
            None => Ok(default),
            Some(rate) if rate > 0 => Ok(rate),
            Some(_) => Err(PaymentFormError::FeeRate),
        }
    }

    /// The proposal this form asks for; `default_fee_rate` when it names none.
    pub fn request(&self, default_fee_rate: i64) -> Result<ProposeRequest, PaymentFormError> {
        let expires_minutes = self.expires_minutes.unwrap_or(DEFAULT_EXPIRY_MINUTES);
        if !(1..=30 * 24 * 60).contains(&expires_minutes) {
            return Err(PaymentFormError::Expiry);
        }
        Ok(ProposeRequest {
            group: self.group.clone(),
            pay: self.recipients()?,
            inputs: Vec::new(),
            fee_rate_per_kb: self.fee_rate(default_fee_rate)?,
            expires_minutes,
            allow_unconfirmed: self.allow_unconfirmed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpi_as_people_write_it() {
        assert_eq!(parse_xpi("12.5"), Ok(12_500_000));
        assert_eq!(parse_xpi(" 1,000.000001 XPI"), Ok(1_000_000_001));
        assert_eq!(parse_xpi(".25"), Ok(250_000));
        assert_eq!(parse_xpi("7"), Ok(7_000_000));
        assert_eq!(parse_xpi("0.000001"), Ok(1));
        for bad in [
            "",
            ".",
            "-1",
            "1.2.3",
            "1e6",
            "abc",
            "0",
            "0.0000001",
            "99999999999999",
        ] {
            assert!(parse_xpi(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_xpi("0.0000001").unwrap_err().contains("6 decimals"));
    }

    fn form(recipients: &[(&str, &str)]) -> PaymentForm {
        PaymentForm {
            group: "ab".into(),
            recipients: recipients
                .iter()
                .map(|(a, m)| RecipientForm {
                    address: a.to_string(),
                    amount: m.to_string(),
                })
                .collect(),
            fee_rate_per_kb: None,
            expires_minutes: None,
            allow_unconfirmed: false,
        }
    }

    #[test]
    fn a_form_becomes_a_proposal_request() {
        let request = form(&[("lotus_a", "1.5"), ("lotus_b", "ALL")])
            .request(1000)
            .unwrap();
        assert_eq!(
            request.pay,
            vec![
                ("lotus_a".to_owned(), Amount::Sats(1_500_000)),
                ("lotus_b".to_owned(), Amount::Everything)
            ]
        );
        assert_eq!(request.fee_rate_per_kb, 1000);
        assert_eq!(request.expires_minutes, DEFAULT_EXPIRY_MINUTES);
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            form(&[]).request(1000).unwrap_err(),
            PaymentFormError::NoRecipient
        );
        assert_eq!(
            form(&[("lotus_a", "1"), (" ", "1")])
                .request(1000)
                .unwrap_err(),
            PaymentFormError::NoAddress { index: 2 }
        );
        assert!(matches!(
            form(&[("lotus_a", "x")]).request(1000),
            Err(PaymentFormError::Amount { index: 1, .. })
        ));
        assert_eq!(
            form(&[("lotus_a", "all"), ("lotus_b", "all")])
                .request(1000)
                .unwrap_err(),
            PaymentFormError::TwoEverythings
        );
        let mut f = form(&[("lotus_a", "1")]);
        f.fee_rate_per_kb = Some(0);
        assert_eq!(f.request(1000).unwrap_err(), PaymentFormError::FeeRate);
        f.fee_rate_per_kb = None;
        f.expires_minutes = Some(0);
        assert_eq!(f.request(1000).unwrap_err(), PaymentFormError::Expiry);
    }
}
