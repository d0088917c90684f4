//! Compiling the CEL expressions of a program file (rule conditions and amounts, segment
//! conditions), with each problem reported at its line and column *inside the expression*,
//! mapped back through the TOML string's quotes and escapes to the position in the file.

use super::{Entry, Parser};
use crate::rules::expr::{CompiledExpr, Purpose};

impl Parser<'_> {
    /// Compiles the expression in a string value, reporting each problem at its place in the
    /// file.
    pub(super) fn expression(
        &mut self,
        entry: &Entry<'_>,
        purpose: Purpose,
        variables: &[crate::rules::expr::Variable],
    ) -> Option<CompiledExpr> {
        let source = self.string(entry)?;
        match CompiledExpr::compile(source, purpose, variables) {
            Ok(expression) => Some(expression),
            Err(errors) => {
                for error in errors {
                    let offset = self.offset_in_string(entry, error.char_offset);
                    self.report(
                        offset,
                        &entry.path,
                        format!("`{}`: {}", entry.path, error.message),
                        error.hint,
                    );
                }
                None
            }
        }
    }

    /// The byte offset in the file of the character at `char_offset` in a string value's
    /// decoded text, following the string's delimiters and escapes. Falls back to the start of
    /// the value when the raw text cannot be followed.
    pub(super) fn offset_in_string(&self, entry: &Entry<'_>, char_offset: usize) -> usize {
        let Some(span) = entry.item.span() else {
            return entry.offset;
        };
        let Some(raw) = self.source.get(span.clone()) else {
            return entry.offset;
        };
        let (delimiter, literal) = if raw.starts_with("'''") {
            ("'''", true)
        } else if raw.starts_with("\"\"\"") {
            ("\"\"\"", false)
        } else if raw.starts_with('\'') {
            ("'", true)
        } else if raw.starts_with('"') {
            ("\"", false)
        } else {
            return entry.offset;
        };
        let multi_line = delimiter.len() == 3;
        let mut body_start = delimiter.len();
        if multi_line {
            // A newline right after the opening delimiter is not part of the text.
            if raw[body_start..].starts_with("\r\n") {
                body_start += 2;
            } else if raw[body_start..].starts_with('\n') {
                body_start += 1;
            }
        }
        let body = &raw[body_start..];
        let mut decoded = 0;
        let mut chars = body.char_indices().peekable();
        while let Some((index, character)) = chars.next() {
            if decoded == char_offset {
                return span.start + body_start + index;
            }
            if !literal && character == '\\' {
                match chars.peek().map(|(_, next)| *next) {
                    Some('u') => {
                        chars.nth(4);
                        decoded += 1;
                    }
                    Some('U') => {
                        chars.nth(8);
                        decoded += 1;
                    }
                    Some('x') => {
                        chars.nth(2);
                        decoded += 1;
                    }
                    Some(' ' | '\t' | '\r' | '\n') if multi_line => {
                        // A line-ending backslash: the whitespace after it is not text.
                        while chars
                            .peek()
                            .is_some_and(|(_, next)| matches!(next, ' ' | '\t' | '\r' | '\n'))
                        {
                            chars.next();
                        }
                    }
                    Some(_) => {
                        chars.next();
                        decoded += 1;
                    }
                    None => {}
                }
                continue;
            }
            decoded += 1;
        }
        // Past the end of the text: point at the closing delimiter.
        span.start + raw.len().saturating_sub(delimiter.len())
    }
}
