//! Cache persistence on disk (`cache.persist`): the file holds the union
//! of every core's shard, written once at shutdown after the cores have
//! stopped, and read once at start, before they serve.
//!
//! The bytes are heimdall-cache's persistence format (checksummed, ages
//! applied on load). Writing is atomic: a temporary file in the same
//! directory, fsync, rename over the old file, fsync of the directory. A
//! crash or `kill -9` at any moment leaves either the old file or the new
//! one, never a torn one. Reading never fails the start: a missing file
//! is normal, and a corrupt or foreign one is logged and ignored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;
use heimdall_cache::{CachePolicy, Entry, Timestamp, decode_entries, encode_entries};
use heimdall_wire::QueryKey;

/// Slack over the caches' total size when reading the file: a saved entry
/// takes fewer bytes on disk than the shard accounts for it in memory, so
/// a file larger than twice the caches did not come from this
/// configuration (or is a wrong path, such as a disk image).
const MAX_FILE_FACTOR: u64 = 2;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The entries saved in `path`, aged to `now` (the servers' clock), or
/// none when there is no usable file. `cache_bytes` is the caches' total
/// size, which bounds how much of the file is read.
pub(crate) fn load(
    path: &Path,
    now: Timestamp,
    policy: &CachePolicy,
    cache_bytes: u64,
) -> Vec<(QueryKey, Entry)> {
    let limit = cache_bytes.saturating_mul(MAX_FILE_FACTOR).max(1 << 20);
    let bytes = match read_bounded(path, limit) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            log::info!(
                "cache file {}: not there yet; starting cold",
                path.display()
            );
            return Vec::new();
        }
        Err(err) => {
            log::warn!(
                "cache file {}: cannot read ({err}); starting cold",
                path.display()
            );
            return Vec::new();
        }
    };
    match decode_entries(&bytes, now, wall_clock_ms(), policy) {
        Ok(entries) => {
            log::info!(
                "cache file {}: {} entries loaded ({} bytes)",
                path.display(),
                entries.len(),
                bytes.len()
            );
            entries
        }
        Err(err) => {
            log::warn!(
                "cache file {}: ignored, not a usable heimdall cache file ({err}); starting cold",
                path.display()
            );
            Vec::new()
        }
    }
}

fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, twice the configured caches"),
        ));
    }
    Ok(bytes)
}

/// Save the union of the cores' entries to `path` atomically; where two
/// cores hold the same key, the one that expires last wins. Returns how
/// many entries were written.
pub(crate) fn save(path: &Path, shards: &[Vec<Entry>], now: Timestamp) -> io::Result<usize> {
    let mut newest: HashMap<(&[u8], u16, u16, bool, bool), &Entry> = HashMap::new();
    for entry in shards.iter().flatten() {
        let key = (
            entry.question_name(),
            entry.qtype().0,
            entry.qclass().0,
            entry.dnssec_ok(),
            entry.checking_disabled(),
        );
        newest
            .entry(key)
            .and_modify(|kept| {
                if entry.expires_at() > kept.expires_at() {
                    *kept = entry;
                }
            })
            .or_insert(entry);
    }
    let mut bytes = Vec::new();
    let written = encode_entries(newest.values().copied(), now, wall_clock_ms(), &mut bytes);
    write_atomically(path, &bytes)?;
    Ok(written)
}

/// Write `bytes` to `path` so that it holds either its old content or all
/// of the new one, whatever happens.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(format!(".tmp.{}", std::process::id()));
    let temporary = directory.join(temporary_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        // The rename itself is durable once the directory is synced.
        File::open(&directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("heimdall-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cache.bin");
        write_atomically(&path, b"first version, longer").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != "cache.bin")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // A directory that does not exist is an error, not a panic, and
        // the old file is untouched.
        assert!(write_atomically(&dir.join("missing/cache.bin"), b"x").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"second");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loading_garbage_or_nothing_starts_cold() {
        let dir = std::env::temp_dir().join(format!("heimdall-load-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let policy = CachePolicy::default();
        let start = Timestamp::from_millis(0);
        assert!(load(&dir.join("absent.bin"), start, &policy, 1 << 20).is_empty());
        let garbage = dir.join("garbage.bin");
        fs::write(&garbage, b"\x89PNG\r\n\x1a\n not a cache").unwrap();
        assert!(load(&garbage, start, &policy, 1 << 20).is_empty());
        // Too large for the configured caches: not read at all.
        assert!(read_bounded(&garbage, 8).is_err());
        assert!(read_bounded(&garbage, 64).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
