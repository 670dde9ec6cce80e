//! XAddress, the Lotus address format (lotusd `src/addresses/xaddress.cpp`).
//!
//! `token || network char || Base58(type || payload || checksum4)`, checksum4 = the first four
//! bytes of SHA256(token || network char || type || payload). Decoding also accepts the checksum
//! lotusd <= 1.0.1 produced (SHA256 over a `CHashWriter` stream, i.e. with compact-size length
//! prefixes before the token and the payload); encoding always writes the current one.
//!
//! Two levels, as in lotusd: [`XAddressContent::decode`] is `XAddress::Decode` (any token, any
//! network character), [`XAddress::decode`] is what the wallet accepts (token "lotus", a known
//! network), and [`XAddress::parse`] is `XAddress::Parse` (a destination on a given network).

use std::fmt;
use std::str::FromStr;

use secp256k1::PublicKey;
use sha2::{Digest, Sha256};

use crate::script::Script;

/// The only token lotusd's `Parse` accepts.
pub const TOKEN: &str = "lotus";

/// A Lotus network, identified in addresses by one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    Mainnet,
    Testnet,
    Regtest,
}

impl Network {
    pub const ALL: [Network; 3] = [Network::Mainnet, Network::Testnet, Network::Regtest];

    /// The address network character: `_`, `T`, `R`.
    pub fn char(self) -> char {
        match self {
            Network::Mainnet => '_',
            Network::Testnet => 'T',
            Network::Regtest => 'R',
        }
    }

    pub fn from_char(c: char) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.char() == c)
    }

    /// Lower-case name: `mainnet`, `testnet`, `regtest`.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Regtest => "regtest",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = XAddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| XAddressError::UnknownNetworkName(s.to_owned()))
    }
}

/// The address type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// 0: the payload is a whole scriptPubKey.
    ScriptPubKey,
    /// 2: the payload is a 33-byte Taproot commitment.
    Taproot,
    /// Any other byte: decodable, but no destination.
    Unknown(u8),
}

impl AddressType {
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => AddressType::ScriptPubKey,
            2 => AddressType::Taproot,
            other => AddressType::Unknown(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            AddressType::ScriptPubKey => 0,
            AddressType::Taproot => 2,
            AddressType::Unknown(b) => b,
        }
    }
}

/// Which checksum an address carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    Current,
    /// Written by lotusd <= 1.0.1; accepted on decode only.
    Legacy,
}

/// Decode and parse failures. The first four are lotusd's `DecodeError` values, in its order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XAddressError {
    #[error("no network character (upper-case letter, digit or '_') in the address")]
    NoNetworkPosition,
    #[error("the part after the network character is not Base58")]
    Base58DecodeFailed,
    #[error("decoded body is shorter than a type byte and a 4-byte checksum")]
    UndersizedPayload,
    #[error("checksum does not match the address contents")]
    IntegrityCheckFailed,
    #[error("address token is {0:?}, expected \"lotus\"")]
    UnknownToken(String),
    #[error("unknown network character {0:?}")]
    UnknownNetwork(char),
    #[error("unknown network name {0:?}")]
    UnknownNetworkName(String),
    #[error("address is for {found}, expected {expected}")]
    WrongNetwork { expected: Network, found: Network },
    #[error("address type {0} has no destination")]
    UnsupportedType(u8),
    #[error("script payload is not a P2PKH or P2SH output")]
    NoDestination,
    #[error("Taproot payload is not a valid 33-byte compressed point")]
    InvalidTaprootCommitment,
}

/// Everything lotusd's `XAddress::Decode` returns: no restriction on token or network character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XAddressContent {
    pub token: String,
    pub network_char: char,
    pub kind: AddressType,
    pub payload: Vec<u8>,
}

impl XAddressContent {
    /// lotusd `XAddress::Decode`, returning which checksum matched.
    pub fn decode(address: &str) -> Result<(XAddressContent, ChecksumKind), XAddressError> {
        // The network character is the first byte that is an ASCII upper-case letter, digit or
        // '_'; everything before it is the token (so "lotus" itself can never contain one).
        let pos = address
            .bytes()
            .position(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
            .ok_or(XAddressError::NoNetworkPosition)?;
        let token = &address[..pos];
        let network_char = char::from(address.as_bytes()[pos]);
        let body = decode_base58_like_lotusd(&address[pos + 1..])?;
        if body.len() < 5 {
            return Err(XAddressError::UndersizedPayload);
        }
        let (contents, check) = body.split_at(body.len() - 4);
        let content = XAddressContent {
            token: token.to_owned(),
            network_char,
            kind: AddressType::from_byte(contents[0]),
            payload: contents[1..].to_vec(),
        };
        if content.checksum()[..] == *check {
            Ok((content, ChecksumKind::Current))
        } else if content.legacy_checksum()[..] == *check {
            Ok((content, ChecksumKind::Legacy))
        } else {
            Err(XAddressError::IntegrityCheckFailed)
        }
    }

    /// lotusd `XAddress::Encode` (current checksum).
    pub fn encode(&self) -> String {
        let mut body = Vec::with_capacity(self.payload.len() + 5);
        body.push(self.kind.to_byte());
        body.extend_from_slice(&self.payload);
        body.extend_from_slice(&self.checksum());
        let mut out = String::with_capacity(self.token.len() + 1 + body.len() * 2);
        out.push_str(&self.token);
        out.push(self.network_char);
        out.push_str(&bs58::encode(body).into_string());
        out
    }

    /// `HashAddressContents`: SHA256(token || net || type || payload)[..4].
    fn checksum(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.token.as_bytes());
        h.update(self.network_byte());
        h.update([self.kind.to_byte()]);
        h.update(&self.payload);
        first4(h.finalize().into())
    }

    /// `LegacyHashAddressContents`: the same fields serialized by a `CHashWriter`, where a
    /// string and a byte vector carry a compact-size length prefix.
    fn legacy_checksum(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(compact_size(self.token.len()));
        h.update(self.token.as_bytes());
        h.update(self.network_byte());
        h.update([self.kind.to_byte()]);
        h.update(compact_size(self.payload.len()));
        h.update(&self.payload);
        first4(h.finalize().into())
    }

    /// The network character as the single byte lotusd hashes. Decoded characters are always
    /// ASCII; a non-ASCII character set by hand is hashed as its UTF-8 encoding.
    fn network_byte(&self) -> Vec<u8> {
        self.network_char.to_string().into_bytes()
    }
}

/// A Lotus address as the wallet uses it: token "lotus" on a known network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XAddress {
    pub network: Network,
    pub kind: AddressType,
    pub payload: Vec<u8>,
}

/// Where an address pays to (lotusd `CTxDestination`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    PubKeyHash([u8; 20]),
    ScriptHash([u8; 20]),
    Taproot(PublicKey),
}

impl Destination {
    /// The scriptPubKey paying to this destination (lotusd `GetScriptForDestination`).
    pub fn script_pubkey(&self) -> Script {
        match self {
            Destination::PubKeyHash(h) => Script::p2pkh(h),
            Destination::ScriptHash(h) => Script::p2sh(h),
            Destination::Taproot(c) => Script::taproot_key_path(c, None),
        }
    }
}

impl XAddress {
    /// Decodes an address, accepting either checksum, and requires token "lotus" and a
    /// network character of a known network. Any type byte is accepted (see [`Self::parse`]).
    pub fn decode(address: &str) -> Result<XAddress, XAddressError> {
        let (content, _) = XAddressContent::decode(address)?;
        if content.token != TOKEN {
            return Err(XAddressError::UnknownToken(content.token));
        }
        let network = Network::from_char(content.network_char)
            .ok_or(XAddressError::UnknownNetwork(content.network_char))?;
        Ok(XAddress {
            network,
            kind: content.kind,
            payload: content.payload,
        })
    }

    /// Encodes with token "lotus" and the current checksum.
    pub fn encode(&self) -> String {
        XAddressContent {
            token: TOKEN.to_owned(),
            network_char: self.network.char(),
            kind: self.kind,
            payload: self.payload.clone(),
        }
        .encode()
    }

    /// lotusd `XAddress::Parse`: decode, require `network`, and extract a destination.
    pub fn parse(address: &str, network: Network) -> Result<Destination, XAddressError> {
        let addr = XAddress::decode(address)?;
        if addr.network != network {
            return Err(XAddressError::WrongNetwork {
                expected: network,
                found: addr.network,
            });
        }
        addr.destination()
    }

    /// The destination of a decoded address, by lotusd's `Parse` rules.
    pub fn destination(&self) -> Result<Destination, XAddressError> {
        match self.kind {
            AddressType::ScriptPubKey => extract_destination(&Script::from(self.payload.clone())),
            AddressType::Taproot => {
                // lotusd requires exactly 33 bytes and `IsFullyValid` (a point on the curve).
                if self.payload.len() != 33 {
                    return Err(XAddressError::InvalidTaprootCommitment);
                }
                PublicKey::from_slice(&self.payload)
                    .map(Destination::Taproot)
                    .map_err(|_| XAddressError::InvalidTaprootCommitment)
            }
            AddressType::Unknown(b) => Err(XAddressError::UnsupportedType(b)),
        }
    }

    /// The scriptPubKey this address pays to.
    pub fn script_pubkey(&self) -> Result<Script, XAddressError> {
        self.destination().map(|d| d.script_pubkey())
    }

    /// The address of a scriptPubKey (type 0, payload = the script).
    pub fn for_script(script: &Script, network: Network) -> XAddress {
        XAddress {
            network,
            kind: AddressType::ScriptPubKey,
            payload: script.as_bytes().to_vec(),
        }
    }
}

impl fmt::Display for XAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for XAddress {
    type Err = XAddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XAddress::decode(s)
    }
}

/// The P2PKH address of a key (hash160 of its 33-byte compressed encoding).
pub fn p2pkh_address(pubkey: &PublicKey, network: Network) -> String {
    XAddress::for_script(&Script::p2pkh_for_key(pubkey), network).encode()
}

/// The Taproot address (type 2) of an already-tweaked commitment C.
pub fn taproot_address(commitment: &PublicKey, network: Network) -> String {
    XAddress {
        network,
        kind: AddressType::Taproot,
        payload: commitment.serialize().to_vec(),
    }
    .encode()
}

/// The destination of a type-0 payload: P2PKH or P2SH only.
///
/// Deliberately narrower than lotusd's `ExtractDestination`, which also turns a pay-to-pubkey
/// script into the P2PKH of its key (so paying the "address" would pay a different script than
/// the one it contains) and reaches undefined behaviour on a Taproot script (its `Solver` returns
/// no solution to index). A wallet must pay exactly the script an address names, so those are
/// refused; Taproot has its own address type (2).
fn extract_destination(script: &Script) -> Result<Destination, XAddressError> {
    if let Some(h) = script.as_p2pkh() {
        return Ok(Destination::PubKeyHash(h));
    }
    if let Some(h) = script.as_p2sh() {
        return Ok(Destination::ScriptHash(h));
    }
    Err(XAddressError::NoDestination)
}

/// lotusd `DecodeBase58`: leading and trailing C `isspace` characters are skipped, anything
/// else outside the alphabet (inner spaces, NUL) fails.
fn decode_base58_like_lotusd(s: &str) -> Result<Vec<u8>, XAddressError> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let trimmed = s.trim_matches(is_space);
    bs58::decode(trimmed)
        .into_vec()
        .map_err(|_| XAddressError::Base58DecodeFailed)
}

fn first4(h: [u8; 32]) -> [u8; 4] {
    [h[0], h[1], h[2], h[3]]
}

/// Bitcoin compact-size encoding of a length.
fn compact_size(n: usize) -> Vec<u8> {
    let n = n as u64;
    if n < 0xfd {
        vec![n as u8]
    } else if n <= 0xffff {
        let mut v = vec![0xfd];
        v.extend_from_slice(&(n as u16).to_le_bytes());
        v
    } else if n <= 0xffff_ffff {
        let mut v = vec![0xfe];
        v.extend_from_slice(&(n as u32).to_le_bytes());
        v
    } else {
        let mut v = vec![0xff];
        v.extend_from_slice(&n.to_le_bytes());
        v
    }
}

/// The address people see for an output script: the type-2 Taproot address of a Taproot
/// output's commitment (how a group's own address reads), else the type-0 script address.
pub fn display_address(script: &Script, network: Network) -> String {
    match script.as_taproot().and_then(|t| t.commitment_key().ok()) {
        Some(commitment) if script.as_taproot().is_some_and(|t| t.state.is_none()) => {
            taproot_address(&commitment, network)
        }
        _ => XAddress::for_script(script, network).encode(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash160;

    const FIRST: &str = "lotus_16PSJLk9W86KAZp26x3uM176w6N9vUU8YNQQnQTHN";
    const FIRST_LEGACY: &str = "lotus_16PSJLk9W86KAZp26x3uM176w6N9vUU8YNQLVBwUQ";
    const FIRST_PAYLOAD: &str = "76a91476a04053bda0a88bda5177b86a15c3b29f55987388ac";
    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn decodes_and_reencodes_p2pkh() {
        let a = XAddress::decode(FIRST).unwrap();
        assert_eq!(a.network, Network::Mainnet);
        assert_eq!(a.kind, AddressType::ScriptPubKey);
        assert_eq!(hex::encode(&a.payload), FIRST_PAYLOAD);
        assert_eq!(a.encode(), FIRST);
        let dest = XAddress::parse(FIRST, Network::Mainnet).unwrap();
        let mut h = [0u8; 20];
        h.copy_from_slice(&hex::decode(&FIRST_PAYLOAD[6..46]).unwrap());
        assert_eq!(dest, Destination::PubKeyHash(h));
        assert_eq!(dest.script_pubkey().as_bytes(), &a.payload[..]);
    }

    #[test]
    fn legacy_checksum_decodes_and_reencodes_current() {
        let (c, kind) = XAddressContent::decode(FIRST_LEGACY).unwrap();
        assert_eq!(kind, ChecksumKind::Legacy);
        assert_eq!(c.encode(), FIRST);
        assert_eq!(
            XAddressContent::decode(FIRST).unwrap().1,
            ChecksumKind::Current
        );
    }

    #[test]
    fn lotusd_decode_errors() {
        let e = |s: &str| XAddressContent::decode(s).unwrap_err();
        assert_eq!(
            e("lotusabcfdsafdsafdsfdasfdsa"),
            XAddressError::NoNetworkPosition
        );
        assert_eq!(e("lotus_fdasf"), XAddressError::UndersizedPayload);
        assert_eq!(e("lotus_"), XAddressError::UndersizedPayload);
        assert_eq!(
            e("lotus_16PS0Lk9W86KAZp26x3uM176w6N9vUU8YNQQnQTHN"),
            XAddressError::Base58DecodeFailed
        );
        assert_eq!(
            e("lotus_16PSJLk9W86KAZp26x3uM176w6N9vUU8YNQQnQTHM"),
            XAddressError::IntegrityCheckFailed
        );
        assert_eq!(
            e("lotus_16PSJLk9W86KAZp26x3u M176w6N9vUU8YNQQnQTHN"),
            XAddressError::Base58DecodeFailed
        );
        assert_eq!(
            e("lotus_16PSJLk9W86KAZp26x3u\0M176w6N9vUU8YNQQnQTHN"),
            XAddressError::Base58DecodeFailed
        );
        assert_eq!(e(""), XAddressError::NoNetworkPosition);
    }

    #[test]
    fn surrounding_whitespace_of_the_body_is_skipped_like_lotusd() {
        let padded = format!("{FIRST}\n");
        assert_eq!(XAddress::decode(&padded).unwrap().encode(), FIRST);
        let inner = FIRST.replacen('_', "_ ", 1);
        assert!(XAddress::decode(&inner).is_ok());
    }

    #[test]
    fn wallet_decode_restricts_token_and_network() {
        let mut c = XAddressContent::decode(FIRST).unwrap().0;
        c.token = "poop".into();
        assert_eq!(
            XAddress::decode(&c.encode()),
            Err(XAddressError::UnknownToken("poop".into()))
        );
        let mut c = XAddressContent::decode(FIRST).unwrap().0;
        c.network_char = 'X';
        let s = c.encode();
        assert_eq!(XAddressContent::decode(&s).unwrap().0.network_char, 'X');
        assert_eq!(
            XAddress::decode(&s),
            Err(XAddressError::UnknownNetwork('X'))
        );
    }

    #[test]
    fn parse_checks_network_and_type() {
        assert_eq!(
            XAddress::parse(FIRST, Network::Testnet),
            Err(XAddressError::WrongNetwork {
                expected: Network::Testnet,
                found: Network::Mainnet
            })
        );
        let unknown = XAddress {
            network: Network::Mainnet,
            kind: AddressType::Unknown(0xf0),
            payload: vec![1, 2],
        };
        assert_eq!(
            XAddress::parse(&unknown.encode(), Network::Mainnet),
            Err(XAddressError::UnsupportedType(0xf0))
        );
        let garbage = XAddress {
            network: Network::Mainnet,
            kind: AddressType::ScriptPubKey,
            payload: vec![0x76; 20],
        };
        assert_eq!(
            XAddress::parse(&garbage.encode(), Network::Mainnet),
            Err(XAddressError::NoDestination)
        );
        let mut p2pk = vec![33];
        p2pk.extend_from_slice(&hex::decode(G).unwrap());
        p2pk.push(0xac);
        let g = PublicKey::from_slice(&hex::decode(G).unwrap()).unwrap();
        for script in [Script::from(p2pk), Script::taproot_key_path(&g, None)] {
            let a = XAddress::for_script(&script, Network::Mainnet);
            assert_eq!(a.destination(), Err(XAddressError::NoDestination));
        }
        let not_point = XAddress {
            network: Network::Mainnet,
            kind: AddressType::Taproot,
            payload: [vec![2], vec![0; 32]].concat(),
        };
        assert_eq!(
            XAddress::parse(&not_point.encode(), Network::Mainnet),
            Err(XAddressError::InvalidTaprootCommitment)
        );
        let short = XAddress {
            network: Network::Mainnet,
            kind: AddressType::Taproot,
            payload: vec![2; 20],
        };
        assert_eq!(
            short.destination(),
            Err(XAddressError::InvalidTaprootCommitment)
        );
    }

    #[test]
    fn taproot_and_p2pkh_helpers() {
        let g = PublicKey::from_slice(&hex::decode(G).unwrap()).unwrap();
        assert_eq!(
            taproot_address(&g, Network::Mainnet),
            "lotus_JF5FTU5wdsKNp4qcuFJ1aD9enPQMocJLCqvHE2ZPDjUNakX2SHT"
        );
        assert_eq!(
            taproot_address(&g, Network::Regtest),
            "lotusRJF5FTU5wdsKNp4qcuFJ1aD9enPQMocJLCqvHE2ZPDjUNafkCWzo"
        );
        assert_eq!(
            XAddress::parse(&taproot_address(&g, Network::Testnet), Network::Testnet),
            Ok(Destination::Taproot(g))
        );
        let a = XAddress::decode(&p2pkh_address(&g, Network::Regtest)).unwrap();
        assert_eq!(a.network, Network::Regtest);
        assert_eq!(
            Script::from(a.payload).as_p2pkh(),
            Some(hash160(&g.serialize()))
        );
    }

    #[test]
    fn network_names_and_chars() {
        for n in Network::ALL {
            assert_eq!(Network::from_char(n.char()), Some(n));
            assert_eq!(n.name().parse::<Network>(), Ok(n));
        }
        assert!("main".parse::<Network>().is_err());
    }
}
