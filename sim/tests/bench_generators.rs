//! Every generator of ../shared/bench runs: each `air_generator` script parses, each
//! `generate` template expands to JSON.

use std::path::{Path, PathBuf};

use braid_sim::generate::{generate_value, scenario_air};
use serde_json::Value;

fn bench_scenarios() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the bench scenarios, found {}",
        files.len()
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("scenario is readable");
            let json = serde_json::from_str(&text).expect("scenario is JSON");
            (path, json)
        })
        .collect()
}

#[test]
fn generated_scripts_parse() {
    let mut generated = 0;
    for (path, scenario) in bench_scenarios() {
        if scenario.get("air_generator").is_none() {
            continue;
        }
        let script = scenario_air(&scenario).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = braid_grammar::parse(&script) {
            panic!("{}: generated script does not parse: {e}", path.display());
        }
        generated += 1;
    }
    assert!(
        generated >= 4,
        "expected the generated bench scripts, found {generated}"
    );
}

/// Every `{"generate": …}` object under `v`.
fn generate_replies<'a>(v: &'a Value, found: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            if let Some(g) = map.get("generate") {
                found.push(g);
            }
            map.values().for_each(|x| generate_replies(x, found));
        }
        Value::Array(items) => items.iter().for_each(|x| generate_replies(x, found)),
        _ => {}
    }
}

#[test]
fn generated_values_are_json() {
    let mut expanded = 0;
    for (path, scenario) in bench_scenarios() {
        let mut found = Vec::new();
        generate_replies(&scenario, &mut found);
        for g in found {
            let seed = g["seed"].as_u64().expect("seed");
            let text = generate_value(seed, &g["value"])
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // the 100 MB values are only checked for their size
            if text.len() < 1 << 20 {
                let again: Value = serde_json::from_str(&text).expect("generated JSON parses");
                assert_eq!(
                    serde_json::to_string(&again).unwrap(),
                    text,
                    "{}",
                    path.display()
                );
            } else {
                assert!(text.len() > 100 << 20, "{}", path.display());
            }
            expanded += 1;
        }
    }
    assert!(
        expanded >= 20,
        "expected the generated bench values, found {expanded}"
    );
}
