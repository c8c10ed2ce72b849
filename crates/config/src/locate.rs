//! Finds the line and column of a key path such as `upstream.servers[1]`
//! in a YAML text, for errors found after deserialization.
//!
//! serde_yaml keeps no positions in deserialized values, but it attaches
//! the position of the current node to any error raised while that node is
//! being deserialized. So the text is walked a second time, down the path,
//! and a marker error is raised at the target node; its location is the
//! answer. This follows YAML exactly (flow style, anchors, quoting) where
//! a line-based search would guess. It runs only when there is an error.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Location;

const MARKER: &str = "heimdall-config: located";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[1].c` into segments; `None` for a malformed path.
fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if key.is_empty() {
            return None;
        }
        out.push(Segment::Key(key));
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[')?;
            let (index, after) = inner.split_once(']')?;
            out.push(Segment::Index(index.parse().ok()?));
            rest = after;
        }
    }
    Some(out)
}

/// The location of the value at `path` in `text`, if the path is there.
pub(crate) fn locate(text: &str, path: &str) -> Option<Location> {
    let path = segments(path)?;
    let result = Walk(&path).deserialize(serde_yaml::Deserializer::from_str(text));
    match result {
        Err(err) if err.to_string().contains(MARKER) => {
            err.location().map(|l| Location::from_yaml(&l))
        }
        _ => None,
    }
}

/// Walks down the remaining segments; at the end, fails with the marker.
struct Walk<'p, 'a>(&'p [Segment<'a>]);

impl Walk<'_, '_> {
    fn leaf<E: de::Error>(self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(MARKER))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.leaf()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.leaf()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(MARKER));
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if matches!(first, Segment::Key(want) if key.as_str() == Some(want)) {
                return map.next_value_seed(Walk(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(MARKER));
        };
        let mut index = 0;
        loop {
            if *first == Segment::Index(index) {
                return seq.next_element_seed(Walk(rest)).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
server:
  listen: [\"127.0.0.1:53\", \"[::1]:53\"]
cache:
  min_ttl: 5
  max_ttl: 3
upstream:
  servers:
    - 9.9.9.9
    - 1.1.1.1
  x: &shared {q: 1}
  y: *shared
";

    fn at(path: &str) -> Option<(usize, usize)> {
        locate(TEXT, path).map(|l| (l.line, l.column))
    }

    #[test]
    fn finds_values() {
        assert_eq!(at("cache.max_ttl"), Some((6, 12)));
        assert_eq!(at("cache.min_ttl"), Some((5, 12)));
        assert_eq!(at("server.listen[1]"), Some((3, 28)));
        assert_eq!(at("upstream.servers[0]"), Some((9, 7)));
        assert_eq!(at("upstream.servers[1]"), Some((10, 7)));
        assert_eq!(at("upstream.y.q"), Some((11, 18)));
    }

    #[test]
    fn missing_paths_have_no_location() {
        assert_eq!(at("cache.negative_max_ttl"), None);
        assert_eq!(at("upstream.servers[2]"), None);
        assert_eq!(at("log.level"), None);
        assert_eq!(at("cache.min_ttl[0]"), None);
        assert_eq!(at(""), None);
        assert_eq!(at("a..b"), None);
        assert_eq!(at("a[x]"), None);
        assert_eq!(locate("{unclosed", "a"), None);
    }

    #[test]
    fn segments_parse() {
        assert_eq!(
            segments("a.b[1][2].c"),
            Some(vec![
                Segment::Key("a"),
                Segment::Key("b"),
                Segment::Index(1),
                Segment::Index(2),
                Segment::Key("c"),
            ])
        );
    }
}
