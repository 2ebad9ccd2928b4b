//! AIR text to a syntax tree, and back.
//!
//! [`parse`] lexes and parses one script into an [`Ast`] that borrows from the text and
//! records byte spans, then runs the reference's static validation. The tree prints back
//! as canonical AIR (`Display for Ast`), and each instruction has the one-line display
//! form that error objects carry ([`Ast::display`]).
//!
//! ```
//! let script = r#"(seq (call %init_peer_id% ("peer" "identify") [] info) (null))"#;
//! let ast = braid_grammar::parse(script).unwrap();
//! assert_eq!(ast.to_string(), "(seq\n (call %init_peer_id% (\"peer\" \"identify\") [] info)\n (null)\n)\n");
//! assert_eq!(ast.display(ast.root()).to_string(), "seq");
//!
//! let err = braid_grammar::parse("(seq (null)").unwrap_err();
//! assert_eq!(err.to_string(), "1:1: unclosed `(`: the instruction opened here is never closed; add the matching `)`");
//! ```
//!
//! What this crate does not do: evaluate anything, or know about data and traces. The
//! parser never recurses, so nesting depth is limited by memory only, and it never
//! panics on any input.
#![warn(missing_docs)]

mod ast;
mod error;
mod lens;
mod lexer;
mod parser;
mod printer;
mod span;
mod validate;
mod word;

#[cfg(feature = "arbitrary")]
pub mod arbitrary;

pub use ast::{
    Accessor, Ap, ApMap, Ast, Call, Canon, Children, Fail, Fold, Instr, InstrId, InstrKind, LazyCall,
    Lens,
    Match, Value, Var, VarKind,
};
pub use error::{Diagnostic, ErrorKind, ParseError};
pub use printer::InstrDisplay;
pub use span::{Location, Span};

/// Parses and validates one AIR script.
///
/// Fails with the first syntax error, or with every failed static check
/// (air-language.md §8).
pub fn parse(source: &str) -> Result<Ast<'_>, ParseError> {
    let (ast, facts) = parser::parse_syntax(source)?;
    validate::validate(&ast, facts)?;
    Ok(ast)
}

/// Parses one script without static validation: the tree of any syntactically valid
/// script, for tools that want to show what a rejected script says.
pub fn parse_unvalidated(source: &str) -> Result<Ast<'_>, ParseError> {
    parser::parse_syntax(source).map(|(ast, _)| ast)
}
