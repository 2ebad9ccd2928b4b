//! `braid explain`'s text: the particle's steps, then the script annotated with what
//! one step (the last, by default) did to each instruction.

use std::fmt::Write;

use braid_grammar::Ast;

use crate::annotate::{FaultAt, annotate, script_lines, service, short_peer, short_text};
use crate::life::{Cause, Life, Step};

/// Writes the explanation of `life`, annotating the script as of step `at` (1-based).
pub fn render_text(life: &Life, ast: &Ast<'_>, at: usize) -> String {
    let mut out = String::new();
    let lanes: Vec<String> = life.lanes().iter().map(|p| short_peer(p)).collect();
    let _ = writeln!(
        out,
        "{}: {} steps on {} peers ({})",
        life.title,
        life.steps.len(),
        lanes.len(),
        lanes.join(", ")
    );
    out.push('\n');
    for step in &life.steps {
        out.push_str(&step_line(step));
        out.push('\n');
    }
    let Some(step) = life.steps.get(at.saturating_sub(1)) else {
        return out;
    };
    let notes = annotate(ast, step);
    let _ = writeln!(
        out,
        "\nThe script as of step {} on {} ([N]: trace position):",
        step.number,
        short_peer(&step.peer)
    );
    let lines = script_lines(ast);
    let texts: Vec<String> = lines
        .iter()
        .map(|l| format!("{}{}", "  ".repeat(l.depth), l.text))
        .collect();
    let width = texts
        .iter()
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0)
        .min(64);
    for (line, text) in lines.iter().zip(&texts) {
        let mark = if notes.created.contains(&line.instr) {
            '*'
        } else if notes.learned.contains(&line.instr) {
            '+'
        } else {
            ' '
        };
        let location = format!("{}:{}", line.location.line, line.location.column);
        let note = notes
            .notes
            .get(&line.instr)
            .map(|n| n.join(" | "))
            .unwrap_or_default();
        let pad = width.saturating_sub(text.chars().count());
        let _ = writeln!(
            out,
            "{location:>7} {mark} {text}{}  # {note}",
            " ".repeat(pad)
        );
    }
    out.push_str(
        "(*: recorded something new in this step; +: learned from the data that arrived)\n",
    );
    for fault in &notes.faults {
        out.push_str(&fault_line(ast, fault, step));
        out.push('\n');
    }
    out
}

/// One line per step: who, why, what it asked for, what it got, where the data went.
pub fn step_line(step: &Step) -> String {
    let mut line = format!(
        "#{:<3} {:<16} {}",
        step.number,
        short_peer(&step.peer),
        cause(step)
    );
    for (id, answer) in &step.answers {
        let _ = write!(
            line,
            " | answer #{id}: {} {}",
            answer.ret_code,
            short_text(&answer.result)
        );
    }
    for r in &step.requests {
        let _ = write!(
            line,
            " | call #{} {} {}",
            r.id,
            service(&r.service_id, &r.function_name),
            short_text(&r.arguments)
        );
    }
    if !step.next_peers.is_empty() {
        let next: Vec<String> = step.next_peers.iter().map(|p| short_peer(p)).collect();
        let _ = write!(line, " | → {}", next.join(", "));
    }
    if step.ret_code != 0 {
        let _ = write!(
            line,
            " | ERROR {}: {}",
            step.ret_code,
            short_text(&step.error_message)
        );
    }
    line
}

/// Why a step ran, in words.
pub(crate) fn cause(step: &Step) -> String {
    match &step.cause {
        Cause::Start => "start".to_owned(),
        Cause::Data {
            from,
            step: Some(n),
        } => format!("data from {} (#{n})", short_peer(from)),
        Cause::Data { from, step: None } => format!("data from {}", short_peer(from)),
        Cause::Arrived => "data arrived".to_owned(),
        Cause::Results => "call results".to_owned(),
        Cause::Injected {
            data_from_step: Some(n),
        } => format!("injected data of #{n}"),
        Cause::Injected {
            data_from_step: None,
        } => "injected empty data".to_owned(),
    }
}

/// An error with its place: `line:col` and the instruction, and for an uncatchable
/// error the peer whose data disagreed.
pub fn fault_line(ast: &Ast<'_>, fault: &FaultAt, step: &Step) -> String {
    let kind = if fault.fault.catchable {
        "error"
    } else {
        "UNCATCHABLE error"
    };
    let mut line = format!(
        "{kind} {} at {}:{} `{}` on {}: {}",
        fault.fault.code,
        fault.location.line,
        fault.location.column,
        ast.display(fault.instr),
        short_peer(&step.peer),
        fault.fault.message
    );
    if !fault.fault.catchable {
        match (&fault.disagreeing_peer, &step.cause) {
            (Some(peer), Cause::Data { step: Some(n), .. }) => {
                let _ = write!(
                    line,
                    "; the data from {} (step {n}) disagrees with what {} had",
                    short_peer(peer),
                    short_peer(&step.peer)
                );
            }
            (Some(peer), _) => {
                let _ = write!(
                    line,
                    "; the data from {} disagrees with what {} had",
                    short_peer(peer),
                    short_peer(&step.peer)
                );
            }
            (None, _) => {}
        }
    }
    line
}
