//! The lens grammar (air-language.md §3), with nom: `.length`, or `.$` and accessors.

use nom::branch::alt;
use nom::bytes::complete::take_while;
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{opt, recognize};
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::{IResult, Parser};

use crate::ast::{Accessor, Lens, Var, VarKind};
use crate::error::ErrorKind;
use crate::word::is_name_char;

/// Parses `text`, the lens part of `word`, which starts at byte `start` of the script.
pub(crate) fn parse<'a>(word: &str, text: &'a str, start: usize) -> Result<Lens<'a>, ErrorKind> {
    if text == ".length" {
        return Ok(Lens::Length);
    }
    let invalid = |at: &str, expected| ErrorKind::InvalidLens {
        word: word.to_owned(),
        at: at.to_owned(),
        expected,
    };
    let Some(mut rest) = text.strip_prefix(".$") else {
        return Err(invalid(text, "`.length` or `.$` followed by accessors"));
    };
    if rest.is_empty() {
        return Err(ErrorKind::EmptyLens {
            word: word.to_owned(),
        });
    }
    let mut accessors = Vec::new();
    while !rest.is_empty() {
        let offset = start + (text.len() - rest.len());
        match accessor(rest) {
            Ok((next, raw)) => {
                let at = offset + raw_offset(rest, &raw);
                accessors.push(raw.into_accessor(word, at)?);
                rest = next;
            }
            Err(_) => {
                return Err(invalid(rest, "`.field`, `.[index]` or `.[variable]`"));
            }
        }
    }
    Ok(Lens::Path(accessors.into_boxed_slice()))
}

/// An accessor as written, before numbers are converted.
enum Raw<'a> {
    Index(&'a str),
    Var(&'a str),
    Field(&'a str),
}

impl<'a> Raw<'a> {
    fn into_accessor(self, word: &str, pos: usize) -> Result<Accessor<'a>, ErrorKind> {
        Ok(match self {
            Raw::Index(digits) => {
                Accessor::Index(digits.parse().map_err(|_| ErrorKind::IndexTooBig {
                    word: word.to_owned(),
                    index: digits.to_owned(),
                })?)
            }
            Raw::Field(name) => Accessor::Field(name),
            // Lenses are refused in scripts of 4 GiB or more, so `pos` fits.
            Raw::Var(name) => Accessor::Var(Var {
                kind: VarKind::Scalar,
                name,
                pos: pos as u32,
            }),
        })
    }

    fn text(&self) -> &'a str {
        match self {
            Raw::Index(s) | Raw::Var(s) | Raw::Field(s) => s,
        }
    }
}

/// Byte offset of the accessor's name within `rest` (for by-variable positions).
fn raw_offset(rest: &str, raw: &Raw<'_>) -> usize {
    raw.text().as_ptr() as usize - rest.as_ptr() as usize
}

fn accessor(input: &str) -> IResult<&str, Raw<'_>> {
    terminated(
        alt((
            preceded(
                opt(char('.')),
                delimited(
                    char('['),
                    alt((digit1.map(Raw::Index), name.map(Raw::Var))),
                    char(']'),
                ),
            ),
            preceded(char('.'), name.map(Raw::Field)),
        )),
        opt(char('!')),
    )
    .parse(input)
}

/// A name: starts with a name character that is not an ASCII digit.
fn name(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        satisfy(|c| is_name_char(c) && !c.is_ascii_digit()),
        take_while(is_name_char),
    ))
    .parse(input)
}
