//! A particle's life explained. Each invocation is re-run with the interpreter's
//! execution log ([`braid_interpreter::invoke_inspected`], the same function as
//! `invoke`), which tells which instruction ran, in which order, and which trace states
//! it left. From that: the script annotated instruction by instruction (the peer that
//! ran each call and its result, fold iterations, stream generations, canon contents,
//! par branches, errors with their code and `line:column`, and what has not run yet and
//! why), and a self-contained HTML page with a sequence diagram of the particle's life.
//!
//! ```no_run
//! use braid_explain::{Life, render_text};
//!
//! let scenario = braid_sim::Scenario::load("scenario.json".as_ref())?;
//! let life = Life::of_scenario(&scenario)?;
//! let ast = braid_grammar::parse(&life.script).expect("the scenario ran, so it parses");
//! print!("{}", render_text(&life, &ast, life.steps.len()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! It explains what the data records: it never talks to peers, and it shows values
//! abbreviated.
#![warn(missing_docs)]

mod annotate;
mod error;
mod html;
mod life;
mod text;

pub use annotate::{FaultAt, ScriptLine, StepNotes, annotate, script_lines, short_peer};
pub use error::ExplainError;
pub use html::render_html;
pub use life::{Cause, Life, Step, StepInput};
pub use text::{fault_line, render_text, step_line};
