//! The interpreter recurses as deep as a script nests: give the Wasm module a 64 MiB
//! stack (the linker's default is 1 MiB). Only this module: other Wasm crates of the
//! workspace (services) keep the default.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=67108864");
    }
}
