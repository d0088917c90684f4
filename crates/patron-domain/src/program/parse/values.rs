//! Reading single values for the program parser: text, numbers, exact decimals, money, words
//! from a fixed set, lists, localized text, and the structural checks (unknown and missing
//! keys, wrong types) that every section uses.

use std::ops::RangeInclusive;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use toml_edit::{Item, Value};

use super::{Entry, Parser, Section, TEXT_CHARS_MAX};
use crate::program::Diagnostic;
use crate::program::diagnostic::line_column;
use crate::shared::closest;
use crate::shared::{Currency, Locale, Localized};

impl Parser<'_> {
    // ----- Values ------------------------------------------------------------------------------

    /// A text in several languages: `{ fa = "...", en = "..." }`, or a plain string, which is
    /// the text in the default language. The default language must always have a text.
    pub(super) fn localized(
        &mut self,
        entry: &Entry<'_>,
        default_locale: Option<Locale>,
    ) -> Option<Localized> {
        let mut localized = Localized::default();
        if entry.item.is_str() {
            let text = self.text(entry)?;
            // Without a valid default language (reported elsewhere) there is nowhere to put it.
            localized.set(default_locale?, text);
            return Some(localized);
        }
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type(
                entry,
                "a string, or a table of languages such as { fa = \"...\", en = \"...\" }",
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["fa", "he", "en"]);
        let mut ok = true;
        for locale in Locale::ALL {
            if let Some(text_entry) = section.entry(locale.code()) {
                match self.text(&text_entry) {
                    Some(text) => localized.set(locale, text),
                    None => ok = false,
                }
            }
        }
        if let Some(default_locale) = default_locale
            && ok
            && localized.get(default_locale).is_none()
        {
            let code = default_locale.code();
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` has no text in the default language \"{code}\"",
                    entry.path
                ),
                Some(format!("add {code} = \"...\"")),
            );
            return None;
        }
        ok.then_some(localized)
    }

    /// A non-empty string of at most [`TEXT_CHARS_MAX`] characters.
    pub(super) fn text(&mut self, entry: &Entry<'_>) -> Option<String> {
        let text = self.string(entry)?;
        if text.trim().is_empty() {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` is empty", entry.path),
                None,
            );
            return None;
        }
        let chars = text.chars().count();
        if chars > TEXT_CHARS_MAX {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` is {chars} characters long; at most {TEXT_CHARS_MAX} are allowed",
                    entry.path
                ),
                None,
            );
            return None;
        }
        // Members read these texts next to others: the domain's rules for free text
        // (docs/API-DESIGN.md, "Text hygiene") hold in the program too.
        if let Err(error) = crate::text::check_free_text(text, chars, crate::text::Lines::Many) {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` {error}", entry.path),
                None,
            );
            return None;
        }
        Some(text.to_owned())
    }

    pub(super) fn string<'d>(&mut self, entry: &Entry<'d>) -> Option<&'d str> {
        match entry.item.as_str() {
            Some(text) => Some(text),
            None => {
                self.wrong_type(entry, "a string");
                None
            }
        }
    }

    pub(super) fn integer_in(
        &mut self,
        entry: &Entry<'_>,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let Some(value) = entry.item.as_integer() else {
            // Quoted numbers are the most common slip; say exactly what to write.
            let hint = entry
                .item
                .as_str()
                .map(str::trim)
                .filter(|text| text.parse::<i64>().is_ok())
                .map(|text| format!("remove the quotes: {text}"));
            self.wrong_type_hinted(entry, "a whole number", hint);
            return None;
        };
        if !range.contains(&value) {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be between {} and {}, found {value}",
                    entry.path,
                    range.start(),
                    range.end()
                ),
                None,
            );
            return None;
        }
        Some(value)
    }

    /// An exact decimal, written as a string (`"0.0001"`), an integer or a TOML float. Floats are
    /// read from their source text, so `0.1` means exactly 0.1 and not the nearest binary float.
    pub(super) fn decimal(&mut self, entry: &Entry<'_>) -> Option<Decimal> {
        let parsed = match entry.item {
            Item::Value(Value::Integer(integer)) => Some(Decimal::from(*integer.value())),
            Item::Value(Value::String(text)) => parse_decimal(text.value()),
            Item::Value(Value::Float(float)) => float
                .span()
                .and_then(|span| self.source.get(span))
                .and_then(parse_decimal),
            _ => {
                self.wrong_type(entry, "a number (for example \"0.0001\" or 1)");
                return None;
            }
        };
        if parsed.is_none() {
            let written = entry
                .item
                .span()
                .and_then(|span| self.source.get(span))
                .unwrap_or_default();
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` is not a decimal number: {written}", entry.path),
                Some("write it with digits and an optional point, such as \"0.0001\"".to_owned()),
            );
        }
        parsed
    }

    pub(super) fn decimal_in(
        &mut self,
        entry: &Entry<'_>,
        min: Decimal,
        max: Decimal,
    ) -> Option<Decimal> {
        let value = self.decimal(entry)?;
        let problem = if value < min {
            Some(if min.is_zero() {
                "must not be negative".to_owned()
            } else {
                format!("must be at least {min}")
            })
        } else if value > max {
            Some(format!("must be at most {max}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` {problem}, found {value}", entry.path),
                None,
            );
            return None;
        }
        Some(value)
    }

    /// An amount of money written in major units (`"12.50"`), converted to minor units. `None`
    /// without a report when the currency itself is invalid (that is reported already).
    pub(super) fn money(&mut self, entry: &Entry<'_>, currency: Option<&Currency>) -> Option<i64> {
        let value = self.decimal_in(entry, Decimal::ZERO, Decimal::from(i64::MAX))?;
        self.money_value(entry, value, currency?)
    }

    pub(super) fn money_value(
        &mut self,
        entry: &Entry<'_>,
        value: Decimal,
        currency: &Currency,
    ) -> Option<i64> {
        let minor = Decimal::from(10_i64.checked_pow(currency.minor_unit)?)
            .checked_mul(value)
            .filter(|minor| minor.fract().is_zero());
        let Some(minor) = minor.and_then(|minor| minor.to_i64()) else {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` is {value}, which is not a whole amount of {} (at most {} decimal places)",
                    entry.path, currency.code, currency.minor_unit
                ),
                None,
            );
            return None;
        };
        Some(minor)
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        entry: &Entry<'_>,
        options: &[(&str, T)],
    ) -> Option<T> {
        self.choice_with_hint(entry, options, None)
    }

    /// One of a fixed set of words. `extra` is appended to the list of allowed words in the
    /// hint (for settings that also take a table).
    pub(super) fn choice_with_hint<T: Copy>(
        &mut self,
        entry: &Entry<'_>,
        options: &[(&str, T)],
        extra: Option<&str>,
    ) -> Option<T> {
        let words: Vec<&str> = options.iter().map(|(word, _)| *word).collect();
        let quoted = words
            .iter()
            .map(|word| format!("\"{word}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(text) = entry.item.as_str() else {
            self.wrong_type(entry, &format!("one of {quoted}"));
            return None;
        };
        if let Some((_, value)) = options.iter().find(|(word, _)| *word == text) {
            return Some(*value);
        }
        let mut hint = match closest(text, &words) {
            Some(suggestion) => format!("did you mean \"{suggestion}\"?"),
            None => format!("expected one of {quoted}"),
        };
        if let Some(extra) = extra {
            hint = format!("{hint}; {extra}");
        }
        self.report(
            entry.offset,
            &entry.path,
            format!("`{}`: unknown value \"{text}\"", entry.path),
            Some(hint),
        );
        None
    }

    /// A list of non-empty strings.
    pub(super) fn string_list(
        &mut self,
        entry: &Entry<'_>,
        items_max: usize,
    ) -> Option<Vec<String>> {
        let items = self.list(entry)?;
        if items.len() > items_max {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` has {} items; at most {items_max} are allowed",
                    entry.path,
                    items.len()
                ),
                None,
            );
            return None;
        }
        let mut texts = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let element = Entry {
                item,
                path: format!("{}[{index}]", entry.path),
                offset: item.span().map_or(entry.offset, |span| span.start),
            };
            match self.text(&element) {
                Some(text) => texts.push(text),
                None => ok = false,
            }
        }
        ok.then_some(texts)
    }

    /// The elements of an inline list, each wrapped as an item so the value helpers apply.
    pub(super) fn list(&mut self, entry: &Entry<'_>) -> Option<Vec<Item>> {
        let Some(array) = entry.item.as_array() else {
            self.wrong_type(entry, "a list such as [\"a\", \"b\"]");
            return None;
        };
        Some(array.iter().cloned().map(Item::Value).collect())
    }

    // ----- Structure ---------------------------------------------------------------------------

    /// Reports keys the section does not know, suggesting the closest known key.
    pub(super) fn check_keys(&mut self, section: &Section<'_>, allowed: &[&str]) {
        for (key, item) in section.table.iter() {
            if allowed.contains(&key) {
                continue;
            }
            let offset = section
                .key_offset(key)
                .or_else(|| item.span().map(|span| span.start))
                .unwrap_or(section.anchor);
            // At the top level the keys are sections, and read as such: `[earning]`.
            let top_level = section.path.is_empty();
            let name: fn(&str) -> String = if top_level {
                |key| format!("[{key}]")
            } else {
                |key| format!("`{key}`")
            };
            let message = if top_level {
                format!("unknown section [{key}]")
            } else {
                format!("unknown key `{key}` in {}", section.label())
            };
            let hint = match closest(key, allowed) {
                Some(suggestion) => format!("did you mean {}?", name(suggestion)),
                None => format!(
                    "known {} here: {}",
                    if top_level { "sections" } else { "keys" },
                    allowed
                        .iter()
                        .map(|key| name(key))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.report(offset, &section.child_path(key), message, Some(hint));
        }
    }

    pub(super) fn required<'d>(&mut self, section: &Section<'d>, key: &str) -> Option<Entry<'d>> {
        let entry = section.entry(key);
        if entry.is_none() {
            self.report(
                section.anchor,
                &section.child_path(key),
                format!("missing required key `{key}` in {}", section.label()),
                None,
            );
        }
        entry
    }

    pub(super) fn required_section<'d>(
        &mut self,
        root: &Section<'d>,
        key: &str,
        example: &str,
    ) -> Option<Section<'d>> {
        if !root.table.contains_key(key) {
            self.report(
                0,
                key,
                format!("missing required section [{key}]"),
                Some(format!(
                    "add a section such as:\n    {}",
                    example.replace('\n', "\n    ")
                )),
            );
            return None;
        }
        self.optional_section(root, key)
    }

    pub(super) fn optional_section<'d>(
        &mut self,
        root: &Section<'d>,
        key: &str,
    ) -> Option<Section<'d>> {
        let entry = root.entry(key)?;
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type(&entry, &format!("a section ([{key}])"));
            return None;
        };
        Some(Section {
            table,
            anchor: entry.offset,
            path: entry.path,
        })
    }

    pub(super) fn wrong_type(&mut self, entry: &Entry<'_>, expected: &str) {
        self.wrong_type_hinted(entry, expected, None);
    }

    pub(super) fn wrong_type_hinted(
        &mut self,
        entry: &Entry<'_>,
        expected: &str,
        hint: Option<String>,
    ) {
        let found = describe_item(entry.item);
        self.report(
            entry.offset,
            &entry.path,
            format!("`{}` must be {expected}, found {found}", entry.path),
            hint,
        );
    }

    pub(super) fn report(
        &mut self,
        offset: usize,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        let (line, column) = line_column(self.source, offset);
        self.diagnostics.push(Diagnostic {
            line,
            column,
            path: path.to_owned(),
            message,
            hint,
        });
    }
}

/// Parses decimal text as TOML or a person writes it: optional sign, digits with optional `_`
/// separators, optional fraction and exponent. Rejects `inf` and `nan`.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let cleaned: String = text.trim().chars().filter(|c| *c != '_').collect();
    let cleaned = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    if cleaned.is_empty()
        || !cleaned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E'))
    {
        return None;
    }
    if cleaned.contains(['e', 'E']) {
        Decimal::from_scientific(cleaned).ok()
    } else {
        Decimal::from_str_exact(cleaned).ok()
    }
}

fn describe_item(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(value) => describe_value(value),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "a list of tables",
    }
}

pub(super) fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a decimal number",
        Value::Boolean(_) => "true/false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::InlineTable(_) => "a table",
    }
}

#[cfg(test)]
mod tests {

    use crate::program::parse_program;

    fn club_named(name: &str) -> String {
        format!(
            "[club]\nname = \"{name}\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\n\
             time_zone = \"UTC\"\n\n[earning]\npoints_per_unit = \"1\"\n\n\
             [expiry]\npolicy = \"never\"\n\n[returns]\npolicy = \"within_balance\"\n\n\
             [exit]\npolicy = \"forfeit\"\n"
        )
    }

    #[test]
    fn texts_members_read_refuse_bidi_controls_and_invisible_text() {
        for name in [
            "Club\\u202E",
            "\\u2067Club\\u2069",
            "\\u200B",
            "Cl\\u0007ub",
        ] {
            let errors = parse_program(&club_named(name)).unwrap_err();
            assert_eq!(errors[0].path, "club.name", "{name}: {errors:#?}");
        }
        let persian = parse_program(&club_named("باشگاه می\\u200Cخواهم")).unwrap();
        assert_eq!(persian.names.en.as_deref(), Some("باشگاه می\u{200C}خواهم"));
    }
}
