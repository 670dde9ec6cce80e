//! Generates the Chronik protobuf types from `proto/chronik.proto` with prost. The schema is
//! compiled by protox (pure Rust), so no `protoc` is needed on the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/chronik.proto");
    let descriptors = protox::compile(["proto/chronik.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
