//! The machinery the key table (`keys`) is written with: how a key is
//! described ([`KeyDoc`], [`Type`], [`Valid`]), how a value as written
//! becomes a value the server uses ([`RawValue`]), and the [`sections!`]
//! and [`items!`] macros that turn one row per key into the raw schema
//! struct, its default, the validated struct, the conversions both ways
//! and the reference entry.
//!
//! Nothing here names a key: see `keys` for what adding one takes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::addr::ListenAddr;
use crate::cores::CoreSelection;
use crate::units::{ByteSize, HumanDuration, format_duration, format_size};
use crate::upstream::Upstream;
use crate::values::{
    AclMode, BlockingMode, Delegations, DnssecMode, ListFileFormat, LogFormat, LogLevel,
    RateLimitMode, Steering, UpstreamStrategy,
};

/// A key's type, as the reference names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    Bool,
    Integer,
    Size,
    Duration,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Anything else, described.
    Other(&'static str),
}

impl Type {
    pub(crate) fn describe(self) -> String {
        match self {
            Type::Bool => "bool".to_string(),
            Type::Integer => "integer".to_string(),
            Type::Size => "size".to_string(),
            Type::Duration => "duration".to_string(),
            Type::Enum(_) => "enum".to_string(),
            Type::Other(text) => text.to_string(),
        }
    }
}

/// A key's valid values.
#[derive(Debug, Clone)]
pub(crate) enum Valid {
    /// Whole numbers `min..=max`.
    Int(u64, u64),
    /// Sizes `min..=max` bytes, optionally a multiple of a size.
    Size(u64, u64, Option<u64>),
    /// Durations `min..=max`; `true` when only whole seconds are valid.
    Duration(Duration, Duration, bool),
    /// Described in words (rules across keys, syntax).
    Text(&'static str),
}

/// Any value (of the key's type) is valid.
pub(crate) const ANY: Valid = Valid::Text("any");

/// A `usize` limit as a [`Valid`] bound.
pub(crate) fn int(max: usize) -> u64 {
    u64::try_from(max).unwrap_or(u64::MAX)
}

impl Valid {
    pub(crate) fn describe(&self, ty: Type) -> String {
        if let Type::Enum(values) = ty {
            let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
            return values.join(", ");
        }
        match self {
            Valid::Int(min, max) => format!("{min} to {max}"),
            Valid::Size(min, max, multiple) => {
                let mut text = format!("{} to {}", format_size(*min), format_size(*max));
                if let Some(multiple) = multiple {
                    text.push_str(&format!(", a multiple of {}", format_size(*multiple)));
                }
                text
            }
            Valid::Duration(min, max, whole) => {
                let mut text = format!("{} to {}", format_duration(*min), format_duration(*max));
                if *whole {
                    text.push_str(", whole seconds");
                }
                text
            }
            Valid::Text(text) => text.to_string(),
        }
    }
}

/// One documented key.
#[derive(Debug, Clone)]
pub(crate) struct KeyDoc {
    /// The key path; `[]` stands for every item of a list.
    pub(crate) path: &'static str,
    pub(crate) ty: Type,
    pub(crate) valid: Valid,
    /// A key of a list item that has no default.
    pub(crate) required: bool,
    pub(crate) text: &'static str,
}

/// A value as the YAML writes it, and the value the validated
/// configuration holds. Validation checks the converted value; printing
/// the configuration converts back.
pub(crate) trait RawValue: Sized {
    /// The validated value.
    type Value;
    fn into_value(self) -> Self::Value;
    fn from_value(value: &Self::Value) -> Self;
}

/// Types written as they are used.
macro_rules! same_value {
    ($($ty:ty),* $(,)?) => {
        $(
            impl RawValue for $ty {
                type Value = $ty;
                fn into_value(self) -> $ty {
                    self
                }
                fn from_value(value: &$ty) -> $ty {
                    value.clone()
                }
            }
        )*
    };
}

same_value!(
    bool,
    u8,
    u16,
    u32,
    usize,
    String,
    PathBuf,
    CoreSelection,
    Upstream,
    AclMode,
    BlockingMode,
    Delegations,
    DnssecMode,
    ListFileFormat,
    LogFormat,
    LogLevel,
    RateLimitMode,
    Steering,
    UpstreamStrategy,
);

impl<T: RawValue> RawValue for Vec<T> {
    type Value = Vec<T::Value>;
    fn into_value(self) -> Self::Value {
        self.into_iter().map(T::into_value).collect()
    }
    fn from_value(value: &Self::Value) -> Self {
        value.iter().map(T::from_value).collect()
    }
}

impl<T: RawValue> RawValue for Option<T> {
    type Value = Option<T::Value>;
    fn into_value(self) -> Self::Value {
        self.map(T::into_value)
    }
    fn from_value(value: &Self::Value) -> Self {
        value.as_ref().map(T::from_value)
    }
}

impl RawValue for ByteSize {
    type Value = usize;
    /// A size beyond `usize` saturates; validation then finds it out of
    /// range.
    fn into_value(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
    fn from_value(value: &usize) -> Self {
        ByteSize(u64::try_from(*value).unwrap_or(u64::MAX))
    }
}

impl RawValue for HumanDuration {
    type Value = Duration;
    fn into_value(self) -> Duration {
        self.0
    }
    fn from_value(value: &Duration) -> Self {
        HumanDuration(*value)
    }
}

impl RawValue for ListenAddr {
    type Value = SocketAddr;
    fn into_value(self) -> SocketAddr {
        self.0
    }
    fn from_value(value: &SocketAddr) -> Self {
        ListenAddr(*value)
    }
}

/// Lets a section be present but empty (`cache:` with every key commented
/// out), which YAML reads as null, and means "all defaults".
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Declares the fields of one raw struct and one validated struct from
/// the same rows (used by [`sections!`] and [`items!`]): the raw struct
/// reads and writes the YAML, the validated one is what the server gets.
macro_rules! key_structs {
    (
        $(#[$attr:meta])*
        $Raw:ident => $Cfg:ident, serde($($serde:tt)*) {
            $(
                $(#[$fattr:meta])*
                $key:ident: $raw:ty => $cfg:ty = $default:expr, doc $doc:literal,
            )*
        }
        raw_only {
            $( $(#[$rattr:meta])* $rkey:ident: $rty:ty, )*
        }
    ) => {
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde($($serde)*)]
        pub(crate) struct $Raw {
            $( $(#[$fattr])* pub(crate) $key: $raw, )*
            $( $(#[$rattr])* pub(crate) $rkey: $rty, )*
        }

        impl Default for $Raw {
            fn default() -> Self {
                $Raw {
                    $( $key: <$raw as $crate::schema::RawValue>::from_value(&$default), )*
                    $( $rkey: Default::default(), )*
                }
            }
        }

        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct $Cfg {
            $( #[doc = $doc] pub $key: $cfg, )*
        }

        impl $Raw {
            /// The values as the server uses them, before validation.
            pub(crate) fn into_config(self) -> $Cfg {
                $Cfg {
                    $( $key: $crate::schema::RawValue::into_value(self.$key), )*
                }
            }
        }

        impl From<&$Cfg> for $Raw {
            fn from(config: &$Cfg) -> Self {
                $Raw {
                    $( $key: <$raw as $crate::schema::RawValue>::from_value(&config.$key), )*
                    $( $rkey: Default::default(), )*
                }
            }
        }

        impl $crate::schema::RawValue for $Raw {
            type Value = $Cfg;
            fn into_value(self) -> $Cfg {
                self.into_config()
            }
            fn from_value(value: &$Cfg) -> Self {
                Self::from(value)
            }
        }
    };
}

/// The whole schema: every section with its introduction and every key
/// with its raw type, validated type, default, reference type, valid
/// values and text. Generates per section `Raw*` and `*Config` (see
/// [`key_structs!`]), then `RawConfig` and `Config` holding one of each,
/// [`SECTIONS`](crate::keys::SECTIONS) and `keys()`, the reference table
/// in schema order. A key whose values are mappings (`local.zones`) names
/// its item type with `items`, whose rows follow it in the table.
macro_rules! sections {
    ($(
        $(#[$attr:meta])*
        $section:ident: $Raw:ident => $Cfg:ident {
            intro: $intro:expr,
            keys {
                $(
                    $(#[$fattr:meta])*
                    $key:ident: $raw:ty => $cfg:ty = $default:expr;
                        $kind:expr, $valid:expr $(, items $Item:ty)?;
                        $doc:literal;
                )*
            }
            $( raw_only { $($raw_only:tt)* } )?
        }
    )*) => {
        $(
            $crate::schema::key_structs! {
                $(#[$attr])*
                $Raw => $Cfg, serde(deny_unknown_fields, default) {
                    $( $(#[$fattr])* $key: $raw => $cfg = $default, doc $doc, )*
                }
                raw_only { $( $($raw_only)* )? }
            }
        )*

        /// The whole file, one field per section.
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub(crate) struct RawConfig {
            $(
                #[serde(deserialize_with = "crate::schema::null_as_default")]
                pub(crate) $section: $Raw,
            )*
        }

        /// A validated configuration. Every field satisfies the rules in
        /// [`limits`](crate::limits) and the cross-key rules of
        /// docs/CONFIGURATION.md.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct Config {
            $(
                $(#[$attr])*
                pub $section: $Cfg,
            )*
            pub(crate) source: String,
        }

        impl From<&Config> for RawConfig {
            fn from(config: &Config) -> Self {
                RawConfig {
                    $( $section: $Raw::from(&config.$section), )*
                }
            }
        }

        /// The sections in schema order, each with a short introduction.
        pub(crate) const SECTIONS: &[(&str, &str)] = &[ $( (stringify!($section), $intro), )* ];

        /// Every key of the schema, in the order the schema writes them.
        // One push per row, with an item's rows spliced in after its list:
        // `vec![]` cannot splice.
        #[allow(clippy::vec_init_then_push)]
        pub(crate) fn keys() -> Vec<$crate::schema::KeyDoc> {
            let mut keys = Vec::new();
            $($(
                keys.push($crate::schema::KeyDoc {
                    path: concat!(stringify!($section), ".", stringify!($key)),
                    ty: $kind,
                    valid: $valid,
                    required: false,
                    text: $doc,
                });
                $( keys.extend(<$Item>::keys()); )?
            )*)*
            keys
        }
    };
}

/// The mappings a list holds (`local.zones[]`): like one section of
/// [`sections!`], with `path` the list's path and a `required` flag per
/// row (a required key has no serde default; its default only fills the
/// reference's example item).
macro_rules! items {
    (
        $(#[$attr:meta])*
        $Raw:ident => $Cfg:ident {
            path: $path:literal,
            keys {
                $(
                    $(#[$fattr:meta])*
                    $key:ident: $raw:ty => $cfg:ty = $default:expr;
                        $kind:expr, $valid:expr, required: $required:expr;
                        $doc:literal;
                )*
            }
        }
    ) => {
        $crate::schema::key_structs! {
            $(#[$attr])*
            $Raw => $Cfg, serde(deny_unknown_fields) {
                $( $(#[$fattr])* $key: $raw => $cfg = $default, doc $doc, )*
            }
            raw_only {}
        }

        impl $Raw {
            /// The reference rows of an item's keys.
            pub(crate) fn keys() -> Vec<$crate::schema::KeyDoc> {
                vec![$(
                    $crate::schema::KeyDoc {
                        path: concat!($path, ".", stringify!($key)),
                        ty: $kind,
                        valid: $valid,
                        required: $required,
                        text: $doc,
                    },
                )*]
            }
        }
    };
}

pub(crate) use {items, key_structs, sections};
