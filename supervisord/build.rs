//! Link flags for the berthd binary.
//!
//! `-z pack-relative-relocs` (DT_RELR, glibc >= 2.36, binutils >= 2.38) shrinks the
//! PIE's dynamic relocation table, which the dynamic loader reads (and so keeps in
//! berthd's RSS) at start, from about a megabyte of RELA entries to a few KiB.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
