//! Laws of the parser and printer over generated valid scripts.

use braid_grammar::arbitrary::arb_script;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A generated valid script parses; its canonical form parses back to the same tree
    /// and is a fixed point of formatting.
    #[test]
    fn printed_air_parses_back(script in arb_script(5)) {
        let text = script.text();
        let ast = braid_grammar::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render(&text, "generated"))))?;
        let printed = ast.to_string();
        let again = braid_grammar::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{}\n{printed}", e.render(&printed, "printed"))))?;
        prop_assert!(ast.eq_ignoring_positions(&again), "trees differ:\n{text}\n---\n{printed}");
        prop_assert_eq!(again.to_string(), printed);
    }

    /// Any text at all gives a tree or an error, never a panic; a truncated valid
    /// script is an error or (rarely) still a script.
    #[test]
    fn truncated_scripts_never_panic(script in arb_script(3), cut in any::<prop::sample::Index>()) {
        let text = script.text();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let _ = braid_grammar::parse(&text[..at]);
    }

    /// Random bytes near AIR's alphabet never panic the parser.
    #[test]
    fn token_soup_never_panics(src in "[()\\[\\]\" ;\\n$%#:.!a-c0-9_-]{0,64}") {
        if let Err(err) = braid_grammar::parse(&src) {
            let _ = err.render(&src, "soup");
        }
    }
}
