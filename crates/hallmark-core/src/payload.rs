use std::{fmt, str::FromStr};

use crate::Error;

/// The 64-bit identifier a watermark carries, shown as 16 hex digits.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Payload(pub u64);

impl Payload {
    /// A payload from the operating system's random number generator.
    pub fn random() -> Self {
        Payload(rand_core::RngCore::next_u64(&mut rand_core::OsRng))
    }

    /// The payload as 64 bits, most significant first.
    pub fn bits(self) -> [bool; 64] {
        std::array::from_fn(|i| (self.0 >> (63 - i)) & 1 == 1)
    }

    /// Builds a payload from 64 bits, most significant first.
    pub fn from_bits(bits: &[bool; 64]) -> Self {
        Payload(bits.iter().fold(0u64, |acc, &b| (acc << 1) | u64::from(b)))
    }
}

impl schemars::JsonSchema for Payload {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Payload".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A 64-bit watermark ID as 16 lower-case hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{16}$"
        })
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({self})")
    }
}

impl FromStr for Payload {
    type Err = Error;

    /// Parses exactly 16 hex digits (an optional `0x` prefix is allowed).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::param(
                "payload",
                format!("expected 16 hex digits (64 bits), got {s:?}"),
            ));
        }
        u64::from_str_radix(s, 16)
            .map(Payload)
            .map_err(|e| Error::param("payload", e.to_string()))
    }
}

impl From<Payload> for String {
    fn from(p: Payload) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Payload {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p: Payload = "0123456789abcdef".parse().expect("valid");
        assert_eq!(p.0, 0x0123_4567_89ab_cdef);
        assert_eq!(p.to_string(), "0123456789abcdef");
        assert_eq!(Payload::from_bits(&p.bits()), p);
        for bad in [
            "",
            "123",
            "0123456789abcdefg",
            "xyz0123456789abc",
            "0123456789abcdef0",
        ] {
            assert!(bad.parse::<Payload>().is_err(), "{bad}");
        }
    }
}
