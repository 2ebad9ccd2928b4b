//! Writing trees back as text: the canonical AIR layout (`Display for Ast`) and the
//! one-line display form of an instruction that error objects carry
//! (air-language.md §7).

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::{Accessor, Ast, Fail, InstrId, InstrKind, Lens, Value, Var};

/// Indentation stops growing past this depth, so that printing a deeply nested script
/// stays linear in its size.
const MAX_INDENT: usize = 100;

impl Display for Ast<'_> {
    /// The canonical layout, as the Aqua compiler writes AIR: one instruction per line,
    /// children indented by one space, a compound instruction's `)` on its own line.
    /// It parses back to the same tree.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        enum Task {
            Instr(InstrId, usize),
            Close(usize),
        }
        let mut tasks = vec![Task::Instr(self.root, 0)];
        while let Some(task) = tasks.pop() {
            let (id, depth) = match task {
                Task::Close(depth) => {
                    indent(f, depth)?;
                    f.write_str(")\n")?;
                    continue;
                }
                Task::Instr(id, depth) => (id, depth),
            };
            indent(f, depth)?;
            let kind = &self.instr(id).kind;
            f.write_char('(')?;
            write_head(f, self, id, Style::Canonical)?;
            let mut children = kind.children().peekable();
            if children.peek().is_none() {
                f.write_str(")\n")?;
                continue;
            }
            f.write_char('\n')?;
            tasks.push(Task::Close(depth));
            for child in kind.children().rev() {
                tasks.push(Task::Instr(child, depth + 1));
            }
        }
        Ok(())
    }
}

fn indent(f: &mut Formatter<'_>, depth: usize) -> fmt::Result {
    for _ in 0..depth.min(MAX_INDENT) {
        f.write_char(' ')?;
    }
    Ok(())
}

impl<'a> Ast<'a> {
    /// The display form of one instruction (air-language.md §7), e.g.
    /// `call "p" ("svc" "") [] ` or `match 1 2`: what error objects carry in their
    /// `instruction` field.
    pub fn display(&self, id: InstrId) -> InstrDisplay<'_, 'a> {
        InstrDisplay { ast: self, id }
    }
}

/// See [`Ast::display`].
pub struct InstrDisplay<'t, 'a> {
    ast: &'t Ast<'a>,
    id: InstrId,
}

impl Display for InstrDisplay<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_head(f, self.ast, self.id, Style::Display)
    }
}

/// How floats are written.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// Rust's shortest form (`1.0` is `1`), as in error objects.
    Display,
    /// Always with a dot, so the text reads back as a float.
    Canonical,
}

/// The keyword and operands of an instruction, without children or parentheses.
fn write_head(f: &mut Formatter<'_>, ast: &Ast<'_>, id: InstrId, style: Style) -> fmt::Result {
    fn v<'v, 'a>(value: &'v Value<'a>, style: Style) -> ValueText<'v, 'a> {
        ValueText { value, style }
    }
    let kind = &ast.instr(id).kind;
    f.write_str(kind.keyword())?;
    match kind {
        InstrKind::Call(_) => {
            let call = ast.call(id).expect("a call");
            write!(
                f,
                " {} ({} {}) [",
                v(&call.peer, style),
                v(&call.service, style),
                v(&call.function, style)
            )?;
            for (i, arg) in call.args.iter().enumerate() {
                if i > 0 {
                    f.write_char(' ')?;
                }
                write!(f, "{}", v(arg, style))?;
            }
            f.write_char(']')?;
            match (&call.output, style) {
                (Some(out), _) => write!(f, " {}", out.name),
                // The display form keeps a trailing space after `]` (the reference's text).
                (None, Style::Display) => f.write_char(' '),
                (None, Style::Canonical) => Ok(()),
            }
        }
        InstrKind::Canon(c) => write!(
            f,
            " {} {} {}",
            v(&c.peer, style),
            c.source.name,
            c.target.name
        ),
        InstrKind::Ap(ap) => write!(f, " {} {}", v(&ap.arg, style), ap.result.name),
        InstrKind::ApMap(ap) => write!(
            f,
            " ({} {}) {}",
            v(&ap.key, style),
            v(&ap.value, style),
            ap.map.name
        ),
        InstrKind::New { var, .. } => write!(f, " {}", var.name),
        InstrKind::Next(var) => write!(f, " {}", var.name),
        InstrKind::Fail(fail) => match &**fail {
            Fail::Var(var, lens) => write_var(f, var, lens.as_ref()),
            Fail::Literal { code, message } => write!(f, " {code} \"{message}\""),
            Fail::LastError => f.write_str(" %last_error%"),
            Fail::Error => f.write_str(" :error:"),
        },
        InstrKind::Fold(fold) => write!(f, " {} {}", v(&fold.iterable, style), fold.iterator.name),
        InstrKind::Match(m) | InstrKind::Mismatch(m) => {
            write!(f, " {} {}", v(&m.left, style), v(&m.right, style))
        }
        InstrKind::Seq(..)
        | InstrKind::Par(..)
        | InstrKind::Xor(..)
        | InstrKind::Null
        | InstrKind::Never => Ok(()),
    }
}

fn write_var(f: &mut Formatter<'_>, var: &Var<'_>, lens: Option<&Lens<'_>>) -> fmt::Result {
    write!(f, " {}", var.name)?;
    if let Some(lens) = lens {
        write!(f, "{lens}")?;
    }
    Ok(())
}

struct ValueText<'v, 'a> {
    value: &'v Value<'a>,
    style: Style,
}

impl Display for ValueText<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (self.value, self.style) {
            (Value::Float(x), Style::Canonical) => {
                let text = x.to_string();
                f.write_str(&text)?;
                if !text.contains('.') {
                    f.write_char('.')?;
                }
                Ok(())
            }
            (value, _) => write!(f, "{value}"),
        }
    }
}

impl Display for Value<'_> {
    /// The operand as the display form writes it (floats in Rust's shortest form).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let lens = |f: &mut Formatter<'_>, lens: &Option<Lens<'_>>| match lens {
            Some(lens) => write!(f, "{lens}"),
            None => Ok(()),
        };
        match self {
            Value::InitPeerId => f.write_str("%init_peer_id%"),
            Value::Timestamp => f.write_str("%timestamp%"),
            Value::Ttl => f.write_str("%ttl%"),
            Value::LastError(l) => {
                f.write_str("%last_error%")?;
                lens(f, l)
            }
            Value::Error(l) => {
                f.write_str(":error:")?;
                lens(f, l)
            }
            Value::String(s) => write!(f, "\"{s}\""),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::EmptyArray => f.write_str("[]"),
            Value::Var(var, l) => {
                f.write_str(var.name)?;
                lens(f, l)
            }
        }
    }
}

impl Display for Lens<'_> {
    /// The canonical lens text: `.length`, or `.$.` and the accessors joined by `.`
    /// (`x.$.a[0]!` shows as `.$.a.[0]`). Tetraplets carry this text.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let accessors = match self {
            Lens::Length => return f.write_str(".length"),
            Lens::Path(accessors) => accessors,
        };
        f.write_str(".$")?;
        for accessor in accessors.iter() {
            match accessor {
                Accessor::Index(i) => write!(f, ".[{i}]")?,
                Accessor::Var(var) => write!(f, ".[{}]", var.name)?,
                Accessor::Field(name) => write!(f, ".{name}")?,
            }
        }
        Ok(())
    }
}
