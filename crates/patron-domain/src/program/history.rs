//! Whether a new version of a club's program may replace the current one, given the club's
//! history: a change must not reinterpret what already happened.
//!
//! - The currency, its minor unit, the time zone and the calendar are how every stored amount
//!   and instant is read (amounts are minor units of the currency; expiry instants, limits and
//!   tier windows are days and months in the zone and calendar). Once the club has any ledger
//!   history (a purchase, or any movement of points), changing one of them would reread the
//!   past in the new unit, so it is refused. A club without history may still change them.
//! - A tier that members hold (as their tier or as a manual floor) cannot just disappear: the
//!   new version names the level they move to in `[tiers] replaced`, and the apply moves them.
//!
//! The decision is pure: the store reports the facts ([`History`]), this module decides.

use super::{Diagnostic, Program, diagnostic::line_column};

/// What the club's stored data says about its past, as far as a program change cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// Any purchase or any points movement is recorded.
    pub has_ledger_history: bool,
    /// Every tier code some member holds, with how many members hold it (as their tier or as
    /// a tier floor).
    pub held_tiers: Vec<HeldTier>,
}

/// A tier code members hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTier {
    pub code: String,
    /// Members whose tier it is.
    pub members: i64,
    /// Members with a tier floor at it.
    pub floors: i64,
}

/// Members (and floors) to move from a removed tier to a level of the new version, in the unit
/// of work that applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierMove {
    pub from: String,
    pub to: String,
    pub members: i64,
    pub floors: i64,
}

/// Why a new version is refused: the setting, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Dotted path of the setting, e.g. `club.currency`.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Refusal {
    /// The refusal as a diagnostic located at its setting in `source` (the new program's
    /// text): the key's value, else its table, else the first line.
    pub fn locate(&self, source: &str) -> Diagnostic {
        let (line, column) = locate(source, &self.path);
        Diagnostic {
            line,
            column,
            path: self.path.clone(),
            message: self.message.clone(),
            hint: self.hint.clone(),
        }
    }
}

/// Whether `new` may replace `current` given `history`: the tier moves the apply must make, or
/// every reason it may not.
pub fn check_change(
    current: Option<&Program>,
    new: &Program,
    history: &History,
) -> Result<Vec<TierMove>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    if let Some(current) = current
        && history.has_ledger_history
    {
        refusals.extend(reinterpretations(current, new));
    }
    let mut moves = Vec::new();
    for held in &history.held_tiers {
        if (held.members == 0 && held.floors == 0) || new.tier(&held.code).is_some() {
            continue;
        }
        match new.tiers.replaced.iter().find(|r| r.from == held.code) {
            Some(replacement) => moves.push(TierMove {
                from: held.code.clone(),
                to: replacement.to.clone(),
                members: held.members,
                floors: held.floors,
            }),
            None => refusals.push(Refusal {
                path: "tiers.levels".to_owned(),
                message: format!(
                    "tier \"{}\" is removed, but {} hold it{}: say which level they move to",
                    held.code,
                    members(held.members),
                    if held.floors > 0 {
                        format!(" ({} as a tier floor)", members(held.floors))
                    } else {
                        String::new()
                    }
                ),
                hint: Some(format!(
                    "add to [tiers]: replaced = {{ {} = \"{}\" }} (or keep the level)",
                    held.code,
                    new.tiers
                        .levels
                        .first()
                        .map_or("member", |level| level.code.as_str())
                )),
            }),
        }
    }
    if refusals.is_empty() {
        Ok(moves)
    } else {
        Err(refusals)
    }
}

fn members(count: i64) -> String {
    if count == 1 {
        "1 member".to_owned()
    } else {
        format!("{count} members")
    }
}

/// The settings that say how the stored past is read, where `new` differs from `current`.
fn reinterpretations(current: &Program, new: &Program) -> Vec<Refusal> {
    let why = "the club has ledger history, which is read in it";
    let mut refusals = Vec::new();
    let mut refuse = |path: &str, what: &str, from: String, to: String, hint: &str| {
        refusals.push(Refusal {
            path: path.to_owned(),
            message: format!("`{path}`: the {what} cannot change from {from} to {to}: {why}"),
            hint: Some(hint.to_owned()),
        });
    };
    if current.currency.code != new.currency.code {
        refuse(
            "club.currency",
            "currency",
            current.currency.code.clone(),
            new.currency.code.clone(),
            "past purchases would be reread in the new currency; keep it (a new currency is a new club)",
        );
    } else if current.currency.minor_unit != new.currency.minor_unit {
        refuse(
            "club.currency.minor_unit",
            "currency's minor unit",
            current.currency.minor_unit.to_string(),
            new.currency.minor_unit.to_string(),
            "past amounts are stored in minor units and would be reread with the new number of decimals; keep it",
        );
    }
    if current.time_zone != new.time_zone {
        refuse(
            "club.time_zone",
            "time zone",
            format!("\"{}\"", current.time_zone),
            format!("\"{}\"", new.time_zone),
            "expiry instants, limits and tier windows were counted in it; keep it",
        );
    }
    if current.calendar != new.calendar {
        refuse(
            "club.calendar",
            "calendar",
            format!("{:?}", current.calendar).to_lowercase(),
            format!("{:?}", new.calendar).to_lowercase(),
            "months and years already counted (expiry, limits, tier years) were counted in it; keep it",
        );
    }
    refusals
}

/// The line and column of the setting at `path` (dotted keys) in `source`: its value, or the
/// nearest enclosing key or table that is written, or 1:1.
fn locate(source: &str, path: &str) -> (usize, usize) {
    let Ok(document) = toml_edit::Document::parse(source) else {
        return (1, 1);
    };
    let mut offset = None;
    let mut table: Option<&dyn toml_edit::TableLike> = Some(document.as_table());
    for key in path.split('.') {
        let Some((key_data, item)) = table.and_then(|t| t.get_key_value(key)) else {
            break;
        };
        offset = item
            .span()
            .or_else(|| key_data.span())
            .map(|span| span.start)
            .or(offset);
        table = item.as_table_like();
    }
    offset.map_or((1, 1), |offset| line_column(source, offset))
}

#[cfg(test)]
mod tests;
