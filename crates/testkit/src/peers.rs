//! Real peers the tests talk to (promtool, dig, unbound, ...): where their
//! binaries are, and the project's rule for when one is missing. On a
//! developer's machine a missing peer skips the test with a printed
//! reason; under CI (`CI=true`), where `.ci/run` installs every peer, a
//! missing one fails the test, so a broken install cannot pass as a skip.

use std::path::{Path, PathBuf};

/// Directories searched besides `PATH`: Debian puts daemons in sbin,
/// which a non-root `PATH` may leave out.
const EXTRA_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

/// Whether this run is CI's (`CI=true`), where every peer must be present.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// The path of `binary` (from Debian package `package`), or `None` after
/// printing why the caller skips. Panics under CI, where `.ci/run` has
/// installed the package.
#[allow(clippy::panic)] // Failing the test is the point under CI.
pub fn find(binary: &str, package: &str) -> Option<PathBuf> {
    match locate(binary) {
        Some(path) => Some(path),
        None if under_ci() => {
            panic!("{binary} is missing under CI=true; .ci/run must install {package}")
        }
        None => {
            eprintln!("{binary} not found (apt-get install {package}); skipping");
            None
        }
    }
}

/// The path of `binary` on `PATH` or in the sbin directories.
fn locate(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_is_found_and_a_made_up_name_is_not() {
        assert!(locate("sh").is_some());
        assert!(locate("heimdall-no-such-peer-binary").is_none());
    }
}
