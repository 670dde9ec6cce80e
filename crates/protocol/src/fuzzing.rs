//! The bodies of the fuzz targets (`fuzz/`, cargo-fuzz) for the decoders the network feeds,
//! kept here so a stable smoke test runs them too. Each checks more than "no panic": whatever
//! decodes must encode back to exactly the bytes it came from (one encoding per value, which
//! signatures over received bytes rely on).

use crate::envelope::Envelope;
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
