//! Runs the grammar cases of `fixtures/grammar/` (one `.air` script per case).
//!
//! Every script in `accept/` must parse, and its canonical printing must parse back to an
//! equal tree. Every script in `reject/` must fail with a diagnostic containing the
//! fragment on its `; expect:` line, and its rendered report must match the snapshot
//! stored next to it (`reject/<case>.snap`). A case starts with `; <what it checks>`;
//! a reject case has `; expect: <fragment of the message>` as its second line. The cases
//! were checked against the reference with `fixtures/grammar/verify-with-oracle.sh`.

use std::fs;
use std::path::{Path, PathBuf};

/// One script of `fixtures/grammar/<folder>/`.
struct Case {
    name: String,
    source: String,
}

impl Case {
    /// The first line, `; <what it checks>`.
    fn description(&self) -> Result<&str, String> {
        let line = self.source.lines().next().unwrap_or("");
        match line.strip_prefix("; ").map(str::trim) {
            Some(text) if !text.is_empty() && !text.starts_with("expect:") => Ok(text),
            _ => Err(format!(
                "{}: the first line must be `; <what the case checks>`",
                self.name
            )),
        }
    }

    /// The second line's fragment, `; expect: <fragment>`, if there is one.
    fn expectation(&self) -> Option<&str> {
        let line = self.source.lines().nth(1)?;
        let fragment = line.strip_prefix("; expect:")?.trim();
        Some(fragment).filter(|f| !f.is_empty())
    }
}

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/grammar")
        .join(name)
}

/// The `.air` cases of one folder, sorted by name.
fn cases(name: &str) -> Vec<Case> {
    let dir = folder(name);
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut cases: Vec<Case> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "air"))
        .map(|path| Case {
            name: format!(
                "{name}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            source: fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    cases
}

/// Panics with every failure at once, so one run shows all broken cases.
fn report_failures(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} {what}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn accept_cases_parse_and_print_back() {
    let mut failures = Vec::new();
    for case in cases("accept") {
        if let Err(e) = case.description() {
            failures.push(e);
        }
        if case.expectation().is_some() {
            failures.push(format!(
                "{}: an accept case has an `; expect:` line",
                case.name
            ));
        }
        let ast = match braid_grammar::parse(&case.source) {
            Ok(ast) => ast,
            Err(e) => {
                failures.push(format!(
                    "{}: rejected:\n{}",
                    case.name,
                    e.render(&case.source, &case.name)
                ));
                continue;
            }
        };
        let printed = ast.to_string();
        match braid_grammar::parse(&printed) {
            Ok(again) if again.eq_ignoring_positions(&ast) => {}
            Ok(_) => failures.push(format!(
                "{}: the printed script parses to a different tree:\n{printed}",
                case.name
            )),
            Err(e) => failures.push(format!(
                "{}: the printed script does not parse:\n{printed}\n{}",
                case.name,
                e.render(&printed, "printed")
            )),
        }
    }
    report_failures("accept cases failed", failures);
}

#[test]
fn reject_cases_fail_with_the_expected_message() {
    let mut failures = Vec::new();
    for case in cases("reject") {
        if let Err(e) = case.description() {
            failures.push(e);
        }
        let Some(fragment) = case.expectation() else {
            failures.push(format!(
                "{}: the second line must be `; expect: <fragment of the error message>`",
                case.name
            ));
            continue;
        };
        match braid_grammar::parse(&case.source) {
            Ok(_) => failures.push(format!(
                "{}: accepted, but the reference rejects it",
                case.name
            )),
            Err(e) => {
                if !e
                    .diagnostics()
                    .iter()
                    .any(|d| d.to_string().contains(fragment))
                {
                    failures.push(format!(
                        "{}: no diagnostic contains {fragment:?}; got:\n{}",
                        case.name,
                        e.render(&case.source, &case.name)
                    ));
                }
            }
        }
    }
    report_failures("reject cases failed", failures);
}

/// The script, then braid's report for it.
fn rendered_report(name: &str, source: &str) -> String {
    let report = match braid_grammar::parse(source) {
        Err(e) => e.render(source, name),
        Ok(_) => "FIXME: braid accepts this script, the reference rejects it\n".to_owned(),
    };
    format!("{}\n---\n{report}", source.trim_end())
}

#[test]
fn reject_reports_match_snapshots() {
    insta::glob!("../../fixtures/grammar/reject", "*.air", |path| {
        let source = fs::read_to_string(path).expect("a readable case");
        let case = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let description = source
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("; ")
            .to_owned();
        let mut settings = insta::Settings::clone_current();
        settings.remove_snapshot_suffix();
        settings.set_snapshot_path("../../fixtures/grammar/reject");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(description);
        settings.bind(|| {
            insta::assert_snapshot!(
                case.clone(),
                rendered_report(&format!("reject/{case}.air"), &source)
            );
        });
    });
}

#[test]
fn every_snapshot_belongs_to_a_reject_case() {
    let mut failures = Vec::new();
    for name in ["accept", "reject"] {
        let dir = folder(name);
        for entry in fs::read_dir(&dir).expect("a readable fixture folder") {
            let path = entry.expect("a readable directory entry").path();
            if path.extension().is_none_or(|ext| ext != "snap") {
                continue;
            }
            if name == "accept" || !path.with_extension("air").exists() {
                failures.push(format!(
                    "{}: a snapshot without a reject case",
                    path.display()
                ));
            }
        }
    }
    report_failures("stray snapshots", failures);
}
