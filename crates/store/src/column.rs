//! Conversions between Rust values and SQLite columns (SQLite integers are i64; blobs of a
//! fixed size are arrays).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::Row;

/// Milliseconds as stored: SQLite has no u64; times past year 292 million saturate.
pub(crate) fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn ms_back(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A fixed-size blob column.
pub(crate) struct Fixed<const N: usize>(pub [u8; N]);

impl<const N: usize> FromSql for Fixed<N> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let bytes = value.as_blob()?;
        <[u8; N]>::try_from(bytes)
            .map(Fixed)
            .map_err(|_| FromSqlError::InvalidBlobSize {
                expected_size: N,
                blob_size: bytes.len(),
            })
    }
}

pub(crate) fn fixed<const N: usize>(row: &Row<'_>, index: usize) -> rusqlite::Result<[u8; N]> {
    Ok(row.get::<_, Fixed<N>>(index)?.0)
}

pub(crate) fn fixed_opt<const N: usize>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<[u8; N]>> {
    Ok(row.get::<_, Option<Fixed<N>>>(index)?.map(|f| f.0))
}

pub(crate) fn u64_col(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(ms_back(row.get::<_, i64>(index)?))
}

pub(crate) fn u64_opt(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    Ok(row.get::<_, Option<i64>>(index)?.map(ms_back))
}

/// Serde for byte arrays and vectors as lowercase hex (audit JSON is read by people).
pub(crate) mod hex_bytes {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(D::Error::custom)?;
        T::try_from(bytes).map_err(|_| D::Error::custom("wrong length"))
    }
}

pub(crate) mod hex_opt {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => {
                let bytes = hex::decode(&text).map_err(D::Error::custom)?;
                T::try_from(bytes)
                    .map(Some)
                    .map_err(|_| D::Error::custom("wrong length"))
            }
        }
    }
}

pub(crate) mod hex_vec {
    use serde::de::Error as _;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            seq.serialize_element(&hex::encode(v))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|text| {
                let bytes = hex::decode(&text).map_err(D::Error::custom)?;
                T::try_from(bytes).map_err(|_| D::Error::custom("wrong length"))
            })
            .collect()
    }
}
