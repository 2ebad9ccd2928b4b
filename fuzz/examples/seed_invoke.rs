//! Writes seeds for the `invoke_bytes` target: valid data of every target script, as
//! current data and as previous data. `cargo run -p braid-fuzz --example seed_invoke`
//! (from the repository root) fills `fuzz/corpus/invoke_bytes`.

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/invoke_bytes");
    std::fs::create_dir_all(&dir)?;
    for (n, (script, data)) in braid_fuzz::valid_data().into_iter().enumerate() {
        for check in [false, true] {
            let current = braid_fuzz::join_invoke_input(script, check, &[], &data);
            std::fs::write(dir.join(format!("seed-{n}-{check}-current")), current)?;
            let prev = braid_fuzz::join_invoke_input(script, check, &data, &[]);
            std::fs::write(dir.join(format!("seed-{n}-{check}-prev")), prev)?;
        }
    }
    println!("seeds written to {}", dir.display());
    Ok(())
}
