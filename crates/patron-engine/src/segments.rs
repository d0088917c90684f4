//! Segments (docs/ANALYTICS.md, "Segments"): RFV runs as of a date, rule segments evaluated in
//! batch, the events segment moves record, and basket analysis over the purchase lines.
//!
//! The nightly `segments` job ([`Engine::run_segments`]) scores RFV first and then evaluates
//! the rule segments, so conditions can read the fresh scores (`member.statistics.rfv_r`).
//! A rule segment whose condition is in the SQL subset is one query
//! ([`Store::members_matching`](patron_store::Store::members_matching)); any other is
//! evaluated here, a page of members at a time, with the members narrowed first by the SQL
//! part of a top-level `&&` chain when it has one.
//!
//! The median gap between a member's purchase days (`median_gap_days`) is computed in the
//! batch from the purchase history, a page of members at a time, and not kept in
//! `member_stats`: a median cannot be updated from the previous median (a back-dated
//! purchase or a refund changes a gap in the middle of the sequence), so keeping it would
//! mean keeping every member's list of purchase days, which is the purchase history again.
//! Reading it once a night, only when some segment reads the statistic, costs one indexed
//! scan of the purchases and nothing on the purchase path.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
/// Which items basket pairs are made of (categories or SKUs).
pub use patron_analytics::basket::Level as BasketLevel;
use patron_analytics::basket::{BasketLog, Id, Level};
use patron_analytics::date::Day;
use patron_analytics::rfm::{self, RfmTotals};
use patron_domain::program::Program;
use patron_domain::rules::MemberFacts;
use patron_domain::segments::{
    self as domain, RuleSegment, SegmentStatistics, TOP_CATEGORIES, WINDOW_DAYS,
};
use patron_store::segments::{
    RfvCell, RfvRow, RfvRun, RfvSaved, SegmentCandidate, SegmentMember, SqlContext,
};
use patron_store::tenants::Tenant;

use crate::{Engine, EngineError, rules};

/// Members per page of the in-process evaluation.
const PAGE_MEMBERS: i64 = 2_000;

/// How a rule segment is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentPath {
    /// SQL when the condition is in the SQL subset, else in process.
    Auto,
    /// In SQL (an error for a condition outside the subset).
    Sql,
    /// In process, member by member, without the SQL prefilter (to check the SQL path).
    InProcess,
}

/// What evaluating one rule segment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSegmentReport {
    pub id: String,
    /// `sql`, `prefiltered` or `in_process`.
    pub path: &'static str,
    pub members: usize,
    pub entered: usize,
    pub left: usize,
    /// Members the condition failed for (counted as not in the segment).
    pub failures: u64,
}

/// What a segments run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentsReport {
    pub rfv: RfvSaved,
    pub rules: Vec<RuleSegmentReport>,
    /// Rule segments the program no longer has whose members were let go.
    pub removed: Vec<String>,
    /// Events recorded (RFV moves and rule segment entries and exits).
    pub events: u64,
}

impl SegmentsReport {
    /// A one-line summary (the job's result).
    pub fn summary(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{} {} (+{} -{})", r.id, r.members, r.entered, r.left))
            .collect();
        format!(
            "rfv run {} as of {}: {} members; rule segments: {}; {} events",
            self.rfv.run.id,
            self.rfv.run.as_of,
            self.rfv.run.members,
            if rules.is_empty() {
                "none".to_owned()
            } else {
                rules.join(", ")
            },
            self.events
        )
    }
}

/// An RFV run as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfvReport {
    pub run: RfvRun,
    /// All 25 cells, R = 5 first, then F = 1 first; empty cells have 0 members.
    pub cells: Vec<RfvCell>,
    /// Each segment of the grid (first-appearance order): code, members, monetary value.
    pub segments: Vec<(String, i64, i64)>,
}

/// A segment and its member count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    pub id: String,
    /// `rfv` or `rule`.
    pub kind: &'static str,
    pub members: i64,
}

/// A frequent pair of items.
#[derive(Debug, Clone, PartialEq)]
pub struct BasketPair {
    pub a: String,
    pub b: String,
    pub baskets_with_both: u64,
    pub support: f64,
    pub confidence_a_to_b: f64,
    pub confidence_b_to_a: f64,
    pub lift: f64,
}

/// The category most often bought next after a category.
#[derive(Debug, Clone, PartialEq)]
pub struct NextCategory {
    pub category: String,
    pub next: String,
    pub count: u64,
    pub share: f64,
}

/// Basket analysis over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct BasketReport {
    pub since: Timestamp,
    pub baskets: usize,
    pub members: usize,
    pub level: Level,
    pub min_support: f64,
    pub pairs: Vec<BasketPair>,
    pub next: Vec<NextCategory>,
}

/// A candidate's statistics as a segment's condition reads them: the stored ones, the median
/// gap from its purchase days, and its 180-day window (purchases, and how many of the club's
/// top categories it bought).
fn statistics_of(
    candidate: &SegmentCandidate,
    gaps: &BTreeMap<String, Vec<i64>>,
    window: &BTreeMap<String, (i64, BTreeSet<String>)>,
    top: &[String],
) -> SegmentStatistics {
    let (purchases_180d, categories) = window
        .get(&candidate.member_id)
        .map(|(n, set)| (*n, Some(set)))
        .unwrap_or((0, None));
    SegmentStatistics {
        purchases: candidate.purchases,
        purchase_days: candidate.purchase_days,
        spend_minor: candidate.spend_minor,
        first_purchase_at: candidate.first_purchase_at,
        last_purchase_at: candidate.last_purchase_at,
        last_purchase_day: candidate.last_purchase_day,
        median_gap_days: gaps
            .get(&candidate.member_id)
            .and_then(|days| domain::median_gap_days(days)),
        purchases_180d,
        top_categories_180d: categories.map_or(0, |set| {
            top.iter()
                .filter(|category| set.contains(*category))
                .count() as i64
        }),
        rfv: candidate.rfv,
    }
}

fn day_of(date: Date) -> i64 {
    Day::from_ymd(
        i32::from(date.year()),
        u32::try_from(date.month()).unwrap_or(1),
        u32::try_from(date.day()).unwrap_or(1),
    )
    .map_or(0, |day| i64::from(day.0))
}

fn facts_of(candidate: &SegmentCandidate, program: &Program) -> MemberFacts {
    let attributes =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&candidate.attributes)
            .map(|map| rules::facts_from_object(&map))
            .unwrap_or_default();
    MemberFacts {
        id: candidate.member_id.clone(),
        tier: candidate.tier.clone(),
        segments: candidate
            .rfv
            .map(|(r, f, _)| vec![program.rfv.code(r, f).to_owned()])
            .unwrap_or_default(),
        attributes,
        statistics: BTreeMap::new(),
        birth_date: candidate
            .birthday
            .as_deref()
            .and_then(|birthday| birthday.parse().ok()),
        enrolled_at: candidate.enrolled_at,
    }
}

impl Engine {
    /// Scores every active member with a counted purchase as of `as_of` (default: today in
    /// the club's time zone) and stores the run with each member's segment; the moves since
    /// the previous run become events (docs/ANALYTICS.md, "Segments").
    pub async fn run_rfv(
        &self,
        tenant: &Tenant,
        as_of: Option<Date>,
    ) -> Result<RfvSaved, EngineError> {
        let program = self.program(tenant).await?.program;
        let tz = program.tz();
        let now = self.now();
        let date = as_of.unwrap_or_else(|| now.to_zoned(tz.clone()).date());
        let until = date
            .tomorrow()
            .and_then(|d| d.to_zoned(tz.clone()))
            .map_err(|e| EngineError::invalid("as_of", e.to_string()))?
            .timestamp();
        let as_of_day = day_of(date);
        let mut inputs = self.store.rfv_inputs(tenant.id, until, &tz).await?;
        // Member-id order is the tie-breaker: sort by bytes, whatever the database collation.
        inputs.sort_by(|a, b| a.member_id.as_bytes().cmp(b.member_id.as_bytes()));
        let totals: Vec<RfmTotals> = inputs
            .iter()
            .map(|input| {
                RfmTotals::new(
                    Day(i32::try_from(input.last_day).unwrap_or(i32::MIN)),
                    u64::try_from(input.purchases).unwrap_or(0),
                    i128::from(input.monetary_minor),
                )
            })
            .collect();
        let scores = rfm::score(&totals, Day(i32::try_from(as_of_day).unwrap_or(0)));
        let rows: Vec<RfvRow> = inputs
            .iter()
            .zip(&scores)
            .map(|(input, score)| RfvRow {
                member_id: input.member_id.clone(),
                recency_days: score.recency_days,
                frequency: input.purchases,
                monetary_minor: input.monetary_minor,
                r: i64::from(score.r),
                f: i64::from(score.f),
                m: i64::from(score.m),
                segment: program.rfv.code(score.r, score.f).to_owned(),
            })
            .collect();
        Ok(self
            .store
            .save_rfv_run(tenant.id, &date.to_string(), as_of_day, &rows, now)
            .await?)
    }

    /// RFV as of `as_of`, then every rule segment (now), with the events of both.
    pub async fn run_segments(
        &self,
        tenant: &Tenant,
        as_of: Option<Date>,
    ) -> Result<SegmentsReport, EngineError> {
        let rfv = self.run_rfv(tenant, as_of).await?;
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let mut events = rfv.events;
        let mut reports = Vec::new();
        for segment in &program.segments {
            let (members, path, failures) = self
                .rule_segment_members(tenant, &program, segment, SegmentPath::Auto)
                .await?;
            let stored = self
                .store
                .rule_segment_members(tenant.id, &segment.id)
                .await?;
            let new: BTreeSet<&String> = members.iter().collect();
            let old: BTreeSet<&String> = stored.iter().collect();
            let entered: Vec<String> = new.difference(&old).map(|s| (*s).clone()).collect();
            let left: Vec<String> = old.difference(&new).map(|s| (*s).clone()).collect();
            events += self
                .store
                .apply_segment_changes(tenant.id, &segment.id, &entered, &left, now)
                .await?;
            reports.push(RuleSegmentReport {
                id: segment.id.clone(),
                path,
                members: members.len(),
                entered: entered.len(),
                left: left.len(),
                failures,
            });
        }
        let mut removed = Vec::new();
        for id in self.store.stored_rule_segments(tenant.id).await? {
            if program.segments.iter().any(|s| s.id == id) {
                continue;
            }
            let stored = self.store.rule_segment_members(tenant.id, &id).await?;
            events += self
                .store
                .apply_segment_changes(tenant.id, &id, &[], &stored, now)
                .await?;
            removed.push(id);
        }
        Ok(SegmentsReport {
            rfv,
            rules: reports,
            removed,
            events,
        })
    }

    /// The members a rule segment's condition holds for now (sorted by id), evaluated by
    /// `path`, without storing anything. For checks and tests: the job uses
    /// [`SegmentPath::Auto`].
    pub async fn evaluate_rule_segment(
        &self,
        tenant: &Tenant,
        segment_id: &str,
        path: SegmentPath,
    ) -> Result<Vec<String>, EngineError> {
        let program = self.program(tenant).await?.program;
        let segment = program
            .segments
            .iter()
            .find(|s| s.id == segment_id)
            .ok_or_else(|| EngineError::invalid("segment", format!("no segment {segment_id:?}")))?;
        Ok(self
            .rule_segment_members(tenant, &program, segment, path)
            .await?
            .0)
    }

    async fn rule_segment_members(
        &self,
        tenant: &Tenant,
        program: &Program,
        segment: &RuleSegment,
        path: SegmentPath,
    ) -> Result<(Vec<String>, &'static str, u64), EngineError> {
        let tz = program.tz();
        let now = self.now();
        let today = patron_store::stats::day_number(now, &tz);
        let run_id = self.store.rfv_run(tenant.id, None).await?.map(|run| run.id);
        let ctx = SqlContext {
            today,
            minor_unit: program.currency.minor_unit,
            run_id,
        };
        match (path, &segment.sql) {
            (SegmentPath::Auto | SegmentPath::Sql, Some(condition)) => {
                let mut members = self
                    .store
                    .members_matching(tenant.id, condition, ctx)
                    .await?;
                members.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                return Ok((members, "sql", 0));
            }
            (SegmentPath::Sql, None) => {
                return Err(EngineError::invalid(
                    "segment",
                    format!("the condition of {:?} has no SQL form", segment.id),
                ));
            }
            _ => {}
        }
        let prefilter = match path {
            SegmentPath::InProcess => None,
            _ => segment.prefilter.as_ref(),
        };
        let reads = |name: &str| segment.reads_statistic(name);
        let needs_gaps = reads("median_gap_days");
        let needs_window = reads("purchases_180d") || reads("top_categories_180d");
        let since = now
            .checked_sub((WINDOW_DAYS * 24).hours())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let top: Vec<String> = if reads("top_categories_180d") {
            self.store
                .top_categories(tenant.id, since, TOP_CATEGORIES)
                .await?
        } else {
            Vec::new()
        };
        let mut members = Vec::new();
        let mut failures = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .segment_candidates(tenant.id, after.as_deref(), PAGE_MEMBERS, prefilter, ctx)
                .await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break;
            };
            let gaps = if needs_gaps {
                self.store
                    .purchase_days_between(tenant.id, &first.member_id, &last.member_id, &tz)
                    .await?
            } else {
                BTreeMap::new()
            };
            let window = if needs_window {
                self.store
                    .window_categories_between(tenant.id, &first.member_id, &last.member_id, since)
                    .await?
            } else {
                BTreeMap::new()
            };
            for candidate in &page {
                let statistics = statistics_of(candidate, &gaps, &window, &top);
                let mut facts = facts_of(candidate, program);
                facts.statistics = statistics.facts(today, program.currency.minor_unit);
                match domain::evaluate(segment, &facts, now, &tz) {
                    Ok(true) => members.push(candidate.member_id.clone()),
                    Ok(false) => {}
                    Err(_) => failures += 1,
                }
            }
            if page.len() < PAGE_MEMBERS as usize {
                break;
            }
            after = Some(last.member_id.clone());
        }
        members.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let label = if prefilter.is_some() {
            "prefiltered"
        } else {
            "in_process"
        };
        Ok((members, label, failures))
    }

    /// The latest RFV run (or run `run`): its grid and segment totals. `None` when there is
    /// no such run.
    pub async fn rfv_report(
        &self,
        tenant: &Tenant,
        run: Option<i64>,
    ) -> Result<Option<RfvReport>, EngineError> {
        let program = self.program(tenant).await?.program;
        let Some(run) = self.store.rfv_run(tenant.id, run).await? else {
            return Ok(None);
        };
        self.report_of(tenant, &program, run).await.map(Some)
    }

    /// The RFV grid as it stood on `as_of` (a club-local date): the run with the latest
    /// as-of date on or before it. `None` when no run is that old.
    pub async fn rfv_report_as_of(
        &self,
        tenant: &Tenant,
        as_of: Date,
    ) -> Result<Option<RfvReport>, EngineError> {
        let program = self.program(tenant).await?.program;
        let Some(run) = self.store.rfv_run_as_of(tenant.id, day_of(as_of)).await? else {
            return Ok(None);
        };
        self.report_of(tenant, &program, run).await.map(Some)
    }

    /// A stored run's grid and segment totals, named by the program's grid.
    async fn report_of(
        &self,
        tenant: &Tenant,
        program: &Program,
        run: RfvRun,
    ) -> Result<RfvReport, EngineError> {
        let found = self.store.rfv_grid(tenant.id, run.id).await?;
        let mut cells = Vec::with_capacity(25);
        for r in (1..=5).rev() {
            for f in 1..=5 {
                cells.push(
                    found
                        .iter()
                        .find(|cell| cell.r == r && cell.f == f)
                        .cloned()
                        .unwrap_or(RfvCell {
                            r,
                            f,
                            members: 0,
                            monetary_minor: 0,
                        }),
                );
            }
        }
        let totals = self.store.rfv_segment_totals(tenant.id, run.id).await?;
        let mut segments: Vec<(String, i64, i64)> = program
            .rfv
            .codes()
            .into_iter()
            .map(|code| {
                let (members, value) = totals.get(code).copied().unwrap_or((0, 0));
                (code.to_owned(), members, value)
            })
            .collect();
        // A run made under an earlier grid may name segments the program no longer has.
        for (code, (members, value)) in &totals {
            if !segments.iter().any(|(known, _, _)| known == code) {
                segments.push((code.clone(), *members, *value));
            }
        }
        Ok(RfvReport {
            run,
            cells,
            segments,
        })
    }

    /// Every segment of the program with its members: the RFV segments (in the latest run),
    /// then the rule segments.
    pub async fn segments_overview(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<SegmentSummary>, EngineError> {
        let program = self.program(tenant).await?.program;
        let totals = match self.store.rfv_run(tenant.id, None).await? {
            Some(run) => self.store.rfv_segment_totals(tenant.id, run.id).await?,
            None => BTreeMap::new(),
        };
        let counts = self.store.rule_segment_counts(tenant.id).await?;
        let mut out: Vec<SegmentSummary> = program
            .rfv
            .codes()
            .into_iter()
            .map(|code| SegmentSummary {
                id: code.to_owned(),
                kind: "rfv",
                members: totals.get(code).map_or(0, |t| t.0),
            })
            .collect();
        out.extend(program.segments.iter().map(|segment| SegmentSummary {
            id: segment.id.clone(),
            kind: "rule",
            members: counts.get(&segment.id).copied().unwrap_or(0),
        }));
        Ok(out)
    }

    /// A page of a segment's members after `after`; `None` when the program has no such
    /// segment.
    pub async fn segment_members(
        &self,
        tenant: &Tenant,
        segment_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<SegmentMember>>, EngineError> {
        let program = self.program(tenant).await?.program;
        let run = if program.rfv.contains(segment_id) {
            match self.store.rfv_run(tenant.id, None).await? {
                Some(run) => Some(run.id),
                None => return Ok(Some(Vec::new())),
            }
        } else if program.segments.iter().any(|s| s.id == segment_id) {
            None
        } else {
            return Ok(None);
        };
        Ok(Some(
            self.store
                .list_segment_members(tenant.id, segment_id, run, after, limit)
                .await?,
        ))
    }

    /// A member's current segments: their RFV segment in the latest run and the rule
    /// segments they are in.
    pub async fn member_segments(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Vec<String>, EngineError> {
        Ok(self.store.member_segments(tenant.id, member_id).await?)
    }

    /// A member's events (segment moves), oldest first.
    pub async fn member_events(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Vec<patron_store::segments::MemberEvent>, EngineError> {
        Ok(self.store.member_events(tenant.id, member_id).await?)
    }

    /// Frequent pairs (support ≥ `min_support`, at most `top`) of categories or SKUs in the
    /// member purchases since `since`, and the category most often bought next after each
    /// category (patron-analytics' basket definitions).
    pub async fn baskets(
        &self,
        tenant: &Tenant,
        since: Timestamp,
        min_support: f64,
        level: Level,
        top: usize,
    ) -> Result<BasketReport, EngineError> {
        if !(min_support > 0.0 && min_support <= 1.0) {
            return Err(EngineError::invalid(
                "min_support",
                "must be a number above 0 and at most 1",
            ));
        }
        let program = self.program(tenant).await?.program;
        let lines = self
            .store
            .basket_lines(tenant.id, since, &program.tz())
            .await?;
        let mut log = BasketLog::new();
        for (member, document, day, category, sku) in &lines {
            log.add_line(
                Id::Text(member),
                Id::Text(document),
                Day(i32::try_from(*day).unwrap_or(0)),
                category,
                Some(sku),
            );
        }
        let baskets = log.finish();
        let report = baskets.frequent_pairs(level, min_support, Some(top));
        let pairs = report
            .pairs
            .iter()
            .map(|pair| BasketPair {
                a: pair.a.to_owned(),
                b: pair.b.to_owned(),
                baskets_with_both: pair.both,
                support: pair.support(),
                confidence_a_to_b: pair.confidence_a_to_b(),
                confidence_b_to_a: pair.confidence_b_to_a(),
                lift: pair.lift(),
            })
            .collect();
        let next = baskets
            .next_categories(Some(1))
            .iter()
            .map(|next| NextCategory {
                category: next.category.to_owned(),
                next: next.next.to_owned(),
                count: next.count,
                share: next.share(),
            })
            .collect();
        Ok(BasketReport {
            since,
            baskets: baskets.len(),
            members: baskets.members(),
            level,
            min_support,
            pairs,
            next,
        })
    }
}
