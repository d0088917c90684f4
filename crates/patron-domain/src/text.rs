//! Text hygiene: which characters identifiers, names and free texts may hold, how long each
//! may be, and numbers typed in any of the digits members use ([`number`]).
//!
//! Three kinds of text, three rules:
//! - **Identifiers** (external ids, document ids, SKUs, store ids, codes...) are compared
//!   byte for byte with other systems' ids, so anything that does not show refuses them: a
//!   zero-width space (U+200B) between `A` and `1` makes an id that looks exactly like `A1`. No control
//!   or format character (Unicode Cc, Cf: zero-width characters, the byte order mark, bidi
//!   marks and controls), no line or paragraph separator, no private-use or unassigned code
//!   point, no white space but the plain space, and none at either end.
//! - **Names** and other **free text** people read (reasons, descriptions, consent texts) are
//!   shown next to other text, so what would change how the text around them is displayed
//!   refuses them: bidi embeddings, overrides and isolates (a right-to-left override, U+202E,
//!   makes `Sara` then `kcin` display as `Sara` then `nick`), control characters,
//!   separators, and text with nothing visible in it. The joiners and direction marks real writing needs stay: Persian spells
//!   «می‌خواهم» with a zero-width non-joiner, emoji sequences use the joiner.
//! - Every text has a limit; they are the constants below, in one place, and
//!   docs/API-DESIGN.md ("Limits") lists them.

pub mod number;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Identifiers: external ids, document ids, store ids, SKUs, categories, order ids.
pub const IDENTIFIER_CHARS_MAX: usize = 128;
/// A member's name, a promotion's name.
pub const NAME_CHARS_MAX: usize = 200;
/// The reason of a manual adjustment.
pub const REASON_CHARS_MAX: usize = 500;
/// The description of a redemption.
pub const DESCRIPTION_CHARS_MAX: usize = 500;
/// The text a member was shown when they gave (or refused) a consent: the evidence.
pub const CONSENT_TEXT_CHARS_MAX: usize = 10_000;
/// A consent's channel-independent words: its `topic` and `method`.
pub const CONSENT_WORD_CHARS_MAX: usize = 64;
/// Custom attributes of a member: how many, how long a string value, how large all of them
/// together (as JSON).
pub const ATTRIBUTES_MAX: usize = 100;
pub const ATTRIBUTE_STRING_CHARS_MAX: usize = 1_000;
pub const ATTRIBUTES_BYTES_MAX: usize = 16 * 1024;
/// An event's properties: how many, how long a key, how large all of them together (JSON).
pub const EVENT_PROPERTIES_MAX: usize = 100;
pub const EVENT_PROPERTY_KEY_CHARS_MAX: usize = 64;
pub const EVENT_PROPERTIES_BYTES_MAX: usize = 16 * 1024;
/// An `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

/// Why a text was refused. Messages name the offending code point (so the person can find
/// it) but never repeat the text: it may be personal data, and it ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long, this one has {length}")]
    TooLong { max: usize, length: usize },
    #[error("must not start or end with white space")]
    SurroundingSpace,
    #[error("must contain at least one visible character")]
    NothingVisible,
    #[error("must not contain {}", .kind.describe(*.code_point))]
    Forbidden { kind: Forbidden, code_point: char },
}

/// What kind of character a text refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// U+202A-U+202E, U+2066-U+2069.
    BidiControl,
    /// Cc, and a line break where the text is one line.
    Control,
    /// Cf that is not a bidi control: zero-width characters, the BOM, direction marks...
    Invisible,
    /// Zl, Zp.
    Separator,
    /// A space other than U+0020 inside an identifier.
    UnusualSpace,
    /// Co, Cn, Cs.
    Unassigned,
}

impl Forbidden {
    fn describe(self, c: char) -> String {
        let what = match self {
            Forbidden::BidiControl => {
                "a bidirectional embedding, override or isolate, which changes how the text \
                 around it is displayed"
            }
            Forbidden::Control => "a control character or line break",
            Forbidden::Invisible => "an invisible formatting character",
            Forbidden::Separator => "a line or paragraph separator",
            Forbidden::UnusualSpace => "white space other than the ordinary space",
            Forbidden::Unassigned => "a private-use or unassigned character",
        };
        format!("{what} (U+{:04X})", u32::from(c))
    }
}

/// The bidirectional embeddings, overrides and isolates: each opens a run that changes the
/// display order of what follows, beyond the text itself if it is never closed.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Format characters that names and free text keep: ZWNJ and ZWJ (Persian spelling, emoji
/// sequences), and the direction marks LRM, RLM and ALM, which (unlike embeddings) only
/// affect the characters next to them and are what right-to-left keyboards insert.
fn is_writing_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200C}' | '\u{200D}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Letters and symbols that are assigned as visible but display as nothing (Hangul fillers,
/// the blank Braille pattern): a name of only these is as empty as one of spaces.
fn is_blank_glyph(c: char) -> bool {
    matches!(
        c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
    )
}

/// Whether `c` shows something by itself: a letter, digit, punctuation or symbol. Spaces,
/// combining marks alone, format and control characters do not.
pub fn is_visible(c: char) -> bool {
    use GeneralCategory as G;
    !is_blank_glyph(c)
        && !matches!(
            c.general_category(),
            G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
                | G::Control
                | G::Format
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
                | G::NonspacingMark
                | G::EnclosingMark
        )
}

fn forbidden(kind: Forbidden, code_point: char) -> TextError {
    TextError::Forbidden { kind, code_point }
}

fn check_length(value: &str, max: usize) -> Result<(), TextError> {
    let length = value.chars().count();
    if length == 0 {
        return Err(TextError::Empty);
    }
    if length > max {
        return Err(TextError::TooLong { max, length });
    }
    Ok(())
}

/// Checks an identifier of at most `max` characters; see the module's documentation. It is
/// taken as is (never trimmed): it must match the operator's systems.
pub fn check_identifier(value: &str, max: usize) -> Result<(), TextError> {
    use GeneralCategory as G;
    check_length(value, max)?;
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(TextError::SurroundingSpace);
    }
    for c in value.chars() {
        let kind = match c.general_category() {
            _ if is_bidi_control(c) => Forbidden::BidiControl,
            G::Control => Forbidden::Control,
            G::Format => Forbidden::Invisible,
            G::LineSeparator | G::ParagraphSeparator => Forbidden::Separator,
            G::Surrogate | G::PrivateUse | G::Unassigned => Forbidden::Unassigned,
            _ if c.is_whitespace() && c != ' ' => Forbidden::UnusualSpace,
            _ => continue,
        };
        return Err(forbidden(kind, c));
    }
    if !value.chars().any(is_visible) {
        return Err(TextError::NothingVisible);
    }
    Ok(())
}

/// Whether a free text may span several lines (a consent text) or is one line (a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Checks a name or another text people read, of at most `max` characters once trimmed, and
/// answers it trimmed (white space at the ends is never meant). See the module's
/// documentation for what it refuses.
pub fn check_free_text(value: &str, max: usize, lines: Lines) -> Result<&str, TextError> {
    let value = value.trim();
    check_length(value, max)?;
    check_readable(value, lines)?;
    if !value.chars().any(is_visible) {
        return Err(TextError::NothingVisible);
    }
    Ok(value)
}

/// Checks a text that is kept exactly as sent, such as a custom attribute's string value: it
/// refuses the same characters as [`check_free_text`] (line breaks allowed), but may be
/// empty and is not trimmed.
pub fn check_value_text(value: &str, max: usize) -> Result<(), TextError> {
    let length = value.chars().count();
    if length > max {
        return Err(TextError::TooLong { max, length });
    }
    check_readable(value, Lines::Many)
}

/// The characters free text refuses: what changes how other text is displayed, controls,
/// separators, and the invisible format characters real writing does not need.
fn check_readable(value: &str, lines: Lines) -> Result<(), TextError> {
    use GeneralCategory as G;
    for c in value.chars() {
        let line_break = matches!(c, '\n' | '\r' | '\t');
        let kind = match c.general_category() {
            _ if is_bidi_control(c) => Forbidden::BidiControl,
            _ if line_break && lines == Lines::Many => continue,
            G::Control => Forbidden::Control,
            G::Format if is_writing_mark(c) => continue,
            G::Format => Forbidden::Invisible,
            G::LineSeparator | G::ParagraphSeparator => Forbidden::Separator,
            G::Surrogate | G::PrivateUse | G::Unassigned => Forbidden::Unassigned,
            _ => continue,
        };
        return Err(forbidden(kind, c));
    }
    Ok(())
}

/// [`check_free_text`] for a one-line name of at most [`NAME_CHARS_MAX`] characters.
pub fn check_name(value: &str) -> Result<&str, TextError> {
    check_free_text(value, NAME_CHARS_MAX, Lines::One)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused_as(result: Result<impl std::fmt::Debug, TextError>) -> Option<Forbidden> {
        match result {
            Err(TextError::Forbidden { kind, .. }) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn identifiers_in_any_script_with_inner_spaces_are_accepted() {
        for id in [
            "CRM-000123",
            "مشتری ۱۲",
            "לקוח 7",
            "a",
            "x.y_z/1",
            "Ünïcødé",
        ] {
            assert_eq!(check_identifier(id, 128), Ok(()), "{id}");
        }
        assert_eq!(check_identifier(&"ی".repeat(128), 128), Ok(()));
    }

    #[test]
    fn identifiers_refuse_every_invisible_and_control_character() {
        for (id, kind) in [
            ("A\u{200B}1", Forbidden::Invisible),
            ("A\u{200C}1", Forbidden::Invisible),
            ("A\u{200D}1", Forbidden::Invisible),
            ("\u{FEFF}A1", Forbidden::Invisible),
            ("A1\u{200E}", Forbidden::Invisible),
            ("A\u{200F}1", Forbidden::Invisible),
            ("A\u{2060}1", Forbidden::Invisible),
            ("A\u{00AD}1", Forbidden::Invisible),
            ("\u{202A}A1", Forbidden::BidiControl),
            ("A\u{202E}1", Forbidden::BidiControl),
            ("A\u{2066}1", Forbidden::BidiControl),
            ("A\u{2069}1", Forbidden::BidiControl),
            ("A\u{0}1", Forbidden::Control),
            ("A\n1", Forbidden::Control),
            ("A\u{7F}1", Forbidden::Control),
            ("A\u{85}1", Forbidden::Control),
            ("A\u{2028}1", Forbidden::Separator),
            ("A\u{2029}1", Forbidden::Separator),
            ("A\u{00A0}1", Forbidden::UnusualSpace),
            ("A\u{3000}1", Forbidden::UnusualSpace),
            ("A\u{E000}1", Forbidden::Unassigned),
            ("A\u{10FFFF}1", Forbidden::Unassigned),
        ] {
            assert_eq!(
                refused_as(check_identifier(id, 128)),
                Some(kind),
                "{:?}",
                id.escape_unicode().to_string()
            );
        }
    }

    #[test]
    fn identifiers_refuse_space_at_either_end_emptiness_and_length() {
        assert_eq!(
            check_identifier(" A1", 128),
            Err(TextError::SurroundingSpace)
        );
        assert_eq!(
            check_identifier("A1 ", 128),
            Err(TextError::SurroundingSpace)
        );
        assert_eq!(
            check_identifier("A1\t", 128),
            Err(TextError::SurroundingSpace)
        );
        assert_eq!(check_identifier("", 128), Err(TextError::Empty));
        assert_eq!(
            check_identifier(&"x".repeat(129), 128),
            Err(TextError::TooLong {
                max: 128,
                length: 129
            })
        );
        assert_eq!(
            check_identifier("\u{3164}", 128),
            Err(TextError::NothingVisible)
        );
    }

    #[test]
    fn names_keep_the_joiners_and_marks_real_writing_needs() {
        for name in [
            "می\u{200C}خواهم",
            "שרה כהן",
            "Zoë O'Neil",
            "سارا\u{200F} Kohen",
            "\u{200E}Dana",
            "👩\u{200D}🍳 Chef",
            "José",
        ] {
            assert_eq!(check_name(name), Ok(name), "{name}");
        }
        assert_eq!(check_name("  Sara K  "), Ok("Sara K"));
    }

    #[test]
    fn names_refuse_bidi_controls_separators_and_other_invisible_characters() {
        for (name, kind) in [
            ("Sara\u{202E}kcin", Forbidden::BidiControl),
            ("\u{202B}Sara", Forbidden::BidiControl),
            ("\u{2067}Sara\u{2069}", Forbidden::BidiControl),
            ("Sa\u{200B}ra", Forbidden::Invisible),
            ("Sa\u{FEFF}ra", Forbidden::Invisible),
            ("Sara\nKohen", Forbidden::Control),
            ("Sara\tKohen", Forbidden::Control),
            ("Sara\u{2029}Kohen", Forbidden::Separator),
            ("Sara\u{E000}", Forbidden::Unassigned),
        ] {
            assert_eq!(refused_as(check_name(name)), Some(kind), "{name:?}");
        }
    }

    #[test]
    fn names_need_something_visible() {
        for name in [
            "\u{200C}\u{200D}",
            "\u{200E}",
            "\u{3164}",
            "\u{0301}",
            "\u{2800}",
        ] {
            assert_eq!(check_name(name), Err(TextError::NothingVisible), "{name:?}");
        }
        assert_eq!(check_name("   "), Err(TextError::Empty));
        assert_eq!(check_name(&"n".repeat(200)).map(str::len), Ok(200));
        assert_eq!(
            check_name(&"n".repeat(201)),
            Err(TextError::TooLong {
                max: 200,
                length: 201
            })
        );
    }

    #[test]
    fn a_text_of_many_lines_keeps_its_line_breaks_but_not_bidi_controls() {
        let text = "I agree.\nYou may e-mail me.\r\n\tThank you.";
        assert_eq!(check_free_text(text, 1_000, Lines::Many), Ok(text));
        assert_eq!(
            refused_as(check_free_text(text, 1_000, Lines::One)),
            Some(Forbidden::Control)
        );
        assert_eq!(
            refused_as(check_free_text("I agree\u{202E}", 1_000, Lines::Many)),
            Some(Forbidden::BidiControl)
        );
    }

    #[test]
    fn a_value_kept_as_sent_may_be_empty_but_not_spoofing() {
        assert_eq!(check_value_text("", 10), Ok(()));
        assert_eq!(check_value_text(" padded ", 10), Ok(()));
        assert_eq!(check_value_text("two\nlines", 10), Ok(()));
        assert_eq!(
            refused_as(check_value_text("a\u{202E}b", 10)),
            Some(Forbidden::BidiControl)
        );
        assert_eq!(
            check_value_text(&"x".repeat(11), 10),
            Err(TextError::TooLong {
                max: 10,
                length: 11
            })
        );
    }

    #[test]
    fn messages_name_the_code_point_not_the_text() {
        let message = check_name("Sara\u{202E}kcin").unwrap_err().to_string();
        assert!(message.contains("U+202E"), "{message}");
        assert!(!message.contains("Sara"), "{message}");
    }

    proptest! {
        #[test]
        fn an_identifier_that_passes_shows_every_character_it_holds(
            id in prop::collection::vec(any::<char>(), 1..40).prop_map(String::from_iter),
        ) {
            if check_identifier(&id, 128).is_ok() {
                prop_assert!(id.chars().all(|c| c == ' ' || !c.is_whitespace()));
                prop_assert!(!id.chars().any(|c| matches!(
                    c.general_category(),
                    GeneralCategory::Format | GeneralCategory::Control
                )));
                prop_assert_eq!(id.trim(), id.as_str());
            }
        }

        #[test]
        fn inserting_an_invisible_character_into_an_identifier_refuses_it(
            id in "[A-Za-z0-9]{1,20}",
            at in 0usize..20,
            invisible in prop::sample::select(vec![
                '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202E}',
                '\u{2066}', '\u{200E}', '\u{200F}', '\u{2028}', '\u{0}', '\u{1B}',
            ]),
        ) {
            let at = at.min(id.len());
            let spoofed = format!("{}{invisible}{}", &id[..at], &id[at..]);
            prop_assert!(check_identifier(&id, 128).is_ok());
            prop_assert!(check_identifier(&spoofed, 128).is_err());
        }

        #[test]
        fn a_name_that_passes_has_no_bidi_control_and_something_visible(
            name in prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        ) {
            if let Ok(kept) = check_name(&name) {
                prop_assert!(!kept.chars().any(is_bidi_control));
                prop_assert!(kept.chars().any(is_visible));
            }
        }
    }
}
