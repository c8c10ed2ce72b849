//! Build information for `heimdall_build_info`: the compiler's version,
//! and the git commit when the builder passes it in `HEIMDALL_BUILD_COMMIT`
//! (a packaging step knows it; reading `.git` here would tie the build to a
//! checkout).

fn main() {
    println!("cargo:rerun-if-env-changed=HEIMDALL_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok());
    if let Some(version) = version {
        // "rustc 1.88.0 (6b00bc388 2025-06-23)" -> "1.88.0"
        let number = version.split_whitespace().nth(1).unwrap_or_default();
        println!("cargo:rustc-env=HEIMDALL_BUILD_RUSTC={number}");
    }
    if let Ok(commit) = std::env::var("HEIMDALL_BUILD_COMMIT") {
        println!("cargo:rustc-env=HEIMDALL_BUILD_COMMIT={commit}");
    }
}
