//! Any text: the parser returns a tree or an error, never panics, and a tree it
//! returns prints as canonical AIR that parses back to the same tree.
#![no_main]

libfuzzer_sys::fuzz_target!(|src: &str| {
    if let Ok(ast) = braid_grammar::parse(src) {
        let printed = ast.to_string();
        let again = braid_grammar::parse(&printed).expect("canonical AIR parses");
        assert!(
            ast.eq_ignoring_positions(&again),
            "print/parse round trip changed the tree"
        );
        assert_eq!(
            again.to_string(),
            printed,
            "canonical form is not a fixed point"
        );
    }
});
