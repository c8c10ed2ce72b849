//! Which CPU cores heimdall runs on: [`CoreSelection`], as written in the
//! YAML, and its resolution to CPU ids once the CPUs the process may use
//! (its affinity mask) are known.
//!
//! The library never asks the system which CPUs there are except in
//! [`available_cpu_ids`], so that resolution stays a pure function.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

/// `server.cores`: how many executors to run, and where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CoreSelection {
    /// `auto`: one executor on each CPU the process may run on.
    #[default]
    Auto,
    /// A count `n`: one executor on each of the first `n` CPUs the process
    /// may run on (in ascending id order).
    Count(usize),
    /// A list of CPU ids: one executor pinned to each, in this order. Each
    /// must be one the process may run on.
    List(Vec<usize>),
}

impl CoreSelection {
    /// The CPU ids to run on, given the ids of the CPUs heimdall may use
    /// (its affinity mask; see [`available_cpu_ids`]), in any order. The
    /// reason is returned when the selection asks for CPUs that are not
    /// available; the key path is added by the caller.
    pub(crate) fn resolve(&self, available: &[usize]) -> Result<Vec<usize>, (String, String)> {
        let key = "server.cores".to_string();
        let mut allowed = available.to_vec();
        allowed.sort_unstable();
        allowed.dedup();
        if allowed.is_empty() {
            return Err((key, "no CPUs are available to this process".to_string()));
        }
        match self {
            CoreSelection::Auto => Ok(allowed),
            CoreSelection::Count(n) if *n > allowed.len() => Err((
                key,
                format!(
                    "{n} cores requested but only {} CPUs are available to this process \
                     (allowed: {})",
                    allowed.len(),
                    format_cpu_list(&allowed)
                ),
            )),
            CoreSelection::Count(n) => Ok(allowed.into_iter().take(*n).collect()),
            CoreSelection::List(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if allowed.binary_search(id).is_err() {
                        return Err((
                            format!("{key}[{i}]"),
                            format!(
                                "CPU {id} is not available to this process (allowed: {})",
                                format_cpu_list(&allowed)
                            ),
                        ));
                    }
                }
                Ok(ids.clone())
            }
        }
    }
}

/// Writes sorted, distinct CPU ids the way Linux writes CPU lists
/// (`taskset -c`, `/sys/devices/system/cpu/online`): `0-3,8,10-11`.
pub(crate) fn format_cpu_list(sorted_ids: &[usize]) -> String {
    let mut out = String::new();
    let mut rest = sorted_ids.iter().copied().peekable();
    while let Some(first) = rest.next() {
        let mut last = first;
        while let Some(next) = rest.next_if(|&next| Some(next) == last.checked_add(1)) {
            last = next;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            out.push_str(&first.to_string());
        } else {
            out.push_str(&format!("{first}-{last}"));
        }
    }
    out
}

/// The ids of the CPUs this process may run on, ascending: the calling
/// thread's affinity mask (`sched_getaffinity`), which `taskset`, `numactl`,
/// cgroup cpusets and systemd's `CPUAffinity=` set. Call it before any
/// thread is pinned (the server does, before starting its executors). For
/// [`crate::Config::cpu_ids`]; this is the one place the library asks the
/// system. If the mask cannot be read, CPUs `0..n` for the parallelism the
/// standard library reports.
pub fn available_cpu_ids() -> Vec<usize> {
    affinity_mask().unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        (0..n).collect()
    })
}

/// How many CPUs this process may run on: the length of
/// [`available_cpu_ids`], which is how many executors `cores: auto`
/// starts.
pub fn available_cpus() -> usize {
    available_cpu_ids().len()
}

/// The affinity mask of the calling thread, or `None` when it cannot be
/// read (or is empty, which the kernel never reports).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn affinity_mask() -> Option<Vec<usize>> {
    const WORD_BITS: usize = libc::c_ulong::BITS as usize;
    // Start with the size of cpu_set_t (1024 CPUs) and grow for kernels
    // built for more: the call fails with EINVAL while the buffer is
    // smaller than the kernel's mask.
    let mut words = std::mem::size_of::<libc::cpu_set_t>() / std::mem::size_of::<libc::c_ulong>();
    loop {
        let mut mask: Vec<libc::c_ulong> = vec![0; words];
        let bytes = words * std::mem::size_of::<libc::c_ulong>();
        // SAFETY: `mask` is a live, writable buffer of `bytes` bytes, and
        // the kernel writes at most `bytes` bytes to it. The mask is an
        // array of unsigned longs, which is what the kernel writes.
        let result = unsafe {
            libc::sched_getaffinity(0, bytes, mask.as_mut_ptr().cast::<libc::cpu_set_t>())
        };
        if result == 0 {
            let ids: Vec<usize> = mask
                .iter()
                .enumerate()
                .flat_map(|(w, &word)| {
                    (0..WORD_BITS)
                        .filter(move |bit| word >> bit & 1 == 1)
                        .map(move |bit| w * WORD_BITS + bit)
                })
                .collect();
            return (!ids.is_empty()).then_some(ids);
        }
        let einval = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL);
        if !einval || words >= 1 << 16 {
            return None;
        }
        words *= 2;
    }
}

#[cfg(not(target_os = "linux"))]
fn affinity_mask() -> Option<Vec<usize>> {
    None
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
        let all = [0, 1, 2, 3];
        assert_eq!(CoreSelection::Auto.resolve(&all), Ok(vec![0, 1, 2, 3]));
        assert_eq!(CoreSelection::Count(2).resolve(&all), Ok(vec![0, 1]));
        assert_eq!(CoreSelection::Count(4).resolve(&all), Ok(vec![0, 1, 2, 3]));
        assert_eq!(
            CoreSelection::List(vec![3, 1]).resolve(&all),
            Ok(vec![3, 1])
        );

        let (key, reason) = CoreSelection::Count(8).resolve(&all).unwrap_err();
        assert_eq!(key, "server.cores");
        assert_eq!(
            reason,
            "8 cores requested but only 4 CPUs are available to this process (allowed: 0-3)"
        );
        let (key, reason) = CoreSelection::List(vec![0, 9]).resolve(&all).unwrap_err();
        assert_eq!(key, "server.cores[1]");
        assert_eq!(
            reason,
            "CPU 9 is not available to this process (allowed: 0-3)"
        );
        let (_, reason) = CoreSelection::Auto.resolve(&[]).unwrap_err();
        assert!(reason.contains("no CPUs"), "{reason}");
    }

    /// `taskset -c 1`: only CPU 1.
    #[test]
    fn resolution_in_a_mask_without_cpu_0() {
        let mask = [1];
        assert_eq!(CoreSelection::Auto.resolve(&mask), Ok(vec![1]));
        assert_eq!(CoreSelection::Count(1).resolve(&mask), Ok(vec![1]));
        assert_eq!(CoreSelection::List(vec![1]).resolve(&mask), Ok(vec![1]));
        let (key, reason) = CoreSelection::List(vec![0]).resolve(&mask).unwrap_err();
        assert_eq!(key, "server.cores[0]");
        assert_eq!(
            reason,
            "CPU 0 is not available to this process (allowed: 1)"
        );
        let (key, reason) = CoreSelection::Count(2).resolve(&mask).unwrap_err();
        assert_eq!(key, "server.cores");
        assert_eq!(
            reason,
            "2 cores requested but only 1 CPUs are available to this process (allowed: 1)"
        );
    }

    /// `taskset -c 0,2,4`: a sparse mask, given in any order.
    #[test]
    fn resolution_in_a_sparse_mask() {
        let mask = [4, 0, 2, 2];
        assert_eq!(CoreSelection::Auto.resolve(&mask), Ok(vec![0, 2, 4]));
        assert_eq!(CoreSelection::Count(2).resolve(&mask), Ok(vec![0, 2]));
        assert_eq!(
            CoreSelection::List(vec![4, 0]).resolve(&mask),
            Ok(vec![4, 0])
        );
        let (key, reason) = CoreSelection::List(vec![2, 3]).resolve(&mask).unwrap_err();
        assert_eq!(key, "server.cores[1]");
        assert_eq!(
            reason,
            "CPU 3 is not available to this process (allowed: 0,2,4)"
        );
        let (_, reason) = CoreSelection::Count(4).resolve(&mask).unwrap_err();
        assert!(reason.contains("only 3 CPUs"), "{reason}");
        assert!(reason.contains("(allowed: 0,2,4)"), "{reason}");
    }

    #[test]
    fn cpu_lists_are_written_like_linux() {
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[0]), "0");
        assert_eq!(format_cpu_list(&[0, 1]), "0-1");
        assert_eq!(format_cpu_list(&[0, 2, 4]), "0,2,4");
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(
            format_cpu_list(&[usize::MAX - 1, usize::MAX]),
            format!("{}-{}", usize::MAX - 1, usize::MAX)
        );
    }

    #[test]
    fn the_affinity_mask_is_read() {
        let cpus = available_cpu_ids();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|pair| pair[0] < pair[1]), "{cpus:?}");
        assert_eq!(available_cpus(), cpus.len());
        // Every CPU of the mask can be resolved, and `auto` is the mask.
        assert_eq!(CoreSelection::Auto.resolve(&cpus), Ok(cpus.clone()));
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
