//! The recovery phrase: the signer key written as 24 BIP39 words (English list). The key's 32
//! bytes are the phrase's entropy, so the phrase *is* the key, not a seed for HD derivation:
//! any key, including one created long before its backup, has exactly one phrase, and
//! restoring it gives back the same key. (An HD wallet fed these words would derive another key.)
//!
//! The words leave the engine once, on purpose, for the person to write down; everything here
//! is zeroized on drop and redacted in `Debug`.

use bip39::{Language, Mnemonic};
use lotus::PrivateKey;
use zeroize::Zeroizing;

/// Words in a phrase: 256 bits of key + 8 bits of checksum, 11 bits a word.
pub const WORDS: usize = 24;

/// How many words the person types back to confirm they wrote the phrase down.
pub const CHECKED_WORDS: usize = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhraseError {
    #[error("a recovery phrase has {WORDS} words; this has {0}")]
    WordCount(usize),
    #[error("word {position} (\"{word}\") is not in the BIP39 English word list")]
    UnknownWord { position: usize, word: String },
    #[error("the words do not add up (checksum mismatch): a word is wrong or two are swapped")]
    Checksum,
    #[error("the phrase is not valid BIP39: {0}")]
    Invalid(String),
    #[error("the phrase is valid BIP39 but not a secp256k1 key (it was not written by this app)")]
    NotAKey,
    #[error("word {position} is not \"{given}\"")]
    WrongAnswer { position: usize, given: String },
    #[error("confirm at least {CHECKED_WORDS} different words of the phrase")]
    TooFewAnswers,
    #[error("there is no word {0}: positions go from 1 to {WORDS}")]
    NoSuchPosition(usize),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// A recovery phrase in memory. Not `Clone`; its words are erased when it drops.
pub struct RecoveryPhrase(Mnemonic);

impl std::fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryPhrase(<redacted>)")
    }
}

impl RecoveryPhrase {
    /// The phrase of `key`.
    pub fn of(key: &PrivateKey) -> Self {
        let entropy = key.to_bytes();
        Self(
            Mnemonic::from_entropy_in(Language::English, entropy.as_slice())
                .expect("32 bytes are valid BIP39 entropy"),
        )
    }

    /// Reads what a person typed: any spacing and case, and each word either in full or by
    /// its first four letters (BIP39 English words are unique in their first four).
    pub fn parse(text: &str) -> Result<Self, PhraseError> {
        let typed: Vec<&str> = text.split_whitespace().collect();
        if typed.len() != WORDS {
            return Err(PhraseError::WordCount(typed.len()));
        }
        let mut normalized = Zeroizing::new(String::with_capacity(WORDS * 9));
        for (i, word) in typed.iter().enumerate() {
            if i > 0 {
                normalized.push(' ');
            }
            normalized.push_str(word_of(i + 1, word)?);
        }
        Mnemonic::parse_in_normalized(Language::English, &normalized)
            .map(Self)
            .map_err(|e| match e {
                bip39::Error::InvalidChecksum => PhraseError::Checksum,
                // Every word and the count were checked above; this is for completeness.
                other => PhraseError::Invalid(other.to_string()),
            })
    }

    /// The key the phrase encodes.
    pub fn key(&self) -> Result<PrivateKey, PhraseError> {
        let (entropy, length) = self.0.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        if length != 32 {
            return Err(PhraseError::WordCount(self.0.word_count()));
        }
        PrivateKey::from_slice(&entropy[..32]).map_err(|_| PhraseError::NotAKey)
    }

    /// The words, in order, for the one deliberate display.
    pub fn words(&self) -> Zeroizing<Vec<String>> {
        Zeroizing::new(self.0.words().map(str::to_owned).collect())
    }

    /// Checks the words the person typed back (1-based positions): at least
    /// [`CHECKED_WORDS`] different positions, each word right (a four-letter start counts).
    pub fn check(&self, answers: &[BackupAnswer]) -> Result<(), PhraseError> {
        let words = self.words();
        let mut positions = std::collections::BTreeSet::new();
        for answer in answers {
            let position = usize::from(answer.position);
            if position == 0 || position > WORDS {
                return Err(PhraseError::NoSuchPosition(position));
            }
            let wrong = || PhraseError::WrongAnswer {
                position,
                given: answer.word.trim().to_owned(),
            };
            let word = word_of(position, &answer.word).map_err(|_| wrong())?;
            if word != words[position - 1] {
                return Err(wrong());
            }
            positions.insert(position);
        }
        if positions.len() < CHECKED_WORDS {
            return Err(PhraseError::TooFewAnswers);
        }
        Ok(())
    }
}

/// The one deliberate display of a secret to the UI: the phrase to write down, and which of
/// its words the person types back afterwards. Erased on drop; `Debug` redacted.
#[derive(serde::Serialize, ts_rs::TS)]
pub struct RecoveryPhraseView {
    pub words: Vec<String>,
    /// 1-based positions, ascending.
    pub check_positions: Vec<u8>,
}

impl Drop for RecoveryPhraseView {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.words);
    }
}

impl std::fmt::Debug for RecoveryPhraseView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryPhraseView")
            .field("words", &"<redacted>")
            .field("check_positions", &self.check_positions)
            .finish()
    }
}

/// One word typed back: its 1-based position and what was typed.
#[derive(Clone, serde::Deserialize, ts_rs::TS)]
pub struct BackupAnswer {
    pub position: u8,
    pub word: String,
}

impl std::fmt::Debug for BackupAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupAnswer({}, <redacted>)", self.position)
    }
}

impl Drop for BackupAnswer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.word);
    }
}

/// [`CHECKED_WORDS`] different positions (1-based, ascending) for the person to type back,
/// drawn from the OS random number generator so nobody learns which words get checked.
pub fn positions_to_check() -> Result<Vec<usize>, PhraseError> {
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < CHECKED_WORDS {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|e| PhraseError::Random(e.to_string()))?;
        // 240 = 10 × 24: rejecting the rest keeps every position equally likely.
        if byte[0] < 240 {
            chosen.insert(byte[0] as usize % WORDS + 1);
        }
    }
    Ok(chosen.into_iter().collect())
}

/// The list word a person meant at `position`: the word itself, or the one word it starts.
fn word_of(position: usize, typed: &str) -> Result<&'static str, PhraseError> {
    let typed = Zeroizing::new(typed.trim().to_lowercase());
    let list = Language::English.word_list();
    if let Some(index) = Language::English.find_word(&typed) {
        return Ok(list[index as usize]);
    }
    let unknown = || PhraseError::UnknownWord {
        position,
        word: typed.to_string(),
    };
    if typed.len() < 4 {
        return Err(unknown());
    }
    // BIP39 English words differ in their first four letters, so four letters name one word.
    list.iter()
        .find(|w| w.starts_with(typed.as_str()))
        .copied()
        .ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP39's published vectors for 256-bit entropy (trezor/python-mnemonic vectors.json).
    #[test]
    fn known_answer_vectors_of_bip39() {
        let sevens = PrivateKey::from_bytes(&[0x7f; 32]).unwrap();
        assert_eq!(
            RecoveryPhrase::of(&sevens).words().join(" "),
            "legal winner thank year wave sausage worth useful legal winner thank year wave \
             sausage worth useful legal winner thank year wave sausage worth title"
        );
        let eight = PrivateKey::from_bytes(&[0x80; 32]).unwrap();
        assert_eq!(
            RecoveryPhrase::of(&eight).words().join(" "),
            "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd \
             amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless"
        );
    }

    #[test]
    fn a_phrase_gives_back_its_key_however_it_is_typed() {
        let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let words = RecoveryPhrase::of(&key).words();
        let messy: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| match i % 3 {
                0 => w.to_uppercase(),
                1 if w.len() > 4 => w[..4].to_owned(),
                _ => w.clone(),
            })
            .collect();
        let typed = format!("  {}\n", messy.join("  \t"));
        let back = RecoveryPhrase::parse(&typed).unwrap().key().unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn bad_phrases_say_what_is_wrong() {
        let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let words = RecoveryPhrase::of(&key).words();
        assert_eq!(
            RecoveryPhrase::parse(&words[..23].join(" ")).unwrap_err(),
            PhraseError::WordCount(23)
        );
        let mut typo = words.clone();
        typo[4] = "lotusx".into();
        assert_eq!(
            RecoveryPhrase::parse(&typo.join(" ")).unwrap_err(),
            PhraseError::UnknownWord {
                position: 5,
                word: "lotusx".into()
            }
        );
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        if swapped[0] != swapped[1] {
            assert_eq!(
                RecoveryPhrase::parse(&swapped.join(" ")).unwrap_err(),
                PhraseError::Checksum
            );
        }
        let mut short = words.clone();
        short[0] = "ab".into();
        assert!(matches!(
            RecoveryPhrase::parse(&short.join(" ")),
            Err(PhraseError::UnknownWord { position: 1, .. })
        ));
        // Four letters are enough: no two list words share them.
        let list = Language::English.word_list();
        for word in list.iter().filter(|w| w.len() > 4) {
            let prefix = &word[..4];
            assert_eq!(
                list.iter().filter(|w| w.starts_with(prefix)).count(),
                1,
                "{prefix}"
            );
        }
    }

    #[test]
    fn a_valid_phrase_that_is_no_key_is_refused() {
        // All-zero entropy is valid BIP39 ("abandon … art") but zero is not a secp256k1 key.
        let phrase = "abandon ".repeat(23) + "art";
        assert_eq!(
            RecoveryPhrase::parse(&phrase).unwrap().key().unwrap_err(),
            PhraseError::NotAKey
        );
    }

    #[test]
    fn the_check_needs_three_right_words() {
        let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let phrase = RecoveryPhrase::of(&key);
        let words = phrase.words();
        let answer = |p: usize| BackupAnswer {
            position: p as u8,
            word: words[p - 1].clone(),
        };
        let wrong = |p: u8, word: &str| BackupAnswer {
            position: p,
            word: word.to_owned(),
        };
        assert!(phrase.check(&[answer(2), answer(9), answer(24)]).is_ok());
        assert_eq!(
            phrase.check(&[answer(2), answer(9)]).unwrap_err(),
            PhraseError::TooFewAnswers
        );
        assert_eq!(
            phrase
                .check(&[answer(2), answer(2), answer(9)])
                .unwrap_err(),
            PhraseError::TooFewAnswers
        );
        assert_eq!(
            phrase
                .check(&[answer(2), answer(9), wrong(24, &words[0])])
                .unwrap_err(),
            PhraseError::WrongAnswer {
                position: 24,
                given: words[0].clone()
            }
        );
        assert_eq!(
            phrase
                .check(&[answer(2), answer(9), wrong(25, "x")])
                .unwrap_err(),
            PhraseError::NoSuchPosition(25)
        );
    }

    #[test]
    fn positions_to_check_are_three_different_words() {
        for _ in 0..100 {
            let positions = positions_to_check().unwrap();
            assert_eq!(positions.len(), CHECKED_WORDS);
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
            assert!(positions.iter().all(|p| (1..=WORDS).contains(p)));
        }
    }

    #[test]
    fn debug_never_shows_the_words() {
        let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let phrase = RecoveryPhrase::of(&key);
        let shown = format!("{phrase:?}");
        assert_eq!(shown, "RecoveryPhrase(<redacted>)");
        assert!(!phrase.words().iter().any(|w| shown.contains(w.as_str())));
    }
}
