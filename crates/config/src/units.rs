//! Human units in the YAML: byte sizes (`64MiB`, `1GB`, `65536`) and
//! durations (`800ms`, `2s`, `1h`, `30`), parsed and written back.
//!
//! Writing picks the largest unit that divides the value exactly, so that
//! `to_yaml` output reads like a hand-written file and parses back to the
//! same value.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

const SIZE_HELP: &str = "expected a size such as 64MiB, 512KiB, 1GB or a number of bytes";

/// Parses a byte size: a whole number, optionally followed by one of B, KB,
/// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024),
/// in any letter case.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = split_number(text);
    if digits.is_empty() {
        return Err(format!("invalid size {text:?}: {SIZE_HELP}"));
    }
    let unit = unit.trim_start();
    let multiplier = if unit.is_empty() {
        1
    } else {
        let lower = unit.to_ascii_lowercase();
        match SIZE_UNITS.iter().find(|(name, _)| *name == lower) {
            Some((_, multiplier)) => *multiplier,
            // A bare K/M/G is read as 1000 by some tools and 1024 by others;
            // refusing it keeps the file unambiguous.
            None if matches!(lower.as_str(), "k" | "m" | "g" | "t") => {
                return Err(format!(
                    "invalid size {text:?}: write {digits}{u}iB (powers of 1024) or {digits}{u}B \
                     (powers of 1000)",
                    u = unit.to_ascii_uppercase()
                ));
            }
            None if unit.starts_with('.') => {
                return Err(format!(
                    "invalid size {text:?}: use a whole number with a smaller unit, e.g. 1536MiB"
                ));
            }
            None => {
                return Err(format!(
                    "invalid size {text:?}: unknown unit {unit:?}; {SIZE_HELP}"
                ));
            }
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// Writes a size with the unit that gives the smallest whole number,
/// binary on a tie, or as bytes when no unit divides it.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 8] = [
        ("TiB", 1 << 40),
        ("TB", 1_000_000_000_000),
        ("GiB", 1 << 30),
        ("GB", 1_000_000_000),
        ("MiB", 1 << 20),
        ("MB", 1_000_000),
        ("KiB", 1 << 10),
        ("KB", 1_000),
    ];
    if bytes == 0 {
        return "0".to_string();
    }
    UNITS
        .iter()
        .filter(|(_, per_unit)| bytes.is_multiple_of(*per_unit))
        .min_by_key(|(_, per_unit)| bytes / per_unit)
        .map_or_else(
            || bytes.to_string(),
            |(name, per_unit)| format!("{}{name}", bytes / per_unit),
        )
}

const DURATION_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

const DURATION_HELP: &str =
    "expected a duration such as 800ms, 2s, 5m, 1h, 1d or a whole number of seconds";

/// Parses a duration: a whole number followed by one of ns, us, ms, s, m,
/// h, d; a number without a unit is seconds, as TTLs are in DNS.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = split_number(text);
    if digits.is_empty() {
        return Err(format!("invalid duration {text:?}: {DURATION_HELP}"));
    }
    let unit = unit.trim_start();
    let nanos_per_unit = if unit.is_empty() {
        1_000_000_000
    } else {
        match DURATION_UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, n)) => *n,
            None if unit.starts_with('.') => {
                return Err(format!(
                    "invalid duration {text:?}: use a whole number with a smaller unit, e.g. 1500ms"
                ));
            }
            None => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?}; {DURATION_HELP}"
                ));
            }
        }
    };
    let nanos = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| u128::from(n).checked_mul(u128::from(nanos_per_unit)))
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("invalid duration {text:?}: too large"))?;
    // The remainder of a division by 10^9 always fits in u32.
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, subsec))
}

/// Writes a duration with the largest unit that divides it exactly.
pub(crate) fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    for (name, per_unit) in DURATION_UNITS.iter().rev() {
        let per_unit = u128::from(*per_unit);
        if nanos.is_multiple_of(per_unit) {
            return format!("{}{name}", nanos / per_unit);
        }
    }
    format!("{nanos}ns")
}

/// Splits leading ASCII digits from the rest.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A byte size as written in the YAML: an integer or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 64MiB, 512KiB, 1GB or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: a size cannot be negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!(
                    "invalid size {v}: use a whole number with a unit, e.g. 1536MiB"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = format_size(self.0);
        // A size with no exact unit reads best as a plain integer.
        match text.parse::<u64>() {
            Ok(n) => serializer.serialize_u64(n),
            Err(_) => serializer.serialize_str(&text),
        }
    }
}

/// A duration as written in the YAML: seconds as an integer, or a string
/// with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 800ms, 2s, 5m, 1h, 1d or a number of seconds")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map(|v| HumanDuration(Duration::from_secs(v)))
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid duration {v}: a duration cannot be negative"
                        ))
                    })
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: use a whole number with a unit, e.g. 1500ms"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("65536"), Ok(65_536));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("3TB"), Ok(3_000_000_000_000));
        assert_eq!(parse_size("10kb"), Ok(10_000));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size(" 7B "), Ok(7));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
    }

    #[test]
    fn sizes_reject_with_reasons() {
        let err = |s: &str| parse_size(s).unwrap_err();
        assert!(
            err("").contains("expected a size such as 64MiB"),
            "{}",
            err("")
        );
        assert!(err("MiB").contains("expected a size"));
        assert!(err("-5MiB").contains("expected a size"));
        assert!(err("64M").contains("64MiB"), "{}", err("64M"));
        assert!(err("64M").contains("64MB"));
        assert!(err("1.5GiB").contains("whole number"), "{}", err("1.5GiB"));
        assert!(err("12 parsecs").contains("unknown unit \"parsecs\""));
        assert!(err("64 MiB extra").contains("unknown unit"));
        assert!(err("99999999999999999999").contains("too large"));
        assert!(err("20000000TiB").contains("too large"));
    }

    #[test]
    fn sizes_format_round_trip() {
        for (bytes, text) in [
            (0, "0"),
            (1, "1"),
            (1000, "1KB"),
            (1024, "1KiB"),
            (64 << 20, "64MiB"),
            (1_000_000_000, "1GB"),
            (1536 << 20, "1536MiB"),
            (4 << 30, "4GiB"),
            (1_000_003, "1000003"),
            (1_000_000_000_000, "1TB"),
            (1_024_000, "1000KiB"),
        ] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_reject_with_reasons() {
        let err = |s: &str| parse_duration(s).unwrap_err();
        assert!(err("").contains("expected a duration such as 800ms"));
        assert!(err("ms").contains("expected a duration"));
        assert!(err("-1s").contains("expected a duration"));
        assert!(err("1.5s").contains("whole number"), "{}", err("1.5s"));
        assert!(err("2 fortnights").contains("unknown unit \"fortnights\""));
        // Units are lower case: `M` could be read as months.
        assert!(err("5M").contains("unknown unit \"M\""));
        assert!(err("1h30m").contains("unknown unit"));
        assert!(err("99999999999999999999d").contains("too large"));
        assert!(err("999999999999999999d").contains("too large"));
    }

    #[test]
    fn durations_format_round_trip() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(800), "800ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_nanos(1_000_001), "1000001ns"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn yaml_values_of_both_kinds() {
        let size: ByteSize = serde_yaml::from_str("65536").unwrap();
        assert_eq!(size, ByteSize(65_536));
        let size: ByteSize = serde_yaml::from_str("64MiB").unwrap();
        assert_eq!(size, ByteSize(64 << 20));
        let err = serde_yaml::from_str::<ByteSize>("-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be negative"), "{err}");
        let err = serde_yaml::from_str::<ByteSize>("1.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number"), "{err}");
        let err = serde_yaml::from_str::<ByteSize>("[1]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a size such as 64MiB"), "{err}");

        let d: HumanDuration = serde_yaml::from_str("30").unwrap();
        assert_eq!(d, HumanDuration(Duration::from_secs(30)));
        let d: HumanDuration = serde_yaml::from_str("800ms").unwrap();
        assert_eq!(d, HumanDuration(Duration::from_millis(800)));
        let err = serde_yaml::from_str::<HumanDuration>("-3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be negative"), "{err}");
        let err = serde_yaml::from_str::<HumanDuration>("true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a duration such as 800ms"), "{err}");

        assert_eq!(
            serde_yaml::to_string(&ByteSize(64 << 20)).unwrap(),
            "64MiB\n"
        );
        assert_eq!(serde_yaml::to_string(&ByteSize(12_345)).unwrap(), "12345\n");
        assert_eq!(
            serde_yaml::to_string(&HumanDuration(Duration::from_millis(800))).unwrap(),
            "800ms\n"
        );
    }
}
