//! Seeds every fuzz corpus (`fuzz/corpus/<target>`, git-ignored) with real inputs:
//! the scripts of the AIR corpus, every step of the conformance scenarios as the
//! scenario driver runs them, particles carrying them, and generated programs.
//!
//! `cargo run -p braid-fuzz --example seed_corpora [SHARED]` from the repository root,
//! where SHARED is the shared reference folder (default: `../shared`). Files are named
//! by their origin, so re-seeding replaces them and keeps what libFuzzer added.

use std::path::{Path, PathBuf};

use braid_fuzz::Step;
use braid_sim::{KeepInputs, Scenario};
use braid_wire::{NodeKey, Particle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("../../shared"), PathBuf::from);
    let corpus = root.join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
    };
    let key = NodeKey::from_secret([7; 32]);
    // The JS client's frame, as captured (`fixtures/interop/`).
    write(
        "particle_frame",
        "js-client-0.9.0",
        include_bytes!("../../fixtures/interop/js-client-0.9.0-particle-frame.bin"),
    )?;
    let particle_of = |script: &str, data: &[u8]| {
        let mut p = Particle::new_signed(
            &key,
            "seed".into(),
            braid_fuzz::particle::NOW,
            60_000,
            script.into(),
        );
        p.data = data.to_vec();
        p.encode()
    };

    // The AIR corpus: parse, and invoke_step on the init peer with no data.
    let mut scripts = 0;
    for repo in sorted_entries(&shared.join("corpus/air"))? {
        if !repo.is_dir() {
            continue;
        }
        for file in sorted_entries(&repo)? {
            let script = std::fs::read_to_string(&file)?;
            let name = format!("{}__{}", file_name(&repo), file_name(&file));
            write("parse", &name, script.as_bytes())?;
            let step = Step {
                particle_id: "seed".into(),
                timestamp: braid_fuzz::particle::NOW,
                ttl: 60_000,
                init_peer: "A".into(),
                peer: "A".into(),
                script: script.clone(),
                ..Step::default()
            };
            write("invoke_step", &name, &step.encode())?;
            if scripts % 8 == 0 {
                write("particle", &name, &particle_of(&script, &[]))?;
                let frame = braid_wire::frame_of_encoded(&particle_of(&script, &[]));
                write("particle_frame", &name, &frame)?;
            }
            scripts += 1;
        }
    }

    // Conformance scenarios: the first steps of each, as the driver ran them.
    let (mut scenarios, mut steps) = (0, 0);
    let files = braid_sim::scenario_files(&[shared.join("conformance/scenarios")])?;
    for file in files {
        let Ok(scenario) = Scenario::load(&file) else {
            continue;
        };
        let Ok(run) = braid_sim::run(&scenario, KeepInputs::All) else {
            continue;
        };
        scenarios += 1;
        let stem = file
            .strip_prefix(&shared)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('/', "_");
        for (n, record) in run.records.iter().enumerate().take(12) {
            let step = Step::of_record(record, &scenario.peers);
            let name = format!("{stem}-{n}");
            write("invoke_step", &name, &step.encode())?;
            steps += 1;
            if record.current_data.is_empty() {
                continue;
            }
            let joined = braid_fuzz::join_invoke_input(0, n % 2 == 0, &[], &record.current_data);
            write("data", &name, &joined)?;
            if n % 3 == 1 {
                write(
                    "particle",
                    &name,
                    &particle_of(&record.script, &record.output),
                )?;
            }
        }
    }

    // The fixed scripts of invoke_bytes and call_results, and the data they make.
    for (n, (script, data)) in braid_fuzz::valid_data().into_iter().enumerate() {
        for check in [false, true] {
            let current = braid_fuzz::join_invoke_input(script, check, &[], &data);
            let prev = braid_fuzz::join_invoke_input(script, check, &data, &[]);
            write(
                "invoke_bytes",
                &format!("seed-{n}-{check}-current"),
                &current,
            )?;
            write("invoke_bytes", &format!("seed-{n}-{check}-prev"), &prev)?;
            write("data", &format!("seed-{n}-{check}-prev"), &prev)?;
        }
    }

    // Generated programs.
    for seed in 0..64 {
        let bytes = braid_fuzz::generated::seed_input(seed);
        write("generated", &format!("seed-{seed}"), &bytes)?;
    }

    println!(
        "seeded {}: {scripts} corpus scripts, {steps} steps of {scenarios} scenarios, 64 generated programs",
        corpus.display()
    );
    Ok(())
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
