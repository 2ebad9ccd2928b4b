//! The fuzz oracles over seeded inputs: mutations of valid data and call results, so
//! the targets' logic is exercised on every `cargo test`.

/// splitmix64: a small deterministic generator for the seeded mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    match rng.below(4) {
        0 if !d.is_empty() => {
            let i = rng.below(d.len());
            d[i] ^= 1 << rng.below(8);
        }
        1 => d.truncate(rng.below(d.len() + 1)),
        2 if !d.is_empty() => {
            let i = rng.below(d.len());
            d[i] = rng.next() as u8;
        }
        _ => {
            let i = rng.below(d.len() + 1);
            d.insert(i, rng.next() as u8);
        }
    }
    d
}

#[test]
fn invoke_bytes_on_mutated_valid_data() {
    let mut rng = Rng(7);
    let seeds = braid_fuzz::valid_data();
    for round in 0..300 {
        let (script, data) = &seeds[round % seeds.len()];
        let bad = mutate(&mut rng, data);
        let check = round % 2 == 0;
        braid_fuzz::invoke_bytes(*script, &[], &bad, check);
        braid_fuzz::invoke_bytes(*script, &bad, data, check);
    }
}

#[test]
fn call_results_of_every_kind() {
    let mut rng = Rng(11);
    let texts = [
        "1",
        "\"s\"",
        "{\"a\":[1]}",
        "not json",
        "",
        "[[[[[",
        "null",
        "1e999",
        "-0",
    ];
    for round in 0..200 {
        let answers: Vec<(u32, i32, String)> = (0..rng.below(4))
            .map(|_| {
                let code = [0, 0, 0, 1, -1, i32::MAX][rng.below(6)];
                (
                    rng.next() as u32 % 8,
                    code,
                    texts[rng.below(texts.len())].to_owned(),
                )
            })
            .collect();
        braid_fuzz::call_results(round, &answers);
    }
}

#[test]
fn parse_on_corpus_mutations() {
    let mut rng = Rng(3);
    for script in braid_fuzz::SCRIPTS {
        for _ in 0..50 {
            let bytes = mutate(&mut rng, script.as_bytes());
            braid_fuzz::parse(&String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn the_target_scripts_parse_and_give_real_data() {
    for script in braid_fuzz::SCRIPTS {
        braid_grammar::parse(script).unwrap_or_else(|e| panic!("{script}: {e}"));
    }
    // Every other entry is A's run, which answers all of its calls.
    for (script, data) in braid_fuzz::valid_data().into_iter().step_by(2) {
        assert!(
            data.len() > 100,
            "script {script} gave almost no data ({} bytes)",
            data.len()
        );
    }
}

#[test]
fn invoke_input_layout_round_trips() {
    let joined = braid_fuzz::join_invoke_input(3, true, b"prev", b"current");
    assert_eq!(
        braid_fuzz::split_invoke_input(&joined),
        Some((3, true, &b"prev"[..], &b"current"[..]))
    );
    assert_eq!(braid_fuzz::split_invoke_input(b"abc"), None);
}

/// The steps of braid's own scenarios in `fixtures/scenarios`, as the driver ran them.
fn real_steps() -> Vec<braid_fuzz::Step> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let files = braid_sim::scenario_files(&[dir]).expect("fixtures/scenarios is readable");
    assert!(!files.is_empty(), "no scenarios in fixtures/scenarios");
    let mut steps = Vec::new();
    for file in files {
        let scenario = braid_sim::Scenario::load(&file).expect("a fixture scenario loads");
        let run = braid_sim::run(&scenario, braid_sim::KeepInputs::All).expect("it runs");
        steps.extend(
            run.records
                .iter()
                .take(8)
                .map(|r| braid_fuzz::Step::of_record(r, &scenario.peers)),
        );
    }
    steps
}

#[test]
fn step_inputs_round_trip_and_real_steps_verify() {
    let steps = real_steps();
    for step in &steps {
        assert_eq!(&braid_fuzz::Step::decode(&step.encode()), step);
    }
    // Unmutated real steps with checking on run cleanly: the seeds exercise the
    // interpreter past the integrity checks.
    for step in steps.iter().filter(|s| !s.data.is_empty()) {
        let out = braid_interpreter::invoke(
            &step.script,
            &step.prev,
            &step.data,
            &step.params(),
            &step.call_results,
        );
        assert!(
            !(1..=10).contains(&out.ret_code()),
            "a real step was refused: {}",
            out.error_message()
        );
    }
    // Any bytes decode to a step.
    assert_eq!(braid_fuzz::Step::decode(&[]), braid_fuzz::Step::default());
    let _ = braid_fuzz::Step::decode(&[1, 2, 3, 255, 255, 255, 255, 9]);
}

#[test]
fn invoke_step_on_mutated_real_steps() {
    let mut rng = Rng(13);
    let steps = real_steps();
    for round in 0..120 {
        let step = &steps[rng.below(steps.len())];
        braid_fuzz::invoke_step(step);
        let mut bytes = step.encode();
        for _ in 0..=round % 3 {
            bytes = mutate(&mut rng, &bytes);
        }
        braid_fuzz::invoke_step(&braid_fuzz::Step::decode(&bytes));
        let mut hostile = step.clone();
        match round % 3 {
            0 => hostile.data = mutate(&mut rng, &step.data),
            1 => hostile.prev = mutate(&mut rng, &step.prev),
            _ => {
                hostile.script =
                    String::from_utf8_lossy(&mutate(&mut rng, step.script.as_bytes())).into_owned()
            }
        }
        braid_fuzz::invoke_step(&hostile);
    }
}

#[test]
fn data_decoder_on_mutated_valid_data() {
    let mut rng = Rng(17);
    let seeds = braid_fuzz::valid_data();
    for (_, data) in &seeds {
        braid_fuzz::data_decoder(&[], data, true);
        braid_fuzz::data_decoder(data, &[], false);
    }
    for round in 0..300 {
        let (_, data) = &seeds[round % seeds.len()];
        let bad = mutate(&mut rng, data);
        braid_fuzz::data_decoder(&[], &bad, round % 2 == 0);
        braid_fuzz::data_decoder(&bad, data, round % 2 == 1);
    }
}

#[test]
fn generated_programs_from_seeds_and_random_bytes() {
    let mut rng = Rng(19);
    for seed in 0..6 {
        let bytes = braid_fuzz::generated::seed_input(seed);
        assert!(
            braid_fuzz::generated::scenario_of(&bytes).is_some(),
            "seed bytes make a scenario"
        );
        braid_fuzz::generated_run(&bytes);
        braid_fuzz::generated_run(&mutate(&mut rng, &bytes));
    }
    let random: Vec<u8> = (0..512).map(|_| rng.next() as u8).collect();
    braid_fuzz::generated_run(&random);
    braid_fuzz::generated_run(&[]);
}

#[test]
fn particle_intake_on_mutated_particles() {
    let key = braid_wire::NodeKey::from_secret([7; 32]);
    let mut rng = Rng(23);
    let mut particle = braid_wire::Particle::new_signed(
        &key,
        "p".into(),
        braid_fuzz::particle::NOW,
        60_000,
        braid_fuzz::SCRIPTS[1].into(),
    );
    particle.data = braid_fuzz::valid_data().swap_remove(2).1;
    let wire = particle.encode();
    assert!(
        braid_wire::check(
            &wire,
            &braid_wire::IntakeLimits::REFERENCE,
            braid_fuzz::particle::NOW,
            0
        )
        .is_ok(),
        "the seed particle is let in"
    );
    braid_fuzz::particle(&wire);
    for _ in 0..400 {
        braid_fuzz::particle(&mutate(&mut rng, &wire));
    }
}

#[test]
fn particle_frames_mutated_from_the_js_client_capture() {
    let mut rng = Rng(19);
    let capture: &[u8] =
        include_bytes!("../../fixtures/interop/js-client-0.9.0-particle-frame.bin");
    assert!(
        braid_wire::decode_particle_frame(capture, braid_wire::DEFAULT_MAX_FRAME_BYTES).is_ok(),
        "the JS client's frame decodes"
    );
    let mut particle = braid_wire::Particle::new_signed(
        &braid_wire::NodeKey::from_secret([5; 32]),
        "frame-seed".into(),
        braid_fuzz::particle::NOW,
        60_000,
        "(null)".into(),
    );
    particle.data = vec![7; 200];
    let ours = braid_wire::encode_particle_frame(&particle);
    for seed in [capture, &ours[..]] {
        braid_fuzz::particle_frame(seed);
        for _ in 0..300 {
            braid_fuzz::particle_frame(&mutate(&mut rng, seed));
        }
    }
    for bytes in [
        &[][..],
        &[0x80],
        &[0xff; 9],
        &[0xff; 10],
        &[0x00],
        &[0x02, 0x81, 0x04],
    ] {
        braid_fuzz::particle_frame(bytes);
    }
}
