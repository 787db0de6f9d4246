//! Identifiers and digests: tenant ids, execution and decision ids, sha256 digests.
//!
//! Every identifier is validated when it is built, so code that holds one can rely on its
//! shape (safe in store keys, URLs and file names).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Why an identifier or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {reason}")]
pub struct IdError {
    /// Which kind of identifier was being parsed.
    pub what: &'static str,
    /// The offending text (truncated to 80 characters).
    pub value: String,
    /// What rule it broke.
    pub reason: &'static str,
}

fn id_error(what: &'static str, value: &str, reason: &'static str) -> IdError {
    IdError {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

/// A tenant identifier: 1-63 characters, lowercase ASCII letters, digits and '-', starting
/// with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Parses and validates a tenant id.
    pub fn new(value: &str) -> Result<Self, IdError> {
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 63 {
            return Err(id_error("tenant id", value, "must be 1 to 63 characters"));
        }
        if !bytes[0].is_ascii_lowercase() {
            return Err(id_error(
                "tenant id",
                value,
                "must start with a lowercase letter",
            ));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(id_error(
                "tenant id",
                value,
                "may only contain lowercase letters, digits and '-'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! prefixed_ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The textual prefix of every id of this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: the prefix and a lowercase ULID (time-ordered, 80 random bits).
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::generate().to_string().to_ascii_lowercase()))
            }

            /// Parses and validates an id of this kind.
            pub fn new(value: &str) -> Result<Self, IdError> {
                let Some(rest) = value.strip_prefix($prefix) else {
                    return Err(id_error($what, value, concat!("must start with \"", $prefix, "\"")));
                };
                if rest.len() != 26
                    || !rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
                    || ulid::Ulid::from_string(&rest.to_ascii_uppercase()).is_err()
                {
                    return Err(id_error($what, value, "must end with a 26-character lowercase ULID"));
                }
                Ok(Self(value.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

prefixed_ulid_id!(
    /// An execution identifier, `ex_` followed by a lowercase ULID.
    ExecutionId,
    "ex_",
    "execution id"
);
prefixed_ulid_id!(
    /// A policy decision identifier, `dc_` followed by a lowercase ULID.
    DecisionId,
    "dc_",
    "decision id"
);

macro_rules! string_id_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
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
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }
    )*};
}
string_id_impls!(TenantId, ExecutionId, DecisionId);

/// A SHA-256 digest. Text form: `sha256:` followed by 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses `sha256:<hex>` or a bare 64-digit hex string.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
        if hex_part.len() != 64 {
            return Err(id_error(
                "digest",
                text,
                "must be sha256: and 64 hex digits",
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut out)
            .map_err(|_| id_error("digest", text, "must be sha256: and 64 hex digits"))?;
        Ok(Self(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Digest".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^sha256:[0-9a-f]{64}$" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_validated() {
        assert!(TenantId::new("acme").is_ok());
        assert!(TenantId::new("acme-2").is_ok());
        for bad in ["", "Acme", "1acme", "ac_me", "acme/../x", &"a".repeat(64)] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn execution_ids_round_trip_and_refuse_garbage() {
        let id = ExecutionId::generate();
        assert_eq!(ExecutionId::new(id.as_str()).unwrap(), id);
        assert!(id.as_str().starts_with("ex_"));
        for bad in [
            "",
            "ex_",
            "dc_01jbv0000000000000000000000",
            "ex_../../etc/passwd",
            "ex_0",
        ] {
            assert!(ExecutionId::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(DecisionId::new(id.as_str()).is_err());
    }

    #[test]
    fn generated_ids_sort_by_creation_time() {
        let a = ExecutionId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ExecutionId::generate();
        assert!(a < b);
    }

    #[test]
    fn digests_parse_and_print() {
        let d = Digest::of(b"hello");
        let text = d.to_string();
        assert_eq!(
            text,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse(&text).unwrap(), d);
        assert_eq!(Digest::parse(&d.hex()).unwrap(), d);
        assert!(Digest::parse("sha256:xyz").is_err());
        assert!(Digest::parse("sha512:00").is_err());
    }
}
