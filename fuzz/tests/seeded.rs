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
