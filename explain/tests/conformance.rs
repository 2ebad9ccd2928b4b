//! Every conformance scenario explains without error, as text and as a page; a few
//! hand-picked ones show the right annotations; an uncatchable error points at its
//! instruction and at the peer whose data disagreed.

use std::path::{Path, PathBuf};

use braid_explain::{Cause, Life, StepInput, render_html, render_text};
use braid_sim::{KeepInputs, Scenario, scenario_files};

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn load(name: &str) -> Scenario {
    let path = conformance().join("scenarios").join(format!("{name}.json"));
    Scenario::load(&path).expect("the scenario loads")
}

fn explain(name: &str) -> (Life, String, String) {
    let life = Life::of_scenario(&load(name)).expect("the scenario runs");
    let ast = braid_grammar::parse(&life.script).expect("the script parses");
    let text = render_text(&life, &ast, life.steps.len());
    let html = render_html(&life, &ast);
    (life, text, html)
}

/// The annotation of the script line that starts with `code` (after indentation).
fn note<'t>(text: &'t str, code: &str) -> &'t str {
    let line = text
        .lines()
        .find(|l| {
            l.split_once("  # ").is_some_and(|(c, _)| {
                c.trim_start_matches(|ch: char| {
                    ch.is_ascii_digit() || ch == ':' || ch == ' ' || ch == '*'
                })
                .starts_with(code)
            })
        })
        .unwrap_or_else(|| panic!("no line `{code}` in\n{text}"));
    line.split_once("  # ").map_or("", |(_, n)| n)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn every_scenario_explains() {
    let dirs = [conformance().join("scenarios"), conformance().join("real")];
    let files = scenario_files(&dirs).expect("the scenario folders list");
    assert!(files.len() > 900, "only {} scenarios found", files.len());
    let mut explained = 0;
    for file in &files {
        let scenario = Scenario::load(file).expect("every scenario loads");
        let life =
            Life::of_scenario(&scenario).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // The inspected invoke returns what `invoke` returned in the simulator, byte
        // for byte (checked on the reference's own scenarios; the real ones are big).
        if file.starts_with(&dirs[0]) {
            let run = braid_sim::run(&scenario, KeepInputs::All).expect("it runs");
            for (record, step) in run.records.iter().zip(&life.steps) {
                assert_eq!(
                    *record.output, step.output,
                    "{} step {}",
                    scenario.name, step.number
                );
            }
        }
        let Ok(ast) = braid_grammar::parse(&life.script) else {
            // A scenario whose script does not parse: every step says so.
            assert!(
                life.steps.iter().all(|s| s.ret_code == 1),
                "{}",
                scenario.name
            );
            continue;
        };
        let text = render_text(&life, &ast, life.steps.len());
        assert!(
            text.contains(&format!("{} steps on", life.steps.len())),
            "{}",
            scenario.name
        );
        let html = render_html(&life, &ast);
        let lanes = life.lanes().len();
        assert!(
            html.contains(&format!(
                "data-lanes=\"{lanes}\" data-steps=\"{}\"",
                life.steps.len()
            )),
            "{}",
            scenario.name
        );
        assert_eq!(
            count(&html, "<g class=\"lane\""),
            lanes,
            "{}",
            scenario.name
        );
        assert_eq!(
            count(&html, "<g class=\"step"),
            life.steps.len(),
            "{}",
            scenario.name
        );
        explained += 1;
    }
    assert!(explained > 900);
}

#[test]
fn a_fold_shows_its_iterations_and_each_call_its_peer_and_value() {
    let (life, text, _) = explain("fold/lfold");
    assert_eq!(life.steps.len(), 8);
    assert!(
        note(&text, "(fold Iterable i")
            .starts_with("5 iterations: i = \"1\", \"2\", \"3\", \"4\", \"5\""),
        "{text}"
    );
    let call = note(&text, "(call \"A\" (\"\" \"\") [i] $acc)");
    assert!(
        call.contains("i = \"1\" (#1): [1] A ran (\"\" \"\"): \"1\" → stream, generation 0"),
        "{call}"
    );
    assert!(
        call.contains("i = \"5\" (#5): [5] A ran (\"\" \"\"): \"5\" → stream, generation 4"),
        "{call}"
    );
    // Step 8 received the fifth answer: only the call is new.
    assert!(text.contains("13 *       (call \"A\""), "{text}");
}

#[test]
fn a_canon_shows_its_elements() {
    let (_, text, _) = explain("canon/basic");
    assert_eq!(
        note(&text, "(canon \"A\" $stream #canon_stream)"),
        "[6] #canon_stream = [\"1\",\"2\",\"3\",\"4\",\"5\"] (5 elements, on A)"
    );
}

#[test]
fn xor_branches_and_errors_show_their_codes() {
    let (_, text, _) = explain("errors/rebubble_from_xor_right_branch");
    assert_eq!(
        note(&text, "(xor"),
        "left failed (error 10001) → right ran, completed"
    );
    assert_eq!(
        note(&text, "(null))"),
        "not reached: the values did not match"
    );
    assert!(
        text.contains("error 10001 at 5:17 `match 1 2` on peer_id: compared values do not match")
    );
}

#[test]
fn the_first_step_shows_what_waits_for_other_peers() {
    let life = Life::of_scenario(&load("call/merged_two_peers")).expect("it runs");
    let ast = braid_grammar::parse(&life.script).expect("it parses");
    let text = render_text(&life, &ast, 1);
    assert_eq!(
        note(&text, "(call \"init_peer_id\""),
        "[0] waits for the result of call request #1 on init_peer_id"
    );
    assert_eq!(
        note(&text, "(call \"other_peer_id\""),
        "not reached: the first part of its seq has not completed"
    );
    let text = render_text(&life, &ast, 2);
    assert_eq!(
        note(&text, "(call \"other_peer_id\""),
        "[1] sent by init_peer_id to other_peer_id; waits for that peer"
    );
    // Step 3: other_peer_id learns init_peer_id's result and asks its host for its own.
    let step3 = render_text(&life, &ast, 3);
    assert!(step3.contains("2:5 +   (call \"init_peer_id\""), "{step3}");
    assert!(step3.contains("3:5 *   (call \"other_peer_id\""), "{step3}");
    assert!(
        text.contains("#3   other_peer_id    data from init_peer_id (#2)"),
        "{text}"
    );
}

#[test]
fn an_uncatchable_error_shows_its_instruction_and_code() {
    let (life, text, html) = explain("negative/iterable_shadowing");
    let failed = life
        .steps
        .iter()
        .find(|s| s.ret_code >= 20000)
        .expect("a step fails");
    assert!(text.contains("UNCATCHABLE error"), "{text}");
    assert!(html.contains("class=\"step failed\""));
    assert!(failed.ret_code >= 20000);
}

/// Two runs of one particle where A's service answered differently: B stored the data
/// of the second, then receives A's data of the first. The merge fails on the call both
/// recorded; the explanation names the call's place and A.
#[test]
fn a_trace_conflict_names_the_instruction_and_the_disagreeing_peer() {
    let scenario = |answer: &str| -> Scenario {
        let text = format!(
            r#"{{"name": "conflict", "description": "", "air": "(seq\n (call \"A\" (\"s\" \"f\") [] x)\n (call \"B\" (\"s\" \"g\") [x]))",
            "particle": {{"id": "p", "init_peer": "A", "timestamp": 1, "ttl": 1000}},
            "peers": ["A", "B"],
            "services": {{"rules": [{{"service": "s", "function": "f", "result": {{"ok": "{answer}"}}}}], "default": {{"ok": null}}}}}}"#
        );
        serde_json::from_str(&text).expect("the scenario parses")
    };
    let first = braid_sim::run(&scenario("one"), KeepInputs::All).expect("it runs");
    let second = braid_sim::run(&scenario("two"), KeepInputs::All).expect("it runs");
    let input = |r: &braid_sim::StepRecord| StepInput {
        script: r.script.to_string(),
        prev_data: r.prev_data.to_vec(),
        data: r.current_data.to_vec(),
        params: r.params.clone(),
        call_results: r.call_results.clone(),
    };
    let a_steps: Vec<StepInput> = first
        .records
        .iter()
        .filter(|r| r.peer == "A")
        .map(input)
        .collect();
    let b_stored = second.records.last().expect("B ran").output.to_vec();
    let arrived = first
        .records
        .iter()
        .rfind(|r| r.peer == "A")
        .expect("A ran")
        .output
        .to_vec();
    let mut b = input(first.records.iter().find(|r| r.peer == "B").expect("B ran"));
    b.prev_data = b_stored;
    b.data = arrived;
    // With checking, the two data's disagreeing results of A are refused before the
    // merge (9, inconsistent multisets, as the reference); without, the merge finds
    // the conflict.
    b.params.integrity.check = false;
    let life = Life::of_records(vec![a_steps, vec![b]]).expect("one particle");
    let last = life.steps.last().expect("steps");
    assert_eq!(last.peer, "B");
    assert_eq!(
        last.cause,
        Cause::Data {
            from: "A".into(),
            step: Some(2)
        }
    );
    assert_eq!(last.ret_code, 20000, "{}", last.error_message);
    let ast = braid_grammar::parse(&life.script).expect("it parses");
    let text = render_text(&life, &ast, life.steps.len());
    assert!(
        text.contains("UNCATCHABLE error 20000 at 2:2 `call \"A\" (\"s\" \"f\") [] x` on B:"),
        "{text}"
    );
    assert!(
        text.contains("; the data from A (step 2) disagrees with what B had"),
        "{text}"
    );
}
