//! Typed identifiers: a [`RunId`] cannot be passed where an [`InstanceId`] is expected, and an id is parsed once,
//! where it enters (a URL, a form, a CLI argument), with an error that says which kind of id was malformed.
//!
//! Both are UUIDs on the wire (a bare string in JSON) and in the database; the store converts at its edge with
//! [`RunId::as_uuid`] and `From<Uuid>`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Text that is not the id it was meant to be; the message names the kind of id and repeats the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {kind} (expected a UUID such as 0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11)")]
pub struct IdError {
    /// `run id` or `instance id`.
    pub kind: &'static str,
    /// What was given, trimmed.
    pub text: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        /// Read from a string with [`parse`](Self::parse), so a malformed id in a form, a query or a JSON body
        /// is refused with the message that names the kind of id and repeats the text.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// How this kind of id is named in error messages.
            pub const KIND: &'static str = $kind;

            /// The underlying UUID, for the database and for URLs.
            pub fn as_uuid(self) -> Uuid {
                self.0
            }

            /// Parse an id typed by a person: surrounding whitespace is ignored.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                Uuid::parse_str(text.trim())
                    .map($name)
                    .map_err(|_| IdError { kind: $kind, text: text.trim().to_owned() })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                $name(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                $name::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

typed_id!(
    /// Identifies one [`Run`](crate::Run).
    RunId,
    "run id"
);
impl RunId {
    /// Parse a comma-separated list of run ids (`a,b,c`, as in `/compare?runs=`), skipping empty entries and
    /// repeats, keeping the order given; the error names the first malformed entry.
    pub fn parse_list(text: &str) -> Result<Vec<RunId>, IdError> {
        // A set makes dropping repeats linear: the list comes from a URL anyone can make long.
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::new();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let id = RunId::parse(part)?;
            if seen.insert(id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

typed_id!(
    /// Identifies one [`Instance`](crate::Instance).
    InstanceId,
    "instance id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_once_and_name_their_kind_when_malformed() {
        let uuid = Uuid::new_v4();
        assert_eq!(RunId::parse(&format!("  {uuid} ")), Ok(RunId::from(uuid)));
        let error = InstanceId::parse("abc").unwrap_err();
        assert_eq!(error.kind, "instance id");
        assert!(error.to_string().starts_with("\"abc\" is not a valid instance id"), "{error}");
    }

    #[test]
    fn a_run_list_keeps_order_drops_repeats_and_names_the_bad_entry() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ids = RunId::parse_list(&format!("{a}, {b},,{a}")).unwrap();
        assert_eq!(ids, vec![RunId::from(a), RunId::from(b)]);
        assert_eq!(RunId::parse_list(&format!("{a},nope")).unwrap_err().text, "nope");
    }

    #[test]
    fn ids_are_bare_uuid_strings_in_json() {
        let uuid = Uuid::new_v4();
        let json = serde_json::to_string(&RunId::from(uuid)).unwrap();
        assert_eq!(json, format!("\"{uuid}\""));
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap().as_uuid(), uuid);
        let refused = serde_json::from_str::<InstanceId>("\"nope\"").unwrap_err().to_string();
        assert!(refused.contains("\"nope\" is not a valid instance id"), "{refused}");
    }
}
