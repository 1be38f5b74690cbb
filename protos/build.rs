//! Compiles every `.proto` under `aftersales/` with the pure-Rust `protox` compiler, so a
//! build needs no system `protoc`, and writes the file descriptor set next to the generated
//! code so servers can answer gRPC reflection.

use std::{env, fs, io, path::Path, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let mut protos = Vec::new();
    collect_protos(&root.join("aftersales"), &mut protos)?;
    protos.sort();

    // tonic-prost-build 0.14 no longer prints rerun-if-changed itself.
    println!("cargo:rerun-if-changed=aftersales");
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let descriptors = protox::compile(&protos, [&root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("aftersales_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

fn collect_protos(dir: &Path, into: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, into)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            into.push(path);
        }
    }
    Ok(())
}
