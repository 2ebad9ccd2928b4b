//! Every script of ../shared/corpus/air parses exactly as the reference's parser did
//! (MANIFEST.json records its verdict and message per script), and formatting is
//! idempotent on each.

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

#[test]
fn corpus_parses_as_the_reference_does_and_fmt_is_idempotent() {
    let dir = corpus_dir();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("MANIFEST.json")).expect("corpus manifest is readable"),
    )
    .expect("manifest is JSON");
    let scripts = manifest["scripts"]
        .as_array()
        .expect("manifest lists scripts");
    assert!(
        scripts.len() >= 700,
        "expected the whole corpus, found {} scripts",
        scripts.len()
    );
    let (mut accepted, mut rejected) = (0, 0);
    for entry in scripts {
        let file = entry["file"].as_str().expect("file name");
        let source = std::fs::read_to_string(dir.join(file)).expect("script is readable");
        let reference_ok = entry["air_parser_0_12_0"] == "ok";
        match braid_grammar::parse(&source) {
            Ok(ast) => {
                assert!(
                    reference_ok,
                    "{file}: braid accepts what the reference rejects"
                );
                accepted += 1;
                let once = ast.to_string();
                let reparsed = braid_grammar::parse(&once)
                    .unwrap_or_else(|e| panic!("{file}: canonical form does not parse: {e}"));
                assert!(
                    ast.eq_ignoring_positions(&reparsed),
                    "{file}: fmt changed the tree"
                );
                assert_eq!(reparsed.to_string(), once, "{file}: fmt is not idempotent");
            }
            Err(err) => {
                assert!(
                    !reference_ok,
                    "{file}: braid rejects what the reference accepts: {err}"
                );
                let reference_message = entry["air_parser_error"].as_str().unwrap_or_default();
                assert!(
                    err.diagnostics()
                        .iter()
                        .any(|d| reference_message.contains(&d.kind.to_string())),
                    "{file}: reference says {reference_message:?}, braid says {err}"
                );
                rejected += 1;
            }
        }
    }
    // The reference rejects five compiled scripts (undefined variables); so does braid.
    assert_eq!((accepted, rejected), (736, 5));
}
