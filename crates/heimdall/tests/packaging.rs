//! The packaging files: the man pages and shell completions in deploy/
//! are what `heimdall generate` makes from the clap definitions now
//! (`HEIMDALL_BLESS=1` rewrites them), the .deb's unit is the unit with
//! the binary in /usr/bin, and every asset the cargo-deb metadata names
//! exists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_heimdall");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("HEIMDALL_BLESS").is_some()
}

fn generate(args: &[&str]) -> Vec<u8> {
    let output = Command::new(BIN)
        .arg("generate")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run heimdall generate");
    assert!(output.status.success(), "generate {args:?}: {output:?}");
    output.stdout
}

/// `expected` is the file at `path`, or (blessing) becomes it.
fn check_file(path: &Path, expected: &[u8]) {
    if bless() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, expected).unwrap();
        return;
    }
    let actual = fs::read(path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is not what `heimdall generate` makes now: run \
         HEIMDALL_BLESS=1 cargo test -p heimdall --test packaging",
        path.display()
    );
}

#[test]
fn man_pages_are_generated_and_current() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("man-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let output = Command::new(BIN)
        .args(["generate", "man", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for page in [
        "heimdall.1",
        "heimdall-ctl.1",
        "heimdall-check-config.1",
        "heimdall-ctl-reload.1",
        "heimdall-ctl-cache-lookup.1",
    ] {
        assert!(names.iter().any(|name| name == page), "{page} in {names:?}");
    }
    let main = fs::read_to_string(dir.join("heimdall.1")).unwrap();
    assert!(
        main.starts_with(".ie \\n(.g") || main.contains(".TH heimdall"),
        "{main}"
    );
    for word in ["check\\-config", "ctl", "\\-\\-config"] {
        assert!(main.contains(word), "{word} in heimdall.1");
    }
    let ctl = fs::read_to_string(dir.join("heimdall-ctl.1")).unwrap();
    for word in ["status", "reload", "flush", "log\\-level", "\\-\\-json"] {
        assert!(ctl.contains(word), "{word} in heimdall-ctl.1");
    }
    // Every page a page refers to, `heimdall-x(1)`, is there.
    for name in &names {
        let page = fs::read_to_string(dir.join(name)).unwrap();
        for reference in page.split("heimdall\\-").skip(1) {
            let Some((stem, _)) = reference.split_once("(1)") else {
                continue;
            };
            // Not a reference (`heimdall-ctl - Talk ...`), or clap's own
            // `help` subcommand, which has no page.
            if stem.contains(char::is_whitespace) || stem.ends_with("help") {
                continue;
            }
            let file = format!("heimdall-{}.1", stem.replace("\\-", "-"));
            assert!(
                names.contains(&file),
                "{name} refers to {file}, which is missing"
            );
        }
    }
    // stdout is the main page.
    assert_eq!(generate(&["man"]), main.as_bytes());
    let committed = repo().join("deploy/man");
    if bless() {
        let _ = fs::remove_dir_all(&committed);
    } else {
        let mut committed_names: Vec<String> = fs::read_dir(&committed)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        committed_names.sort();
        assert_eq!(committed_names, names, "deploy/man holds exactly the pages");
    }
    for name in &names {
        check_file(&committed.join(name), &fs::read(dir.join(name)).unwrap());
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn completions_are_generated_and_current() {
    for (shell, file) in [
        ("bash", "heimdall"),
        ("zsh", "_heimdall"),
        ("fish", "heimdall.fish"),
    ] {
        let script = generate(&["completions", shell]);
        let text = String::from_utf8(script.clone()).unwrap();
        for word in ["check-config", "ctl", "log-level", "generate"] {
            assert!(text.contains(word), "{word} in the {shell} completions");
        }
        check_file(&repo().join("deploy/completions").join(file), &script);
    }
    let bad = Command::new(BIN)
        .args(["generate", "completions", "cmd.exe"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn the_deb_unit_is_the_unit_with_the_binary_in_usr_bin() {
    let unit = fs::read_to_string(repo().join("deploy/heimdall.service")).unwrap();
    let expected = unit.replace("/usr/local/bin/heimdall", "/usr/bin/heimdall");
    assert!(expected.contains("ExecStart=/usr/bin/heimdall "));
    check_file(
        &repo().join("deploy/deb/heimdall.service"),
        expected.as_bytes(),
    );
}

#[test]
fn every_deb_asset_exists() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let metadata = manifest
        .split_once("[package.metadata.deb]")
        .expect("cargo-deb metadata")
        .1;
    let mut checked = 0;
    for line in metadata.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("[\"../../") else {
            continue;
        };
        let source = rest.split('"').next().unwrap();
        let path = repo().join(source);
        if let Some(dir) = source.strip_suffix("*.1") {
            let pages = fs::read_dir(repo().join(dir)).unwrap().count();
            assert!(pages >= 2, "{source}: {pages} pages");
        } else {
            assert!(path.is_file(), "{source} is not a file");
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} assets");
    for script in ["postinst", "postrm", "heimdall.service"] {
        assert!(repo().join("deploy/deb").join(script).is_file(), "{script}");
    }
    // Each maintainer script has cargo-deb's marker once, on a line of its
    // own (it is replaced wherever it is, comments included), and parses.
    for script in ["postinst", "postrm"] {
        let path = repo().join("deploy/deb").join(script);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("#DEBHELPER#").count(), 1, "{script}");
        assert!(text.lines().any(|line| line == "#DEBHELPER#"), "{script}");
        let parsed = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(parsed.status.success(), "sh -n {script}: {parsed:?}");
    }
    let postinst = fs::read_to_string(repo().join("deploy/deb/postinst")).unwrap();
    assert!(postinst.contains("adduser --system"));
}
