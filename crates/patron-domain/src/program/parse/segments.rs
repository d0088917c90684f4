//! Reading `[rfv]` (the RFV grid's segment names, and an optional replacement grid) and
//! `[[segments]]` (rule segments: a CEL condition over `member` and `now`).
//!
//! Checked like the rest of the file: unknown keys, types, a grid that is not 5 x 5, codes
//! that are not `[a-z0-9_]+`, names for codes the grid does not have, duplicate ids (rule
//! segments share one namespace with the grid's codes), and conditions, compiled here with
//! every CEL problem at its line and column, plus statistics the batch does not compute.

use super::{Entry, Parser, Section};
use crate::program::diagnostic::line_column;
use crate::rules::expr::{Purpose, Variable};
use crate::segments::{RfvSegments, RuleSegment, SCORES, STATISTICS, statistics_read};
use crate::shared::closest;
use crate::shared::{Locale, Localized};

/// At most this many rule segments: each one is evaluated for every member, nightly.
pub(super) const SEGMENTS_MAX: usize = 100;
const SEGMENT_ID_CHARS_MAX: usize = 64;

impl Parser<'_> {
    /// `[rfv]`: `grid` (optional: 5 rows R = 5..1 of 5 codes F = 1..5) and `names` (a table of
    /// code = localized name).
    pub(super) fn rfv(
        &mut self,
        section: &Section<'_>,
        default_locale: Option<Locale>,
    ) -> Option<RfvSegments> {
        self.check_keys(section, &["grid", "names"]);
        let mut rfv = RfvSegments::default();
        let mut ok = true;
        if let Some(entry) = section.entry("grid") {
            match self.rfv_grid(&entry) {
                Some(grid) => {
                    rfv.grid = grid;
                    // Names of default codes the new grid dropped would only confuse.
                    let codes: Vec<String> = rfv.codes().into_iter().map(str::to_owned).collect();
                    rfv.names.retain(|code, _| codes.contains(code));
                }
                None => ok = false,
            }
        }
        if let Some(entry) = section.entry("names") {
            let Some(table) = entry.item.as_table_like() else {
                self.wrong_type(
                    &entry,
                    "a table of segment names such as { champions = \"Our best\" }",
                );
                return None;
            };
            let names = Section {
                table,
                anchor: entry.offset,
                path: entry.path.clone(),
            };
            let codes: Vec<String> = rfv.codes().into_iter().map(str::to_owned).collect();
            for (code, _) in names.table.iter() {
                let Some(name_entry) = names.entry(code) else {
                    continue;
                };
                if !codes.iter().any(|c| c == code) {
                    let known: Vec<&str> = codes.iter().map(String::as_str).collect();
                    let hint = match closest(code, &known) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => format!("the grid's segments: {}", known.join(", ")),
                    };
                    self.report(
                        names.key_offset(code).unwrap_or(name_entry.offset),
                        &name_entry.path,
                        format!(
                            "`{}`: the RFV grid has no segment `{code}`",
                            name_entry.path
                        ),
                        Some(hint),
                    );
                    ok = false;
                    continue;
                }
                match self.localized(&name_entry, default_locale) {
                    Some(localized) => {
                        rfv.names.insert(code.to_owned(), localized);
                    }
                    None => ok = false,
                }
            }
        }
        ok.then_some(rfv)
    }

    fn rfv_grid(&mut self, entry: &Entry<'_>) -> Option<[[String; SCORES]; SCORES]> {
        let shape = |parser: &mut Self, entry: &Entry<'_>| {
            parser.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 5 rows (R = 5 first) of 5 segment codes (F = 1 first)",
                    entry.path
                ),
                Some(
                    "for example grid = [[\"new\", \"potential\", \"potential\", \"best\", \"best\"], ...]"
                        .to_owned(),
                ),
            );
        };
        let rows = self.list(entry)?;
        if rows.len() != SCORES {
            shape(self, entry);
            return None;
        }
        let mut grid: [[String; SCORES]; SCORES] = Default::default();
        let mut ok = true;
        for (r, row) in rows.iter().enumerate() {
            let row_entry = Entry {
                item: row,
                path: format!("{}[{r}]", entry.path),
                offset: row.span().map_or(entry.offset, |span| span.start),
            };
            let Some(codes) = self.string_list(&row_entry, SCORES) else {
                ok = false;
                continue;
            };
            if codes.len() != SCORES {
                shape(self, &row_entry);
                ok = false;
                continue;
            }
            for (f, code) in codes.into_iter().enumerate() {
                if !valid_id(&code) {
                    self.report(
                        row_entry.offset,
                        &format!("{}[{f}]", row_entry.path),
                        format!(
                            "`{}[{f}]` must be 1 to {SEGMENT_ID_CHARS_MAX} characters of a-z, 0-9 and _, found \"{code}\"",
                            row_entry.path
                        ),
                        None,
                    );
                    ok = false;
                }
                grid[r][f] = code;
            }
        }
        ok.then_some(grid)
    }

    /// `[[segments]]`: rule segments, in file order.
    pub(super) fn segments(
        &mut self,
        entry: &Entry<'_>,
        default_locale: Option<Locale>,
        rfv: Option<&RfvSegments>,
    ) -> Option<Vec<RuleSegment>> {
        let tables = self.tables(entry, "[[segments]]")?;
        if tables.len() > SEGMENTS_MAX {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "there are {} segments; at most {SEGMENTS_MAX} are allowed",
                    tables.len()
                ),
                None,
            );
            return None;
        }
        let mut segments = Vec::new();
        let mut ok = true;
        let mut seen: Vec<(String, usize)> = Vec::new();
        for table in &tables {
            match self.segment(table, default_locale, rfv, &mut seen) {
                Some(segment) => segments.push(segment),
                None => ok = false,
            }
        }
        ok.then_some(segments)
    }

    fn segment(
        &mut self,
        table: &Section<'_>,
        default_locale: Option<Locale>,
        rfv: Option<&RfvSegments>,
        seen: &mut Vec<(String, usize)>,
    ) -> Option<RuleSegment> {
        self.check_keys(table, &["id", "name", "condition"]);
        let id = self.required(table, "id").and_then(|entry| {
            let id = self.string(&entry)?.to_owned();
            if !valid_id(&id) {
                self.report(
                    entry.offset,
                    &entry.path,
                    format!(
                        "`{}` must be 1 to {SEGMENT_ID_CHARS_MAX} characters of a-z, 0-9 and _, found \"{id}\"",
                        entry.path
                    ),
                    None,
                );
                return None;
            }
            if let Some((_, first)) = seen.iter().find(|(known, _)| *known == id) {
                let (first_line, _) = line_column(self.source, *first);
                self.report(
                    entry.offset,
                    &entry.path,
                    format!("segment id \"{id}\" is used twice (first on line {first_line})"),
                    Some("ids must be unique: members, rewards and campaigns name segments by id".to_owned()),
                );
                return None;
            }
            if rfv.is_some_and(|rfv| rfv.contains(&id)) {
                self.report(
                    entry.offset,
                    &entry.path,
                    format!("segment id \"{id}\" is a segment of the RFV grid"),
                    Some("choose another id; RFV segments and rule segments share one list".to_owned()),
                );
                return None;
            }
            seen.push((id.clone(), entry.offset));
            Some(id)
        });
        let names: Option<Localized> = self
            .required(table, "name")
            .and_then(|entry| self.localized(&entry, default_locale));
        let condition = self.required(table, "condition").and_then(|entry| {
            let compiled = self.expression(
                &entry,
                Purpose::Condition,
                &[Variable::Member, Variable::Now],
            )?;
            let known: Vec<&str> = STATISTICS.iter().map(|(name, _)| *name).collect();
            let mut ok = true;
            for name in statistics_read(compiled.source()) {
                if !known.contains(&name) {
                    let hint = match closest(name, &known) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => format!("statistics: {}", known.join(", ")),
                    };
                    self.report(
                        entry.offset,
                        &entry.path,
                        format!(
                            "`{}`: unknown statistic `member.statistics.{name}`",
                            entry.path
                        ),
                        Some(hint),
                    );
                    ok = false;
                }
            }
            ok.then_some(compiled)
        });
        Some(RuleSegment::new(id?, names?, condition?))
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= SEGMENT_ID_CHARS_MAX
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
