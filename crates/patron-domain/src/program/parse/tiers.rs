//! Reading a tier level's `benefits`: what members of the level get.
//!
//! Each element is either a plain string (the benefit's name in the default language) or a
//! table `{ name = ..., kind = "free_shipping" }` whose `name` is a localized text and whose
//! optional `kind` is a stable code (`[a-z0-9_]`, 1-32 characters) a till or a shop can act on.
//! Every problem is reported at its element.

use super::{Entry, Parser, Section};
use crate::program::{Benefit, Locale, Tier, TierReplacement};

impl Parser<'_> {
    /// `[tiers] replaced = { silver = "gold" }`: each removed tier (no level of this version)
    /// and the level its members move to (docs/PROGRAM.md, "Removing a tier").
    pub(super) fn tier_replacements(
        &mut self,
        entry: &Entry<'_>,
        levels: Option<&[Tier]>,
    ) -> Option<Vec<TierReplacement>> {
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type_hinted(
                entry,
                "a table of removed tier = tier its members move to",
                Some("for example replaced = { silver = \"gold\" }".to_owned()),
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        let codes: Vec<&str> = levels
            .unwrap_or_default()
            .iter()
            .map(|level| level.code.as_str())
            .collect();
        let mut replaced = Vec::new();
        let mut ok = true;
        for (from, _) in table.iter() {
            let Some(value) = section.entry(from) else {
                continue;
            };
            let offset = section.key_offset(from).unwrap_or(value.offset);
            if codes.contains(&from) {
                self.report(
                    offset,
                    &value.path,
                    format!(
                        "`{}`: tier \"{from}\" is still a level; only a removed tier is replaced",
                        value.path
                    ),
                    Some(format!(
                        "remove \"{from}\" from `replaced`, or its [[tiers.levels]] table"
                    )),
                );
                ok = false;
                continue;
            }
            let Some(to) = self.tier_code(&value) else {
                ok = false;
                continue;
            };
            if levels.is_some() && !codes.contains(&to.as_str()) {
                self.report(
                    value.offset,
                    &value.path,
                    format!("`{}`: \"{to}\" is not a level of this program", value.path),
                    Some(format!("the levels are {}", codes.join(", "))),
                );
                ok = false;
                continue;
            }
            replaced.push(TierReplacement {
                from: from.to_owned(),
                to,
            });
        }
        ok.then_some(replaced)
    }

    /// The `benefits` list of a level, at most `items_max` elements.
    pub(super) fn benefits(
        &mut self,
        entry: &Entry<'_>,
        items_max: usize,
        default_locale: Option<Locale>,
    ) -> Option<Vec<Benefit>> {
        let items = self.list(entry)?;
        if items.len() > items_max {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` has {} benefits; at most {items_max} are allowed",
                    entry.path,
                    items.len()
                ),
                None,
            );
            return None;
        }
        let mut benefits = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let element = Entry {
                item,
                path: format!("{}[{index}]", entry.path),
                offset: item.span().map_or(entry.offset, |span| span.start),
            };
            match self.benefit(&element, default_locale) {
                Some(benefit) => benefits.push(benefit),
                None => ok = false,
            }
        }
        ok.then_some(benefits)
    }

    fn benefit(&mut self, entry: &Entry<'_>, default_locale: Option<Locale>) -> Option<Benefit> {
        if entry.item.is_str() {
            let names = self.localized(entry, default_locale)?;
            return Some(Benefit { kind: None, names });
        }
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type_hinted(
                entry,
                "a string or a table { name = ..., kind = ... }",
                Some(
                    "for example { name = { en = \"Free shipping\" }, kind = \"free_shipping\" }"
                        .to_owned(),
                ),
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["name", "kind"]);
        let names = self
            .required(&section, "name")
            .and_then(|name| self.localized(&name, default_locale));
        let kind = match section.entry("kind") {
            Some(kind) => self.tier_code(&kind).map(Some),
            None => Some(None),
        };
        Some(Benefit {
            kind: kind?,
            names: names?,
        })
    }
}

#[cfg(test)]
mod tests {

    use crate::program::{Diagnostic, Program, parse_program};

    const HEAD: &str = "[club]\nname = { fa = \"باشگاه\", en = \"Club\" }\ndefault_locale = \"fa\"\n\
        locales = [\"fa\", \"en\"]\ncurrency = \"USD\"\ntime_zone = \"UTC\"\n\n\
        [earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n\
        [returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n\n\
        [tiers]\nbasis = \"visits\"\nwindow = \"calendar_year\"\n\n\
        [[tiers.levels]]\ncode = \"base\"\nname = \"پایه\"\nthreshold = 0\n\n\
        [[tiers.levels]]\ncode = \"gold\"\nname = \"طلایی\"\nthreshold = 10\n";

    fn parse(benefits: &str) -> Result<Program, Vec<Diagnostic>> {
        parse_program(&format!("{HEAD}benefits = {benefits}\n"))
    }

    #[test]
    fn benefits_are_plain_names_or_named_kinds() {
        let program = parse(
            "[\"ارسال رایگان\", { name = { fa = \"صندوق ویژه\", en = \"Priority till\" }, \
             kind = \"priority_service\" }, { name = \"هدیهٔ تولد\", kind = \"birthday_gift\" }]",
        )
        .unwrap();
        let benefits = &program.tiers.levels[1].benefits;
        assert_eq!(benefits.len(), 3);
        assert_eq!(benefits[0].kind, None);
        assert_eq!(benefits[0].names.fa.as_deref(), Some("ارسال رایگان"));
        assert_eq!(benefits[1].kind.as_deref(), Some("priority_service"));
        assert_eq!(benefits[1].names.en.as_deref(), Some("Priority till"));
        assert_eq!(benefits[2].kind.as_deref(), Some("birthday_gift"));
        assert!(program.tiers.levels[0].benefits.is_empty());
    }

    #[test]
    fn bad_benefits_are_reported_where_they_are() {
        let errors = parse(
            "[42, { name = { en = \"No Persian\" } }, { name = \"x\", kind = \"Free Shipping\" }, \
             { kind = \"gift\" }, { name = \"y\", colour = \"red\" }]",
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "tiers.levels[1].benefits[0]",
                "tiers.levels[1].benefits[1].name",
                "tiers.levels[1].benefits[2].kind",
                "tiers.levels[1].benefits[3].name",
                "tiers.levels[1].benefits[4].colour",
            ],
            "{errors:#?}"
        );
        assert!(
            errors[1].message.contains("default language"),
            "{errors:#?}"
        );
        assert!(errors[2].hint.as_deref().unwrap().contains("free_shipping"));
        let line = HEAD.lines().count() + 1;
        assert!(errors.iter().all(|error| error.line == line), "{errors:#?}");
    }

    #[test]
    fn at_most_fifty_benefits() {
        let many = vec!["\"x\""; 51].join(", ");
        let errors = parse(&format!("[{many}]")).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "tiers.levels[1].benefits");
    }
}
