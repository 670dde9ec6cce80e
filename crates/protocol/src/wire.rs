//! Canonical, bounded binary encoding shared by every protocol type.
//!
//! Integers are fixed-width big-endian; byte strings carry a u32 length that is checked against
//! both a per-field maximum and the bytes actually remaining before anything is allocated.
//! Decoding must consume the whole input: trailing bytes are an error, so every value has
//! exactly one encoding (needed for hashing and for signatures over received bytes).

use lotus::secp256k1::PublicKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DecodeError {
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    #[error("{field} is {len} bytes, above the limit of {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DecodeError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Reads a byte slice front to back; every read names its field for error messages.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N, field)?.try_into().expect("took N bytes"))
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::invalid(field, format!("boolean byte {other}"))),
        }
    }

    /// A u32-length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len, field)
    }

    pub fn string(&mut self, max: usize, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(max, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::invalid(field, "not UTF-8"))
    }

    pub fn public_key(&mut self, field: &'static str) -> Result<PublicKey, DecodeError> {
        let bytes: [u8; 33] = self.array(field)?;
        PublicKey::from_slice(&bytes).map_err(|_| DecodeError::invalid(field, "not a curve point"))
    }

    /// A u16 count, bounded by `max`, checked against the bytes left assuming `min_item_len`
    /// bytes per item, so a hostile count never drives an allocation.
    pub fn count(
        &mut self,
        max: usize,
        min_item_len: usize,
        field: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.u16(field)? as usize;
        if n > max {
            return Err(DecodeError::TooLong { field, len: n, max });
        }
        if n.saturating_mul(min_item_len) > self.remaining() {
            return Err(DecodeError::Truncated(field));
        }
        Ok(n)
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// The encoding side of `Reader`.
#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.raw(&[v])
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Callers keep `bytes` within the field's maximum; lengths beyond u32 cannot occur for
    /// values that decode.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(u32::try_from(bytes.len()).expect("field below 4 GiB"));
        self.raw(bytes)
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn public_key(&mut self, key: &PublicKey) -> &mut Self {
        self.raw(&key.serialize())
    }

    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u16(u16::try_from(n).expect("counts are bounded below 65536"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_strictness() {
        let mut w = Writer::new();
        w.u8(7)
            .u16(300)
            .u32(70000)
            .u64(1 << 40)
            .bool(true)
            .bytes(b"abc")
            .string("hé");
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 300);
        assert_eq!(r.u32("c").unwrap(), 70000);
        assert_eq!(r.u64("d").unwrap(), 1 << 40);
        assert!(r.bool("e").unwrap());
        assert_eq!(r.bytes(3, "f").unwrap(), b"abc");
        assert_eq!(r.string(8, "g").unwrap(), "hé");
        r.finish().unwrap();

        let mut r = Reader::new(&bytes[..bytes.len() - 1]);
        r.take(bytes.len() - 7, "x").unwrap(); // up to the string's length prefix
        assert_eq!(r.string(8, "g").unwrap_err(), DecodeError::Truncated("g"));

        let mut long = Writer::new();
        long.bytes(&[0u8; 10]);
        let long = long.into_bytes();
        assert!(matches!(
            Reader::new(&long).bytes(9, "f"),
            Err(DecodeError::TooLong { .. })
        ));

        let mut trailing = Reader::new(&[1, 2]);
        trailing.u8("a").unwrap();
        assert_eq!(
            trailing.finish().unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
        assert!(Reader::new(&[2]).bool("b").is_err());

        // A huge count with few bytes left never allocates.
        let mut r = Reader::new(&[0xff, 0xff, 0, 0]);
        assert!(r.count(100_000, 33, "items").is_err());
    }
}
