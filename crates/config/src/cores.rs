//! Which CPU cores heimdall runs on: [`CoreSelection`], as written in the
//! YAML, and its resolution to CPU ids once the CPU count is known.
//!
//! The library never asks the system how many CPUs there are except in
//! [`available_cpus`], so that resolution stays a pure function.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

/// `server.cores`: how many executors to run, and where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CoreSelection {
    /// `auto`: one executor on each available CPU.
    #[default]
    Auto,
    /// A count `n`: one executor on each of CPUs `0..n`.
    Count(usize),
    /// A list of CPU ids: one executor pinned to each, in this order.
    List(Vec<usize>),
}

impl CoreSelection {
    /// The CPU ids to run on, given the number of CPUs heimdall may use
    /// (ids `0..cpu_count`). The reason is returned when the selection
    /// asks for CPUs that are not there; the key path is added by the
    /// caller.
    pub(crate) fn resolve(&self, cpu_count: usize) -> Result<Vec<usize>, (String, String)> {
        let key = "server.cores".to_string();
        if cpu_count == 0 {
            return Err((key, "no CPUs are available".to_string()));
        }
        match self {
            CoreSelection::Auto => Ok((0..cpu_count).collect()),
            CoreSelection::Count(n) if *n > cpu_count => Err((
                key,
                format!("{n} cores requested but only {cpu_count} CPUs are available"),
            )),
            CoreSelection::Count(n) => Ok((0..*n).collect()),
            CoreSelection::List(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if *id >= cpu_count {
                        return Err((
                            format!("{key}[{i}]"),
                            format!(
                                "CPU id {id} does not exist: {cpu_count} CPUs are available \
                                 (ids 0-{})",
                                cpu_count - 1
                            ),
                        ));
                    }
                }
                Ok(ids.clone())
            }
        }
    }
}

/// How many CPUs this process may run on (its affinity mask and cgroup
/// quota), for [`crate::Config::cpu_ids`]. This is the one place the
/// library asks the system.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl<'de> Deserialize<'de> for CoreSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CoresVisitor;

        impl<'de> Visitor<'de> for CoresVisitor {
            type Value = CoreSelection;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto`, a number of cores, or a list of CPU ids such as [0, 2, 4]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<CoreSelection, E> {
                if v == "auto" {
                    Ok(CoreSelection::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CoreSelection, E> {
                match usize::try_from(v) {
                    Ok(0) => Err(E::custom("0 cores: write `auto` or a count of at least 1")),
                    Ok(n) => Ok(CoreSelection::Count(n)),
                    Err(_) => Err(E::custom(format!("{v} cores is too many"))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CoreSelection, E> {
                Err(E::custom(format!(
                    "{v} cores: write `auto` or a count of at least 1"
                )))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CoreSelection, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<CpuId>()? {
                    ids.push(id.0);
                }
                Ok(CoreSelection::List(ids))
            }
        }

        deserializer.deserialize_any(CoresVisitor)
    }
}

/// One CPU id in a `cores` list, with a clearer message than usize's.
struct CpuId(usize);

impl<'de> Deserialize<'de> for CpuId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = CpuId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CPU id (0, 1, 2, ...)")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CpuId, E> {
                usize::try_from(v)
                    .map(CpuId)
                    .map_err(|_| E::custom(format!("CPU id {v} is too large")))
            }
        }

        deserializer.deserialize_u64(IdVisitor)
    }
}

impl Serialize for CoreSelection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CoreSelection::Auto => serializer.serialize_str("auto"),
            CoreSelection::Count(n) => {
                serializer.serialize_u64(u64::try_from(*n).unwrap_or(u64::MAX))
            }
            CoreSelection::List(ids) => {
                let mut seq = serializer.serialize_seq(Some(ids.len()))?;
                for id in ids {
                    seq.serialize_element(id)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<CoreSelection, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn forms() {
        assert_eq!(yaml("auto"), Ok(CoreSelection::Auto));
        assert_eq!(yaml("4"), Ok(CoreSelection::Count(4)));
        assert_eq!(yaml("[0, 2, 4]"), Ok(CoreSelection::List(vec![0, 2, 4])));
        assert_eq!(yaml("- 1\n- 3\n"), Ok(CoreSelection::List(vec![1, 3])));
    }

    #[test]
    fn bad_forms() {
        assert!(
            yaml("all")
                .unwrap_err()
                .contains("`auto`, a number of cores")
        );
        assert!(yaml("0").unwrap_err().contains("0 cores"));
        assert!(yaml("-2").unwrap_err().contains("-2 cores"));
        assert!(yaml("[0, x]").unwrap_err().contains("expected a CPU id"));
        assert!(yaml("[0, -1]").unwrap_err().contains("expected a CPU id"));
        assert!(
            yaml("1.5")
                .unwrap_err()
                .contains("`auto`, a number of cores")
        );
    }

    #[test]
    fn resolution() {
        assert_eq!(CoreSelection::Auto.resolve(4), Ok(vec![0, 1, 2, 3]));
        assert_eq!(CoreSelection::Count(2).resolve(4), Ok(vec![0, 1]));
        assert_eq!(CoreSelection::Count(4).resolve(4), Ok(vec![0, 1, 2, 3]));
        assert_eq!(CoreSelection::List(vec![3, 1]).resolve(4), Ok(vec![3, 1]));

        let (key, reason) = CoreSelection::Count(8).resolve(4).unwrap_err();
        assert_eq!(key, "server.cores");
        assert!(
            reason.contains("8 cores requested but only 4 CPUs"),
            "{reason}"
        );
        let (key, reason) = CoreSelection::List(vec![0, 9]).resolve(4).unwrap_err();
        assert_eq!(key, "server.cores[1]");
        assert!(reason.contains("CPU id 9 does not exist"), "{reason}");
        assert!(reason.contains("ids 0-3"), "{reason}");
        let (_, reason) = CoreSelection::Auto.resolve(0).unwrap_err();
        assert!(reason.contains("no CPUs"), "{reason}");
    }

    #[test]
    fn serializes_as_written() {
        assert_eq!(
            serde_yaml::to_string(&CoreSelection::Auto).unwrap(),
            "auto\n"
        );
        assert_eq!(
            serde_yaml::to_string(&CoreSelection::Count(3)).unwrap(),
            "3\n"
        );
        assert_eq!(
            serde_yaml::to_string(&CoreSelection::List(vec![0, 2])).unwrap(),
            "- 0\n- 2\n"
        );
    }
}
