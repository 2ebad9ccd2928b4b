//! Classifies a bare word as a number or a variable (with its kind and lens), with the
//! scan and the errors of air-language.md §2.5.

use crate::ast::{Lens, Var, VarKind};
use crate::error::ErrorKind;
use crate::lens;
use crate::lexer::{Keyword, TokenKind};

/// The longest float literal, sign and dot included.
const MAX_FLOAT_CHARS: usize = 11;

/// A word made of ASCII name characters, starting with a letter or `_`: a scalar,
/// unless it is a keyword or a boolean (then `None`, and the general path decides).
pub(crate) fn plain_scalar(word: &str, start: usize) -> Option<TokenKind<'_>> {
    let first = *word.as_bytes().first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    if is_reserved(word) {
        return None;
    }
    Some(TokenKind::Var(
        Var {
            kind: VarKind::Scalar,
            name: word,
            pos: pos(start),
        },
        None,
    ))
}

/// A keyword, `true` or `false`.
pub(crate) fn is_reserved(word: &str) -> bool {
    // Reserved words have 2 to 8 lowercase letters; most names are longer or start
    // with a letter no reserved word starts with (a bit set, not a chain of tests).
    const FIRST_LETTERS: u32 = {
        let mut set = 0;
        let letters = b"acfmnpstx";
        let mut i = 0;
        while i < letters.len() {
            set |= 1 << (letters[i] - b'a');
            i += 1;
        }
        set
    };
    let bytes = word.as_bytes();
    let first = bytes.first().map_or(0, |&b| u32::from(b.wrapping_sub(b'a')));
    if (bytes.len() > 8) | (first >= 26) | (FIRST_LETTERS & 1 << (first & 31) == 0) {
        return false;
    }
    matches!(
        word.as_bytes(),
        [b't', b'r', b'u', b'e'] | [b'f', b'a', b'l', b's', b'e']
    ) || Keyword::from_word(word).is_some()
}

pub(crate) fn number_or_var(word: &str, start: usize) -> Result<TokenKind<'_>, ErrorKind> {
    let owned = || word.to_owned();
    // Number mode.
    let mut seen_dot = false;
    let mut seen_digit = false;
    let mut is_number = true;
    let mut switch_at = 0;
    for (i, c) in word.char_indices() {
        if i == 0 && (c == '+' || c == '-') {
            continue;
        }
        if c.is_numeric() {
            seen_digit = true;
            continue;
        }
        if c == '.' && !seen_dot {
            if i == 0 || !seen_digit {
                return Err(ErrorKind::LeadingDot { word: owned() });
            }
            seen_dot = true;
            continue;
        }
        if seen_dot {
            return Err(ErrorKind::InvalidNumber { word: owned() });
        }
        is_number = false;
        switch_at = i;
        break;
    }
    if is_number {
        return if seen_dot {
            if word.chars().count() > MAX_FLOAT_CHARS {
                return Err(ErrorKind::FloatTooBig { word: owned() });
            }
            word.parse::<f64>()
                .map(TokenKind::Float)
                .map_err(|_| ErrorKind::InvalidNumber { word: owned() })
        } else {
            word.parse::<i64>()
                .map(TokenKind::Int)
                .map_err(|_| ErrorKind::InvalidInteger { word: owned() })
        };
    }
    let (var, lens) = variable(word, start, switch_at)?;
    Ok(TokenKind::Var(var, lens))
}

/// `checked_from`: where number mode gave up; characters before it (a sign, digits)
/// are part of the name without being checked, as in the reference (`+y` is a name).
fn variable(
    word: &str,
    start: usize,
    checked_from: usize,
) -> Result<(Var<'_>, Option<Lens<'_>>), ErrorKind> {
    let owned = || word.to_owned();
    let mut chars = word.chars();
    let c0 = chars.next().unwrap_or(' ');
    let c1 = chars.next();
    let (kind, sigil_len) = match (c0, c1) {
        (_, Some('%')) => (VarKind::CanonMap, c0.len_utf8() + 1),
        ('#', Some('$')) => (VarKind::Canon, 2),
        ('#', _) => (VarKind::Canon, 1),
        ('$', _) => (VarKind::Stream, 1),
        ('%', _) => (VarKind::StreamMap, 1),
        _ => (VarKind::Scalar, 0),
    };
    if sigil_len == 1 && word.len() == 1 {
        return Err(ErrorKind::EmptyTaggedName { word: owned() });
    }
    if sigil_len == 2 && word.len() == 2 || kind == VarKind::CanonMap && word.len() == sigil_len {
        return Err(ErrorKind::EmptyCanonName { word: owned() });
    }
    let dot = word.find('.');
    if let Some(dot) = dot {
        if sigil_len > 0 && dot <= 2 {
            return Err(ErrorKind::EmptyCanonName { word: owned() });
        }
    }
    let name_end = dot.unwrap_or(word.len());
    let checked_from = sigil_len.max(checked_from).min(name_end);
    if let Some(found) = word[checked_from..name_end]
        .chars()
        .find(|&c| !is_name_char(c))
    {
        return Err(ErrorKind::InvalidNameChar {
            word: owned(),
            found,
        });
    }
    let var = Var {
        kind,
        name: &word[..name_end],
        pos: pos(start),
    };
    let Some(dot) = dot else {
        return Ok((var, None));
    };
    let lens_text = &word[dot..];
    let last = lens_text.char_indices().last().map(|(i, _)| i);
    for (i, c) in lens_text.char_indices() {
        let allowed = is_name_char(c)
            || matches!(
                c,
                '$' | '@' | '[' | ']' | '(' | ')' | ':' | '?' | '.' | '*' | ',' | '"' | '\''
            )
            || c == '!' && Some(i) == last;
        if !allowed {
            return Err(ErrorKind::InvalidLensChar {
                word: owned(),
                found: c,
            });
        }
    }
    let lens = lens::parse(word, lens_text, start + dot)?;
    Ok((var, Some(lens)))
}

/// The lens of `:error:…` or `%last_error%…`; `rest` is what follows the prefix.
pub(crate) fn error_lens<'a>(
    word: &str,
    rest: &'a str,
    rest_start: usize,
) -> Result<Option<Lens<'a>>, ErrorKind> {
    if rest.is_empty() {
        return Ok(None);
    }
    lens::parse(word, rest, rest_start).map(Some)
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn pos(offset: usize) -> u32 {
    // Scripts of 4 GiB or more are refused before lexing.
    offset as u32
}
