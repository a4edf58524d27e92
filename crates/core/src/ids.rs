//! Validated identifiers: job and supervisor ids (UUIDs), image ids (sha256 digests) and the
//! names of users and supervisors. Each checks its invariant while deserializing, so a value of
//! these types is always valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid id or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a UUID: {0:?}")]
    Uuid(String),
    #[error("not a sha256 digest (64 lowercase hex characters): {0:?}")]
    Digest(String),
    #[error(
        "invalid name {0:?}: use 1 to 64 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit"
    )]
    Name(String),
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::try_parse(s).map(Self).map_err(|_| IdError::Uuid(s.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// Identifies a job for its whole life.
    JobId
);
uuid_id!(
    /// Identifies a supervisor (one host + device under test).
    SupervisorId
);

/// An image id: the sha256 digest of the image manifest, as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a raw sha256 digest.
    pub fn from_digest(bytes: [u8; 32]) -> ImageId {
        ImageId(hex::encode(bytes))
    }
}

impl FromStr for ImageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Digest(s.to_string()))
        }
    }
}

/// A user, supervisor or site name: 1 to 64 characters of `a-z 0-9 - _ .`, starting with a
/// letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Name(s.to_string()))
        }
    }
}

macro_rules! string_newtype_serde {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_serde!(ImageId);
string_newtype_serde!(Name);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_requires_64_lowercase_hex() {
        assert!(ImageId::from_str(&"a".repeat(64)).is_ok());
        assert!(ImageId::from_str(&"A".repeat(64)).is_err());
        assert!(ImageId::from_str(&"a".repeat(63)).is_err());
        assert!(ImageId::from_str("../../etc/passwd").is_err());
    }

    #[test]
    fn names_are_checked() {
        for good in ["admin", "ci-bot", "a", "x86.host_1"] {
            assert!(Name::from_str(good).is_ok(), "{good}");
        }
        for bad in ["", "Admin", "-x", "a b", "a/b", &"a".repeat(65)] {
            assert!(Name::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_check_while_deserializing() {
        let r: Result<JobId, _> = serde_json::from_str("\"nope\"");
        assert!(r.is_err());
        let id = JobId::new();
        let back: JobId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        assert_eq!(id, back);
        let r: Result<Name, _> = serde_json::from_str("\"UPPER\"");
        assert!(r.is_err());
    }
}
