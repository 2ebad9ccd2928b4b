//! Big and deep scripts: no stack overflow, no panic, linear behaviour.

use braid_grammar::{ErrorKind, InstrKind};

fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

#[test]
fn hundred_thousand_nested_seqs_parse_print_and_drop() {
    let right = nested(100_000, "(seq (null) ", "(null)", ")");
    let ast = braid_grammar::parse(&right).expect("deep right-nested script parses");
    assert_eq!(ast.len(), 200_001);
    let printed = ast.to_string();
    let again = braid_grammar::parse(&printed).expect("its canonical form parses");
    assert!(ast.eq_ignoring_positions(&again));

    let left = nested(100_000, "(seq ", "(null)", " (never))");
    let ast = braid_grammar::parse(&left).expect("deep left-nested script parses");
    assert!(matches!(ast.instr(ast.root()).kind, InstrKind::Seq(..)));
}

#[test]
fn deep_folds_and_news_validate_without_recursion() {
    let folds = nested(50_000, "(fold [] i (seq (null) ", "(next i)", "))");
    // Nested folds over one iterator name are an error, reported once per inner fold.
    let err = braid_grammar::parse(&folds).expect_err("nested folds share an iterator name");
    assert!(err.diagnostics().iter().all(|d| matches!(
        d.kind,
        ErrorKind::MultipleIterable { .. } | ErrorKind::MultipleNext { .. }
    )));

    let news = nested(100_000, "(new $s ", "(ap 1 $s)", ")");
    braid_grammar::parse(&news).expect("deeply nested new scopes parse");
}

#[test]
fn a_million_unclosed_parens_is_an_error() {
    let text = "(seq ".repeat(1_000_000);
    let err = braid_grammar::parse(&text).expect_err("nothing is closed");
    assert!(matches!(err.diagnostics()[0].kind, ErrorKind::Unclosed));
}

#[test]
fn sixteen_mebibyte_script_parses() {
    // About 16 MiB of calls in a balanced tree of seq.
    let call = r#"(call "peer_id_12345" ("service" "function") [arg_a "literal" 42 arg_b.$.field.[3]] out)"#;
    let mut calls = vec![call.to_owned(); (16 << 20) / (call.len() + 6)];
    while calls.len() > 1 {
        calls = calls
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => format!("(seq {a} {b})"),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    let script = format!(
        "(seq (seq (call \"p\" (\"s\" \"f\") [] arg_a) (call \"p\" (\"s\" \"f\") [] arg_b)) {})",
        calls[0]
    );
    assert!(script.len() >= 16 << 20, "script is {} bytes", script.len());
    let ast = braid_grammar::parse(&script).expect("16 MiB script parses");
    assert!(ast.len() > 300_000);
}

#[test]
fn errors_past_the_end_and_in_long_lines_render() {
    let long = format!("(seq {} (nul))", "(null) ".repeat(10_000));
    let err = braid_grammar::parse(&long).expect_err("`nul` is not an instruction");
    let report = err.render(&long, "long.air");
    assert!(report.contains("long.air:1:"), "{report}");
    assert!(report.lines().all(|l| l.chars().count() < 200), "{report}");

    for text in [
        "",
        "   ",
        "; only a comment",
        "(",
        "(call",
        "(call \"a\" (\"s\"",
        "\"unclosed",
    ] {
        let err = braid_grammar::parse(text).expect_err("incomplete script");
        let _ = err.render(text, "t.air");
    }
}
