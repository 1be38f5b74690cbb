//! Enums at the edges: stored as lower-case text codes in the database, exchanged as
//! protobuf enums on the wire. Two macros declare both mappings once per enum.

/// A text code no variant has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} code {code:?}")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub code: String,
}

/// Declares a domain enum stored and exchanged as a lower-case text code, with
/// `as_str`, `FromStr`, `Display`, `ALL` and serde in that code. The caller needs serde.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    other => Err($crate::codes::UnknownCode { kind: stringify!($name), code: other.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A domain enum with a protobuf twin whose zero value means "unspecified".
pub trait ProtoEnum: Sized + Copy {
    fn to_proto(self) -> i32;
    /// `None` for UNSPECIFIED and for values this build does not know.
    fn from_proto(value: i32) -> Option<Self>;
}

/// Implements [`ProtoEnum`] for a domain enum, variant by variant.
#[macro_export]
macro_rules! proto_enum {
    ($domain:ty => $proto:ty { $($variant:ident => $pvariant:ident),+ $(,)? }) => {
        impl $crate::codes::ProtoEnum for $domain {
            fn to_proto(self) -> i32 {
                match self { $(<$domain>::$variant => <$proto>::$pvariant as i32),+ }
            }
            fn from_proto(value: i32) -> Option<Self> {
                match <$proto>::try_from(value).ok()? {
                    $(<$proto>::$pvariant => Some(<$domain>::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

/// A protobuf timestamp for an instant.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The instant of a protobuf timestamp; `None` when it is out of range.
pub fn instant(t: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}
