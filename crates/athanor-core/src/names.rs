//! Names users type, parsed once at the edge so the rest of the code never re-checks them.
//!
//! A value of [`InstanceName`] is always trimmed, non-empty and at most [`InstanceName::MAX_CHARS`] characters;
//! there is no way to build one that is not (the field is private and `Deserialize` goes through
//! [`InstanceName::parse`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a typed name was refused. The message names the field so a form can show it beside the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing left after trimming whitespace.
    #[error("{field} must not be empty")]
    Empty {
        /// The form field, e.g. `name`.
        field: &'static str,
    },
    /// Contains a NUL character, which no database column can hold as text.
    #[error("{field} must not contain NUL characters")]
    Nul {
        /// The form field, e.g. `name`.
        field: &'static str,
    },
    /// Longer than the field allows.
    #[error("{field} must be at most {max} characters (got {len})")]
    TooLong {
        /// The form field, e.g. `name`.
        field: &'static str,
        /// The limit.
        max: usize,
        /// The trimmed length that was given.
        len: usize,
    },
}

impl NameError {
    /// The form field the error belongs to.
    pub fn field(&self) -> &'static str {
        match self {
            NameError::Empty { field } | NameError::Nul { field } | NameError::TooLong { field, .. } => field,
        }
    }
}

fn parse_bounded(raw: &str, field: &'static str, max: usize, allow_empty: bool) -> Result<String, NameError> {
    let trimmed = raw.trim();
    // PostgreSQL cannot store NUL in text; refusing it here names the field instead of failing in the database.
    if trimmed.contains('\0') {
        return Err(NameError::Nul { field });
    }
    if trimmed.is_empty() && !allow_empty {
        return Err(NameError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(NameError::TooLong { field, max, len });
    }
    Ok(trimmed.to_owned())
}

macro_rules! parsed_string {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, max = $max:expr, allow_empty = $empty:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in characters (after trimming).
            pub const MAX_CHARS: usize = $max;

            /// Trim and check `raw`.
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                parse_bounded(raw, $field, $max, $empty).map(Self)
            }

            /// The parsed text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(raw: String) -> Result<Self, NameError> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

parsed_string!(
    /// The human name of an instance, e.g. "GPT-4 Baseline".
    InstanceName, field = "name", max = 200, allow_empty = false
);
parsed_string!(
    /// Free-text notes about an instance; may be empty.
    Description, field = "description", max = 10_000, allow_empty = true
);
parsed_string!(
    /// The registered name of an experiment (its code), e.g. `training_curve`.
    ExperimentName, field = "experiment", max = 200, allow_empty = false
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_character_is_refused_by_field() {
        let error = InstanceName::parse("a\0b").unwrap_err();
        assert_eq!(error.to_string(), "name must not contain NUL characters");
        assert!(Description::parse("notes\0").is_err());
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(InstanceName::parse("  GPT-4 Baseline \n").unwrap().as_str(), "GPT-4 Baseline");
    }

    #[test]
    fn blank_names_are_refused_with_the_field_named() {
        for raw in ["", "   ", "\t\n"] {
            let err = InstanceName::parse(raw).unwrap_err();
            assert_eq!(err, NameError::Empty { field: "name" });
            assert_eq!(err.to_string(), "name must not be empty");
        }
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming() {
        let at_limit = "é".repeat(InstanceName::MAX_CHARS);
        assert!(InstanceName::parse(&format!("  {at_limit}  ")).is_ok());
        let err = InstanceName::parse(&format!("{at_limit}x")).unwrap_err();
        assert_eq!(err.to_string(), "name must be at most 200 characters (got 201)");
    }

    #[test]
    fn description_may_be_empty() {
        assert_eq!(Description::parse("  ").unwrap().as_str(), "");
    }

    #[test]
    fn deserialising_goes_through_parse() {
        let name: InstanceName = serde_json::from_str("\" padded \"").unwrap();
        assert_eq!(name.as_str(), "padded");
        assert!(serde_json::from_str::<InstanceName>("\"  \"").is_err());
    }
}
