//! The bodies of the fuzz targets (`fuzz/`, cargo-fuzz) for the decoders the network feeds,
//! kept here so a stable smoke test runs them too. Each checks more than "no panic": whatever
//! decodes must encode back to exactly the bytes it came from (one encoding per value, which
//! signatures over received bytes rely on).

use crate::envelope::{Envelope, MessageKind};
use crate::evidence::Evidence;
use crate::messages::{AbortCode, Commitment, Completed, Nonces, Partials, Pull, Reject};
use crate::pool::NoncePool;
use crate::presence::Presence;
use crate::proposal::Proposal;

const MAX: usize = 64 * 1024;

pub fn envelope(data: &[u8]) {
    if let Ok(envelope) = Envelope::decode(data, MAX) {
        assert_eq!(
            envelope.encode(),
            data,
            "envelope encoding is not canonical"
        );
        payload(envelope.header.kind, &envelope.payload);
    }
}

/// Whatever payload of its kind decodes re-encodes to the same bytes.
fn payload(kind: MessageKind, bytes: &[u8]) {
    fn canonical<T>(
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, crate::wire::DecodeError>,
        encode: impl Fn(&T) -> Vec<u8>,
    ) {
        if let Ok(value) = decode(bytes) {
            assert_eq!(encode(&value), bytes, "payload encoding is not canonical");
        }
    }
    match kind {
        MessageKind::Proposal => proposal(bytes),
        MessageKind::Commitment => canonical(bytes, Commitment::decode, Commitment::encode),
        MessageKind::Nonces => canonical(bytes, Nonces::decode, Nonces::encode),
        MessageKind::Partials => canonical(bytes, Partials::decode, Partials::encode),
        MessageKind::Completed => canonical(bytes, Completed::decode, Completed::encode),
        MessageKind::Reject => canonical(bytes, Reject::decode, Reject::encode),
        MessageKind::AttemptAborted => {
            canonical(bytes, AbortCode::decode, AbortCode::encode);
            if let Ok(AbortCode::Blamed(records)) = AbortCode::decode(bytes) {
                for record in records {
                    canonical(&record, Evidence::decode, Evidence::encode);
                }
            }
        }
        MessageKind::Approved => {}
        MessageKind::Pull => canonical(bytes, Pull::decode, Pull::encode),
        MessageKind::NoncePool => canonical(bytes, NoncePool::decode, NoncePool::encode),
    }
}

pub fn proposal(data: &[u8]) {
    if let Ok(proposal) = Proposal::decode(data, MAX) {
        assert_eq!(
            proposal.encode(),
            data,
            "proposal encoding is not canonical"
        );
    }
}

pub fn presence(data: &[u8]) {
    if let Ok(record) = Presence::decode(data) {
        assert_eq!(record.encode(), data, "presence encoding is not canonical");
        // Verification of arbitrary bytes must answer, not panic.
        let _ = record.verify(0);
    }
}
