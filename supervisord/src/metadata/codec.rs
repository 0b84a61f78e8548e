//! Record encoding: JSON, with byte fields as hex so records stay readable.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::Error;

/// A `google.protobuf.Any` kept byte-exact (type URL + value bytes), without protobuf types.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AnyValue {
    pub type_url: String,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

pub(crate) fn encode<T: Serialize>(key: &str, v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|source| Error::Codec {
        key: key.to_owned(),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Codec {
        key: key.to_owned(),
        source,
    })
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(D::Error::custom)
    }
}

/// Serde for `SystemTime` as nanoseconds since the epoch (u64 covers until 2554).
pub(crate) mod time_ns {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ns = t
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        s.serialize_u64(ns)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_nanos(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_value_round_trips_byte_exact() {
        let a = AnyValue {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: vec![0, 1, 0xff, b'{', b'}'],
        };
        let bytes = encode("k", &a).expect("encode");
        let b: AnyValue = decode("k", &bytes).expect("decode");
        assert_eq!(a, b);
        assert!(decode::<AnyValue>("k", b"{\"type_url\":\"x\",\"value\":\"zz\"}").is_err());
    }
}
