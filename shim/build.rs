//! Link flags for the berth-shim binary.
//!
//! `-z pack-relative-relocs` (DT_RELR, glibc >= 2.36, binutils >= 2.38)
//! shrinks the PIE's dynamic relocation table from ~500 KiB of RELA entries,
//! which the dynamic loader reads (and so maps into every shim's RSS) at
//! each start, to a few KiB.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
