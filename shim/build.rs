//! Link flags for the berth-shim binary: a static, position-dependent
//! executable, because every running task keeps one serving shim alive and
//! what such a process maps is its memory cost.
//!
//! - Static (glibc's `libc.a`): no `ld.so`, `libc.so.6`, `libm.so.6` or
//!   `libgcc_s.so.1` mappings (about 1.2 MiB of resident pages per shim),
//!   no symbol binding at each of the three execs of a task start.
//! - Not PIE: nothing to relocate at start, so `.data.rel.ro` (~400 KiB of
//!   vtables and constants) stays clean file pages instead of one private
//!   copy per shim. The shim's own code is not address-randomised.
//!
//! Cargo cannot set `-C target-feature=+crt-static` for one binary, and rustc
//! without it asks the linker for the shared `-lc -lm -lgcc_s` after
//! `-Bdynamic`. So the bins get a private library directory whose `libc.so`,
//! `libm.so` and `libgcc_s.so` are linker scripts naming the static archives
//! (`libgcc_eh.a` stands in for `libgcc_s`), plus `-static -no-pie`. Only the
//! bins: the library and the test binaries stay ordinary dynamic PIEs.
//!
//! Falls back to a dynamic PIE with packed relative relocations (DT_RELR)
//! when the static archives are missing, when the target is not linux-gnu,
//! or with `BERTH_SHIM_DYNAMIC=1` (for comparisons).

use std::path::{Path, PathBuf};
use std::process::Command;

/// glibc functions std references weakly (it falls back when they are
/// missing). A weak reference does not pull a member out of `libc.a`, so
/// without these the static binary would take the fallbacks, among them
/// `fork` instead of `posix_spawn` for every `Command` with a working
/// directory.
const WEAK_LIBC: &[&str] = &[
    "posix_spawn_file_actions_addchdir_np",
    "__cxa_thread_atexit_impl",
    "statx",
    "copy_file_range",
    "getrandom",
    "gettid",
];

/// Asks the C compiler driver where it keeps `name`; `None` when it does not
/// know (it then echoes the bare name back).
fn archive(cc: &str, name: &str) -> Option<PathBuf> {
    let out = Command::new(cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}

fn script(dir: &Path, name: &str, inputs: &[&Path]) -> std::io::Result<()> {
    let list: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(dir.join(name), format!("GROUP ( {} )\n", list.join(" ")))
}

/// Writes the linker scripts; `None` when something needed is missing.
fn static_libs() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let libc = archive(&cc, "libc.a")?;
    let libm = archive(&cc, "libm.a")?;
    let gcc = archive(&cc, "libgcc.a")?;
    let gcc_eh = archive(&cc, "libgcc_eh.a")?;
    let dir = PathBuf::from(std::env::var_os("OUT_DIR")?).join("static-libs");
    std::fs::create_dir_all(&dir).ok()?;
    script(&dir, "libc.so", &[&libc, &gcc_eh, &gcc]).ok()?;
    script(&dir, "libm.so", &[&libm]).ok()?;
    script(&dir, "libgcc_s.so", &[&gcc_eh, &gcc]).ok()?;
    Some(dir)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BERTH_SHIM_DYNAMIC");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let want_static = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("BERTH_SHIM_DYNAMIC") != "1";
    if want_static {
        if var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
        {
            // rustc links statically already; only drop PIE.
            println!("cargo:rustc-link-arg-bins=-no-pie");
            return;
        }
        match static_libs() {
            Some(dir) => {
                println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
                println!("cargo:rustc-link-arg-bins=-static");
                println!("cargo:rustc-link-arg-bins=-no-pie");
                for sym in WEAK_LIBC {
                    println!("cargo:rustc-link-arg-bins=-Wl,--undefined={sym}");
                }
                return;
            }
            None => println!(
                "cargo:warning=berth-shim: static glibc archives not found (libc6-dev), linking dynamically"
            ),
        }
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
