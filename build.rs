//! Compiles every `.proto` under `proto/` once, without protoc:
//! protox parses them into a FileDescriptorSet, tonic-prost-build generates
//! messages, servers and clients from it. The encoded set (imports
//! included) is written to `$OUT_DIR/berth_api_descriptor.bin` for
//! `berth_api::FILE_DESCRIPTOR_SET`.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "proto";
const DESCRIPTOR_FILE: &str = "berth_api_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let mut protos = Vec::new();
    collect_protos(Path::new(PROTO_ROOT), &mut protos)?;
    protos.sort();
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(&protos)?;
    // The set includes the google.protobuf imports: prost-build needs them
    // to analyse fields and maps them to prost_types instead of generating.
    let full_set = compiler.file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    fs::write(out_dir.join(DESCRIPTOR_FILE), full_set.encode_to_vec())?;

    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // No `connect(url)` constructors: berth dials unix sockets, and the
        // shim's Connect RPC would collide with it. Use `XClient::new(channel)`.
        .build_transport(false)
        .generate_default_stubs(true)
        .compile_fds_with_config(full_set, config)?;
    Ok(())
}

/// Appends every `*.proto` below `dir` to `out`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
