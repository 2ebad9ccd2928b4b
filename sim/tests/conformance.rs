//! Every conformance scenario of `../shared/conformance` (`scenarios/` and `real/`), run
//! with braid's interpreter and compared with the reference's transcript.
//!
//! The scenarios braid does not pass yet are listed in
//! `fixtures/conformance/known-gaps.txt` and `known-gaps-real.txt` (one name a line, `#`
//! starts a comment). The test fails when a scenario that is not listed fails, and when
//! a listed one passes or no longer exists, so the lists only shrink. To rewrite both
//! lists from the current results (keeping the comments of names still listed):
//!
//! ```sh
//! BRAID_UPDATE_KNOWN_GAPS=1 cargo test -p braid-sim --test conformance
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use braid_sim::{Scenario, check, scenario_files};

#[test]
fn scenarios() {
    suite("scenarios", "known-gaps.txt");
}

#[test]
fn real() {
    suite("real", "known-gaps-real.txt");
}

/// braid's own scenarios (`fixtures/scenarios`, expected transcripts recorded with the
/// reference): regressions found on the way, with no known gaps allowed.
#[test]
fn own_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let files = scenario_files(std::slice::from_ref(&dir))
        .unwrap_or_else(|e| panic!("cannot list the scenarios: {e}"));
    assert!(
        files.len() >= 7,
        "expected braid's own scenarios under {}",
        dir.display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let (name, verdict) = run_one(&dir, file);
            verdict.map(|reasons| format!("{name}: {}", reasons.join("; ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "own scenarios fail:\n{}",
        failures.join("\n")
    );
}

/// Differences shown per newly failing scenario, and newly failing scenarios shown.
const SHOWN_DIFFERENCES: usize = 3;
const SHOWN_FAILURES: usize = 40;

fn suite(folder: &str, gaps_file: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("../../shared/conformance").join(folder);
    let gaps_path = manifest.join("../fixtures/conformance").join(gaps_file);

    let files = scenario_files(std::slice::from_ref(&dir))
        .unwrap_or_else(|e| panic!("cannot list the scenarios: {e}"));
    assert!(!files.is_empty(), "no scenario under {}", dir.display());
    let mut passed = BTreeSet::new();
    let mut failed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        match run_one(&dir, file) {
            (name, None) => {
                passed.insert(name);
            }
            (name, Some(reasons)) => {
                failed.insert(name, reasons);
            }
        }
    }

    let known = KnownGaps::read(&gaps_path);
    if std::env::var_os("BRAID_UPDATE_KNOWN_GAPS").is_some_and(|v| !v.is_empty() && v != "0") {
        known.write(&gaps_path, folder, failed.keys());
        eprintln!("{folder}: wrote {} known gaps to {gaps_file}", failed.len());
        return;
    }

    let newly_failing: Vec<&String> = failed.keys().filter(|n| !known.contains(n)).collect();
    let newly_passing: Vec<&String> = passed.iter().filter(|n| known.contains(n)).collect();
    let stale: Vec<&String> = known
        .names()
        .filter(|n| !passed.contains(*n) && !failed.contains_key(*n))
        .collect();
    eprintln!(
        "conformance {folder}: {} of {} scenarios pass; {} known gaps",
        passed.len(),
        files.len(),
        failed.len()
    );
    if newly_failing.is_empty() && newly_passing.is_empty() && stale.is_empty() {
        return;
    }

    let mut report = format!("conformance {folder} differs from {gaps_file}:\n");
    if !newly_failing.is_empty() {
        let _ = writeln!(report, "\n{} scenarios newly FAIL:", newly_failing.len());
        for name in newly_failing.iter().take(SHOWN_FAILURES) {
            let _ = writeln!(report, "  FAIL {name}");
            for reason in &failed[*name] {
                let _ = writeln!(report, "    {reason}");
            }
        }
        if newly_failing.len() > SHOWN_FAILURES {
            let _ = writeln!(
                report,
                "  ... and {} more",
                newly_failing.len() - SHOWN_FAILURES
            );
        }
    }
    if !newly_passing.is_empty() {
        let _ = writeln!(
            report,
            "\n{} known gaps now PASS (remove them from {gaps_file}):",
            newly_passing.len()
        );
        for name in &newly_passing {
            let _ = writeln!(report, "  {name}");
        }
    }
    if !stale.is_empty() {
        let _ = writeln!(
            report,
            "\n{} known gaps name no scenario (remove them):",
            stale.len()
        );
        for name in &stale {
            let _ = writeln!(report, "  {name}");
        }
    }
    let _ = writeln!(
        report,
        "\nTo accept the current results: BRAID_UPDATE_KNOWN_GAPS=1 cargo test -p braid-sim --test conformance"
    );
    panic!("{report}");
}

/// The scenario's name and, if it fails, why.
fn run_one(dir: &Path, file: &Path) -> (String, Option<Vec<String>>) {
    let fallback = || {
        let relative = file.strip_prefix(dir).unwrap_or(file).with_extension("");
        relative.to_string_lossy().replace('\\', "/")
    };
    let scenario = match Scenario::load(file) {
        Ok(scenario) => scenario,
        Err(e) => return (fallback(), Some(vec![e.to_string()])),
    };
    let verdict = match check(&scenario, SHOWN_DIFFERENCES) {
        Ok(differences) if differences.is_empty() => None,
        Ok(differences) => Some(differences.iter().map(ToString::to_string).collect()),
        Err(e) => Some(vec![e.to_string()]),
    };
    (scenario.name, verdict)
}

/// A known-gaps file: names, each with its line (to keep its comment on rewrite).
struct KnownGaps {
    lines: BTreeMap<String, String>,
}

impl KnownGaps {
    fn read(path: &PathBuf) -> KnownGaps {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines = text
            .lines()
            .filter_map(|line| {
                let name = line.split('#').next().unwrap_or("").trim();
                (!name.is_empty()).then(|| (name.to_owned(), line.trim().to_owned()))
            })
            .collect();
        KnownGaps { lines }
    }

    fn contains(&self, name: &str) -> bool {
        self.lines.contains_key(name)
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.lines.keys()
    }

    fn write<'a>(&self, path: &PathBuf, folder: &str, failing: impl Iterator<Item = &'a String>) {
        let mut text = format!(
            "# Conformance scenarios of ../shared/conformance/{folder} that braid does not pass yet.\n\
             # sim/tests/conformance.rs fails when a scenario not listed here fails, or a listed one\n\
             # passes: the list only shrinks. One name a line; `#` starts a comment. Rewrite it with\n\
             # BRAID_UPDATE_KNOWN_GAPS=1 cargo test -p braid-sim --test conformance\n"
        );
        for name in failing {
            let line = self.lines.get(name).map_or(name.as_str(), String::as_str);
            text.push_str(line);
            text.push('\n');
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the fixtures folder can be created");
        }
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
