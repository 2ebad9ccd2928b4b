//! The display form of instructions (air-language.md §7), which error objects carry,
//! and the canonical lens text that tetraplets carry.

fn display_of_root(script: &str) -> String {
    let ast = braid_grammar::parse(script).unwrap_or_else(|e| panic!("{script}: {e}"));
    ast.display(ast.root()).to_string()
}

/// The instruction `inner` placed after definitions of `x`, `i`, `#$c`, `#%m` and `$s`,
/// rendered in display form.
fn display_of(inner: &str) -> String {
    let script = format!(
        r#"(seq (seq (call "p" ("s" "f") [] x) (seq (ap 1 $s) (seq (canon "p" $s #$c) (seq (ap ("k" 1) %m) (canon "p" %m #%m))))) {inner})"#
    );
    let ast = braid_grammar::parse(&script).unwrap_or_else(|e| panic!("{script}: {e}"));
    let braid_grammar::InstrKind::Seq(_, inner) = ast.instr(ast.root()).kind else {
        unreachable!("root is the seq written above")
    };
    ast.display(inner).to_string()
}

#[test]
fn display_forms_match_the_reference_examples() {
    assert_eq!(
        display_of(r#"(call "p" ("svc" "") [x] out)"#),
        r#"call "p" ("svc" "") [x] out"#
    );
    assert_eq!(
        display_of(r#"(call "p" ("error" "") [])"#),
        r#"call "p" ("error" "") [] "#
    );
    assert_eq!(display_of_root("(match 1 2 (null))"), "match 1 2");
    assert_eq!(
        display_of_root(r#"(fail 1337 "error message")"#),
        r#"fail 1337 "error message""#
    );
}

#[test]
fn display_forms_of_every_instruction() {
    let cases = [
        ("(seq (null) (null))", "seq"),
        ("(par (null) (never))", "par"),
        ("(xor (null) (null))", "xor"),
        ("(null)", "null"),
        ("(never)", "never"),
        ("(new $t (null))", "new $t"),
        ("(mismatch 1.0 %ttl% (null))", "mismatch 1 %ttl%"),
        ("(fail %last_error%)", "fail %last_error%"),
        ("(fail :error:)", "fail :error:"),
        ("(fold [] i (next i))", "fold [] i"),
    ];
    for (script, shown) in cases {
        assert_eq!(display_of_root(script), shown, "{script}");
    }
    let inner = [
        (
            "(canon %init_peer_id% $s #$d)",
            "canon %init_peer_id% $s #$d",
        ),
        ("(canon x.$.peer %m y)", "canon x.$.peer %m y"),
        ("(ap x.$.a[0]! $s)", "ap x.$.a.[0] $s"),
        (r#"(ap ("k" #$c.$.[0]) %m)"#, r#"ap ("k" #$c.$.[0]) %m"#),
        ("(ap #%m.$.k y)", "ap #%m.$.k y"),
        ("(fail x.$.[x].b)", "fail x.$.[x].b"),
        ("(fold #$c i (seq (next i) (null)))", "fold #$c i"),
        ("(fold $s i (next i))", "fold $s i"),
        (
            "(call x.$.p (x.$.s x.$.f) [x.length :error:.$.message %last_error% 2.5 -3 true []] $o)",
            "call x.$.p (x.$.s x.$.f) [x.length :error:.$.message %last_error% 2.5 -3 true []] $o",
        ),
    ];
    for (script, shown) in inner {
        assert_eq!(display_of(script), shown, "{script}");
    }
}

#[test]
fn canonical_form_keeps_floats_as_floats() {
    let ast = braid_grammar::parse("(match 1. 1000000000. (null))").expect("floats parse");
    assert_eq!(ast.to_string(), "(match 1. 1000000000.\n (null)\n)\n");
    assert_eq!(ast.display(ast.root()).to_string(), "match 1 1000000000");
}
