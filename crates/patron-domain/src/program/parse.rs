//! Reading a program file: TOML text in, a validated [`Program`] or every problem found out.
//!
//! The document is walked by hand (no serde) so that one pass can report all problems, each at
//! the exact place it occurs: unknown keys (with a "did you mean"), wrong types, missing keys,
//! values out of range, and rules that span several settings (tier thresholds must increase, the
//! default language needs a name...). Each section parser returns `None` when it reported a
//! problem and keeps going, so later sections are still checked. Keep `docs/PROGRAM.md` in step
//! with the keys, defaults and limits here.

mod club;
mod country;
mod earning;
mod expressions;
mod limits;
mod rewards;
mod rules;
mod schedule;
mod segments;
mod targets;
mod tiers;
mod values;

use club::Club;
use tiers::default_tiers;
use toml_edit::{Document, Item, TableLike};

use super::diagnostic::line_column;
use super::{Cards, Diagnostic, Earning, ExitPolicy, Program, ReturnPolicy, Tiers};
use crate::expiry::{ExpiryPolicy, Pending};
use crate::shared::Rounding;

// Limits: every list and number in the file is bounded (see docs/PROGRAM.md).
const TEXT_CHARS_MAX: usize = 200;
const EXCLUDED_ITEMS_MAX: usize = 1_000;
const BENEFITS_MAX: usize = 50;
const TIER_LEVELS_MAX: usize = 20;
const TIER_CODE_CHARS_MAX: usize = 32;
const MINOR_UNIT_MAX: i64 = 4;
const PENDING_DAYS_MAX: i64 = 365;
const EXPIRY_DAYS_MAX: i64 = 3_650;
const EXPIRY_MONTHS_MAX: i64 = 120;
const ROLLING_MONTHS_MAX: i64 = 120;
const GRACE_DAYS_MAX: i64 = 365;
const CARD_PREFIX_DIGITS_MAX: usize = 6;
/// A real program is a few kilobytes; anything this large is a mistake (or an attack).
const SOURCE_BYTES_MAX: usize = 1024 * 1024;

/// Parses and validates a program file. On failure, returns every problem found, sorted by
/// position. A TOML syntax error stops the parse and is reported alone.
pub fn parse_program(source: &str) -> Result<Program, Vec<Diagnostic>> {
    if source.len() > SOURCE_BYTES_MAX {
        return Err(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the file is {} bytes; a program file may have at most {SOURCE_BYTES_MAX}",
                source.len()
            ),
            hint: None,
        }]);
    }
    let document = match Document::parse(source) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column) = line_column(source, offset);
            return Err(vec![Diagnostic {
                line,
                column,
                path: String::new(),
                message: format!("TOML syntax error: {}", error.message().trim()),
                hint: None,
            }]);
        }
    };
    let mut parser = Parser {
        source,
        diagnostics: Vec::new(),
    };
    let root = Section {
        table: document.as_table(),
        anchor: 0,
        path: String::new(),
    };
    let program = parser.program(&root);
    let mut diagnostics = parser.diagnostics;
    match program {
        Some(program) if diagnostics.is_empty() => Ok(program),
        _ => {
            if diagnostics.is_empty() {
                // Every `None` above comes with a report; this guards against a parser bug
                // turning into a silent failure.
                diagnostics.push(Diagnostic {
                    line: 1,
                    column: 1,
                    path: String::new(),
                    message: "the program could not be read (internal error: no details)".into(),
                    hint: None,
                });
            }
            diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
            Err(diagnostics)
        }
    }
}

/// A table (standard or inline) being read, with the place to point at when a key is missing.
struct Section<'d> {
    table: &'d dyn TableLike,
    /// Byte offset of the table's header, or of its key when it has no header of its own.
    anchor: usize,
    /// Dotted path, empty for the document root.
    path: String,
}

impl Section<'_> {
    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// How the section is named in messages: `[earning]` for a top-level section, `` `club.name` ``
    /// for a table inside one, `the top level` for the root.
    fn label(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else if self.path.contains(['.', '[']) {
            format!("`{}`", self.path)
        } else {
            format!("[{}]", self.path)
        }
    }
}

/// One key's value, located.
#[derive(Clone)]
struct Entry<'d> {
    item: &'d Item,
    path: String,
    /// Byte offset of the value (or of the key when the value has no span of its own).
    offset: usize,
}

struct Parser<'s> {
    source: &'s str,
    diagnostics: Vec<Diagnostic>,
}

const ROUNDINGS: &[(&str, Rounding)] = &[
    ("down", Rounding::Down),
    ("up", Rounding::Up),
    ("half_up", Rounding::HalfUp),
    ("half_even", Rounding::HalfEven),
];
/// The top-level sections a program file may have.
const SECTIONS: &[&str] = &[
    "club",
    "earning",
    "pending",
    "expiry",
    "returns",
    "exit",
    "tiers",
    "cards",
    "rules",
    "rewards",
    "targets",
    "analytics",
    "rfv",
    "segments",
    "limits",
];

/// The `from` and `until` of a rule or a reward: each `Some(None)` when absent, `None` when
/// reported.
type Window = (
    Option<Option<jiff::Timestamp>>,
    Option<Option<jiff::Timestamp>>,
);

/// The sections about points, each `None` when it reported a problem.
struct PointsSections {
    earning: Option<Earning>,
    pending: Option<Pending>,
    expiry: Option<ExpiryPolicy>,
    returns: Option<ReturnPolicy>,
    exit: Option<ExitPolicy>,
    tiers: Option<Tiers>,
    cards: Option<Cards>,
}

/// The sections of the catalog, each `None` when it reported a problem.
struct CatalogSections {
    rules: Option<Vec<crate::rules::EarningRule>>,
    rewards: Option<Vec<crate::rewards::Reward>>,
    rfv: Option<crate::segments::RfvSegments>,
    segments: Option<Vec<crate::segments::RuleSegment>>,
}

const RETURN_POLICIES: &[(&str, ReturnPolicy)] = &[
    ("only_pending", ReturnPolicy::OnlyPending),
    ("within_balance", ReturnPolicy::WithinBalance),
    ("unlimited", ReturnPolicy::Unlimited),
];
const EXIT_POLICIES: &[(&str, ExitPolicy)] = &[
    ("forfeit", ExitPolicy::Forfeit),
    ("keep_until_expiry", ExitPolicy::KeepUntilExpiry),
];

impl<'s> Parser<'s> {
    // ----- The program, section by section ---------------------------------------------------
    fn program(&mut self, root: &Section<'_>) -> Option<Program> {
        self.check_keys(root, SECTIONS);
        let club = match self.required_section(
            root,
            "club",
            "[club]\nname = \"...\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"UTC\"",
        ) {
            Some(section) => self.club(&section),
            None => Club::default(),
        };
        let points = self.points_sections(root, &club);
        let catalog = self.catalog_sections(root, &club, &points);
        let targets = match self.optional_section(root, "targets") {
            Some(section) => self.targets(&section),
            None => Some(super::Targets::default()),
        };
        let analytics = match self.optional_section(root, "analytics") {
            Some(section) => self.analytics(&section),
            None => Some(super::AnalyticsSettings::default()),
        };
        let limits_section = self.optional_section(root, "limits");
        let limits = self.limits(limits_section.as_ref(), club.currency.as_ref());

        Some(Program {
            names: club.names?,
            default_locale: club.default_locale?,
            locales: club.locales?,
            points_name: club.points_name?,
            currency: club.currency?,
            country: club.country?,
            time_zone: club.time_zone?,
            calendar: club.calendar?,
            earning: points.earning?,
            pending: points.pending?,
            expiry: points.expiry?,
            returns: points.returns?,
            exit: points.exit?,
            tiers: points.tiers?,
            cost_per_point: club.cost_per_point?,
            cards: points.cards?,
            rules: catalog.rules?,
            rewards: catalog.rewards?,
            rfv: catalog.rfv?,
            segments: catalog.segments?,
            targets: targets?,
            analytics: analytics?,
            limits: limits?,
        })
    }

    /// How points are earned, kept, taken back and counted for tiers: `[earning]`, `[pending]`,
    /// `[expiry]`, `[returns]`, `[exit]`, `[tiers]` and `[cards]`.
    fn points_sections(&mut self, root: &Section<'_>, club: &Club) -> PointsSections {
        let currency = club.currency.as_ref();
        let earning = self
            .required_section(root, "earning", "[earning]\npoints_per_unit = \"1\"")
            .and_then(|section| self.earning(&section, currency));
        let pending = match self.optional_section(root, "pending") {
            Some(section) => self.pending(&section),
            None => Some(Pending { days: 0 }),
        };
        let expiry = self
            .required_section(root, "expiry", "[expiry]\npolicy = \"never\"")
            .and_then(|section| self.expiry(&section, club.calendar.unwrap_or_default()));
        let returns = self.policy(
            root,
            "returns",
            "[returns]\npolicy = \"within_balance\"",
            RETURN_POLICIES,
        );
        let exit = self.policy(root, "exit", "[exit]\npolicy = \"forfeit\"", EXIT_POLICIES);
        let tiers = match self.optional_section(root, "tiers") {
            Some(section) => self.tiers(&section, currency, club.default_locale),
            None => Some(default_tiers()),
        };
        let cards = match self.optional_section(root, "cards") {
            Some(section) => self.cards(&section),
            None => Some(Cards {
                prefix: "9".to_owned(),
            }),
        };
        PointsSections {
            earning,
            pending,
            expiry,
            returns,
            exit,
            tiers,
            cards,
        }
    }

    /// A required section whose one key is `policy`, a word of `options`.
    fn policy<T: Copy>(
        &mut self,
        root: &Section<'_>,
        key: &str,
        example: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let section = self.required_section(root, key, example)?;
        self.check_keys(&section, &["policy"]);
        let entry = self.required(&section, "policy")?;
        self.choice(&entry, options)
    }

    /// What the club offers on top of the base earning: `[[rules]]`, `[[rewards]]`, `[rfv]`
    /// and `[[segments]]`.
    fn catalog_sections(
        &mut self,
        root: &Section<'_>,
        club: &Club,
        points: &PointsSections,
    ) -> CatalogSections {
        let currency = club.currency.as_ref();
        let rules = match root.entry("rules") {
            Some(entry) => self.rules(
                &entry,
                &rules::RuleContext {
                    currency,
                    default_locale: club.default_locale,
                    time_zone: club.time_zone.as_deref(),
                    tiers: points.tiers.as_ref(),
                    rounding: points.earning.as_ref().map(|earning| earning.rounding),
                },
            ),
            None => Some(Vec::new()),
        };
        let rewards = match root.entry("rewards") {
            Some(entry) => self.rewards(
                &entry,
                &rewards::RewardContext {
                    currency,
                    default_locale: club.default_locale,
                    time_zone: club.time_zone.as_deref(),
                    tiers: points.tiers.as_ref(),
                },
            ),
            None => Some(Vec::new()),
        };
        let rfv = match self.optional_section(root, "rfv") {
            Some(section) => self.rfv(&section, club.default_locale),
            None => Some(crate::segments::RfvSegments::default()),
        };
        let segments = match root.entry("segments") {
            Some(entry) => self.segments(&entry, club.default_locale, rfv.as_ref()),
            None => Some(Vec::new()),
        };
        CatalogSections {
            rules,
            rewards,
            rfv,
            segments,
        }
    }

    fn cards(&mut self, section: &Section<'_>) -> Option<Cards> {
        self.check_keys(section, &["prefix"]);
        let Some(entry) = section.entry("prefix") else {
            return Some(Cards {
                prefix: "9".to_owned(),
            });
        };
        if let Some(number) = entry.item.as_integer() {
            // Leading zeros matter in a card number, and TOML integers lose them.
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be a string of digits, found a whole number",
                    entry.path
                ),
                Some(format!("put it in quotes: prefix = \"{number}\"")),
            );
            return None;
        }
        let prefix = self.string(&entry)?;
        let digits = prefix.chars().count();
        if !(1..=CARD_PREFIX_DIGITS_MAX).contains(&digits)
            || !prefix.chars().all(|c| c.is_ascii_digit())
        {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 1 to {CARD_PREFIX_DIGITS_MAX} digits (0-9), found \"{prefix}\"",
                    entry.path
                ),
                None,
            );
            return None;
        }
        Some(Cards {
            prefix: prefix.to_owned(),
        })
    }
}

impl<'d> Section<'d> {
    /// The value under `key`, located.
    fn entry(&self, key: &str) -> Option<Entry<'d>> {
        let (key_data, item) = self.table.get_key_value(key)?;
        let offset = item
            .span()
            .or_else(|| key_data.span())
            .map_or(self.anchor, |span| span.start);
        Some(Entry {
            item,
            path: self.child_path(key),
            offset,
        })
    }

    fn key_offset(&self, key: &str) -> Option<usize> {
        self.table
            .key(key)
            .and_then(|key| key.span())
            .map(|span| span.start)
    }
}
