//! Replays every fuzz finding in `fixtures/regressions/`: a case is a directory holding
//! `<target>.input`, the raw input of the fuzz target that crashed, and a README.md
//! saying what went wrong and what fixed it.

use std::path::Path;

#[test]
fn every_regression_input_passes_its_oracle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/regressions");
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/regressions exists")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for case in entries {
        assert!(
            case.join("README.md").is_file(),
            "{} has no README.md",
            case.display()
        );
        for file in std::fs::read_dir(&case).expect("a readable case") {
            let path = file.expect("a readable entry").path();
            if path.extension().is_none_or(|e| e != "input") {
                continue;
            }
            let target = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a file name");
            let input = std::fs::read(&path).expect("a readable input");
            assert!(
                braid_fuzz::replay(target, &input).is_some(),
                "{}: no fuzz target `{target}`; name inputs <target>.input, targets: {:?}",
                path.display(),
                braid_fuzz::TARGETS
            );
            cases += 1;
        }
    }
    assert!(cases > 0, "no regression inputs in {}", dir.display());
}
