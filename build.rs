//! Build script: stamps build metadata into the binary.
//!
//! Sets these compile-time environment variables (read with `env!`):
//!
//! - `KEEPALIVED_RS_VERSION`    the crate version (`CARGO_PKG_VERSION`)
//! - `KEEPALIVED_RS_GIT_COMMIT` short commit hash, `unknown` without git
//! - `KEEPALIVED_RS_TARGET`     target triple, e.g. `aarch64-unknown-linux-musl`
//! - `KEEPALIVED_RS_PROFILE`    `release` or `debug` (cargo's `PROFILE`)
//! - `KEEPALIVED_RS_OPT_LEVEL`  the opt-level actually used (`OPT_LEVEL`)
//!
//! No build dependencies, and it never fails: package builders (Buildroot,
//! OpenWrt) build from a tarball without `.git` and often without `git`; they
//! may pass `KEEPALIVED_RS_GIT_COMMIT=<hash>` in the environment instead.
//!
//! Only `.git` inside this crate's own directory counts, so a tarball that is
//! unpacked inside some other checkout (the OpenWrt tree is a git repo) does
//! not get that repo's commit.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "unknown".into());
    let target = env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let profile = env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    let opt_level = env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".into());

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KEEPALIVED_RS_GIT_COMMIT");

    let commit = match env::var("KEEPALIVED_RS_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git_commit(&manifest_dir).unwrap_or_else(|| "unknown".into()),
    };

    println!("cargo:rustc-env=KEEPALIVED_RS_VERSION={version}");
    println!("cargo:rustc-env=KEEPALIVED_RS_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=KEEPALIVED_RS_TARGET={target}");
    println!("cargo:rustc-env=KEEPALIVED_RS_PROFILE={profile}");
    println!("cargo:rustc-env=KEEPALIVED_RS_OPT_LEVEL={opt_level}");
}

/// Runs `git` in `dir` and returns its trimmed stdout, or `None` on any failure.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Short hash of HEAD, plus `rerun-if-changed` lines for the files that move
/// when HEAD moves, so a commit or checkout restamps but nothing else does.
fn git_commit(dir: &Path) -> Option<String> {
    // `.git` is a directory in a normal clone and a file in a worktree.
    if !dir.join(".git").exists() {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short", "HEAD"])?;

    // `--git-path` resolves worktrees: HEAD is per worktree, refs and
    // packed-refs live in the common directory.
    let mut watch = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = git(dir, &["rev-parse", "--git-path", &r]).map(|p| abs(dir, p));
        match loose {
            Some(p) if p.exists() => watch.push(Some(p.display().to_string())),
            // The branch is only in packed-refs: the next commit creates the
            // loose file, which shows up as a change of its directory.
            Some(p) => watch.push(p.parent().map(|d| d.display().to_string())),
            None => {}
        }
        watch.push(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    }
    for p in watch.into_iter().flatten() {
        let p = abs(dir, p);
        // Cargo treats a missing file as always changed, so only watch
        // files that exist (packed-refs often does not).
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    Some(commit)
}

/// `git -C dir rev-parse --git-path` prints paths relative to `dir` in a
/// plain clone and absolute ones in a worktree.
fn abs(dir: &Path, p: impl Into<PathBuf>) -> PathBuf {
    let p = p.into();
    if p.is_absolute() {
        p
    } else {
        dir.join(p)
    }
}
