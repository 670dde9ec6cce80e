//! The out-of-band confirmation of a large payment (the analysis's "out-of-band session
//! verification" for high-value sessions). Above the amount set in Settings, Approve asks for
//! the code the proposer's app shows for a payment it made: the co-signer calls the proposer,
//! whom they recognise, and the proposer reads it out.
//!
//! The code is not a secret: anyone holding the review can compute it, and it proves only
//! that both people look at the same payment. What stops a stolen proposer key used from
//! another machine is the call: the real proposer's app did not make that proposal, so it
//! shows no code for it (and warns that the key signed something it did not make).

use sha2::{Digest, Sha256};

const TAG: &[u8] = b"lotus-cosigner/confirmation-code/v1";

/// Twelve digits in groups of four: easy to read out and to type.
pub fn code(review_digest: &[u8; 32]) -> String {
    let hash = Sha256::new()
        .chain_update(TAG)
        .chain_update(review_digest)
        .finalize();
    let number = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    let digits = format!("{number:012}");
    format!("{} {} {}", &digits[..4], &digits[4..8], &digits[8..])
}

/// Whether `typed` is the code of `review_digest`, whatever spaces or dashes it was typed with.
pub fn matches(typed: &str, review_digest: &[u8; 32]) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let typed_digits = digits(typed);
    let other_chars = typed
        .chars()
        .any(|c| !c.is_ascii_digit() && !c.is_whitespace() && c != '-');
    !other_chars && typed_digits == digits(&code(review_digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_twelve_digits_of_the_review_and_is_typed_back_loosely() {
        let digest = [7; 32];
        let shown = code(&digest);
        assert_eq!(shown.len(), 14, "{shown}");
        assert!(shown.chars().all(|c| c.is_ascii_digit() || c == ' '));
        assert!(matches(&shown, &digest));
        assert!(matches(&shown.replace(' ', "-"), &digest));
        assert!(matches(&shown.replace(' ', ""), &digest));
        // Another review has another code; a digit off or extra text is refused.
        assert_ne!(code(&[8; 32]), shown);
        assert!(!matches(&code(&[8; 32]), &digest));
        let mut off = shown.clone().into_bytes();
        off[0] = if off[0] == b'9' { b'0' } else { off[0] + 1 };
        assert!(!matches(std::str::from_utf8(&off).unwrap(), &digest));
        assert!(!matches(&format!("{shown}1"), &digest));
        assert!(!matches(&format!("code {shown}"), &digest));
        assert!(!matches("", &digest));
    }
}
