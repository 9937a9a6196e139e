//! Identifiers with their validity rules, so an invalid id cannot exist past the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected {expected} hex characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("not a hex string")]
    NotHex,
    #[error("an all-zero id is invalid")]
    AllZero,
    #[error("tenant must be 1-64 characters of a-z, 0-9, '-' or '_'")]
    Tenant,
    #[error("not a valid id")]
    Malformed,
}

/// The tenant that owns a piece of data. Every read and write is confined to one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(name: &str) -> Result<Self, IdError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(TenantId(name.to_owned()))
        } else {
            Err(IdError::Tenant)
        }
    }

    /// The tenant used when an operator does not name one.
    pub fn default_tenant() -> Self {
        TenantId("default".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        TenantId::new(s)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Accepts exactly the id's width; all zeroes is invalid (OTLP).
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    expected: $len * 2,
                    got: bytes.len() * 2,
                })?;
                if array.iter().all(|b| *b == 0) {
                    return Err(IdError::AllZero);
                }
                Ok($name(array))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                if s.len() != $len * 2 {
                    return Err(IdError::Length { expected: $len * 2, got: s.len() });
                }
                let bytes = hex::decode(s).map_err(|_| IdError::NotHex)?;
                $name::from_bytes(&bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.to_ascii_lowercase().parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// An investigation's identity: the trace id of the agent run, 16 bytes.
    TraceId,
    16
);
hex_id!(
    /// One step (span) inside an investigation, 8 bytes.
    SpanId,
    8
);

/// A feedback record's identity: a UUIDv7, so ids sort by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeedbackId(uuid::Uuid);

impl FeedbackId {
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        FeedbackId(id)
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for FeedbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for FeedbackId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(FeedbackId)
            .map_err(|_| IdError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_round_trip_and_reject_bad_input() {
        let id: TraceId = "5b8efff798038103d269b633813fc60c".parse().unwrap();
        assert_eq!(id.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(
            "00000000000000000000000000000000".parse::<TraceId>(),
            Err(IdError::AllZero)
        );
        assert_eq!(
            "abc".parse::<TraceId>(),
            Err(IdError::Length {
                expected: 32,
                got: 3
            })
        );
        assert_eq!(
            "zz8efff798038103d269b633813fc60c".parse::<TraceId>(),
            Err(IdError::NotHex)
        );
        assert!(SpanId::from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn tenants_are_restricted_to_a_safe_alphabet() {
        assert!(TenantId::new("acme-prod_1").is_ok());
        for bad in ["", "Acme", "a b", "x/../y", &"a".repeat(65)] {
            assert_eq!(TenantId::new(bad), Err(IdError::Tenant), "{bad:?}");
        }
    }
}
