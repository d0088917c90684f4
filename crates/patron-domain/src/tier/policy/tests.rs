use jiff::civil::DateTime;
use jiff::{SignedDuration, ToSpan};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::program::{Localized, Tier, TierBasis};

const ZONE: &str = "Asia/Tehran";

fn tz() -> Calendar {
    Calendar::gregorian(jiff::tz::TimeZone::get(ZONE).unwrap())
}

fn ladder(window: TierWindow, grace_days: u32) -> Tiers {
    let level = |code: &str, threshold| Tier {
        code: code.into(),
        names: Localized::default(),
        threshold,
        multiplier: Decimal::ONE,
        benefits: Vec::new(),
    };
    Tiers {
        basis: TierBasis::PointsEarned,
        window,
        downgrade: DowngradePolicy::EndOfPeriod { grace_days },
        levels: vec![level("base", 0), level("silver", 10), level("gold", 25)],
        replaced: Vec::new(),
    }
}

fn at(local: &str) -> Timestamp {
    local
        .parse::<DateTime>()
        .unwrap()
        .to_zoned(tz().tz)
        .unwrap()
        .timestamp()
}

/// Purchases: when, and the metric each adds.
type History = Vec<(Timestamp, i64)>;

fn count(history: &History, span: MetricSpan) -> i64 {
    history
        .iter()
        .filter(|(when, _)| span.start.is_none_or(|start| *when >= start) && *when <= span.end)
        .map(|(_, amount)| amount)
        .sum()
}

fn counted(
    tiers: &Tiers,
    history: &History,
    holding: Holding<'_>,
    now: Timestamp,
) -> Vec<(MetricSpan, i64)> {
    spans(tiers, &tz(), holding, now)
        .into_iter()
        .map(|span| (span, count(history, span)))
        .collect()
}

fn holding<'a>(tier: &'a str, since: Timestamp, floor: Option<&'a Floor>) -> Holding<'a> {
    Holding { tier, since, floor }
}

fn target_at(
    tiers: &Tiers,
    history: &History,
    holding: Holding<'_>,
    now: Timestamp,
) -> Option<String> {
    target(
        tiers,
        &tz(),
        holding,
        &counted(tiers, history, holding, now),
        now,
    )
}

fn review_at(
    tiers: &Tiers,
    history: &History,
    holding: Holding<'_>,
    now: Timestamp,
) -> Option<TierReview> {
    review(
        tiers,
        &tz(),
        holding,
        &counted(tiers, history, holding, now),
        now,
    )
}

#[test]
fn calendar_year_downgrades_after_new_year_plus_grace() {
    let tiers = ladder(TierWindow::CalendarYear, 30);
    let since = at("2025-03-01T10:00");
    let history = vec![(at("2025-03-01T10:00"), 25), (at("2026-02-10T12:00"), 12)];
    let gold = holding("gold", since, None);
    // During 2026, with 12 points of 25: the review is on 31 January 2027 (1 January +
    // 30 days), down to silver, 13 points short by the end of 2026.
    let review = review_at(&tiers, &history, gold, at("2026-06-01T00:00")).unwrap();
    assert_eq!(
        review,
        TierReview {
            at: at("2027-01-31T00:00"),
            to: "silver".into(),
            needed: 13,
        }
    );
    // Nothing moves before then; at it, the member goes down to silver.
    assert_eq!(
        target_at(&tiers, &history, gold, at("2027-01-30T23:59")),
        None
    );
    assert_eq!(
        target_at(&tiers, &history, gold, review.at),
        Some("silver".into())
    );
    // In the grace period the review is still announced, with what the new year needs.
    let in_grace = review_at(&tiers, &history, gold, at("2027-01-10T00:00")).unwrap();
    assert_eq!((in_grace.at, in_grace.needed), (review.at, 25));
    // A member who reached gold in 2026 keeps it through 2027's review.
    let fresh = holding("gold", at("2026-05-01T00:00"), None);
    assert_eq!(
        target_at(&tiers, &history, fresh, at("2026-12-31T00:00")),
        None
    );
}

#[test]
fn rolling_window_reviews_at_the_end_of_each_tier_term() {
    let tiers = ladder(TierWindow::Rolling { months: 12 }, 14);
    let since = at("2025-05-20T09:00");
    let history = vec![(at("2025-05-20T08:00"), 25), (at("2025-11-01T09:00"), 5)];
    let gold = holding("gold", since, None);
    // The term ends 2026-05-20 09:00; of what was bought, only November's 5 still counts
    // then: 20 more keep gold, else the member falls to base (5 is below silver too).
    let review = review_at(&tiers, &history, gold, at("2026-01-15T00:00")).unwrap();
    assert_eq!(review.at, at("2026-06-03T09:00"));
    assert_eq!((review.to.as_str(), review.needed), ("base", 20));
    // A short metric mid-term changes nothing.
    assert_eq!(
        target_at(&tiers, &history, gold, at("2026-05-01T00:00")),
        None
    );
    assert_eq!(
        target_at(&tiers, &history, gold, review.at),
        Some("base".into())
    );
    // Bought enough during the grace: kept for the next term.
    let mut rescued = history.clone();
    rescued.push((at("2026-05-25T12:00"), 20));
    assert_eq!(target_at(&tiers, &rescued, gold, review.at), None);
    assert_eq!(
        target_at(&tiers, &rescued, gold, at("2026-12-01T00:00")),
        None
    );
}

#[test]
fn a_floor_holds_the_tier_and_grace_runs_from_its_end() {
    let tiers = ladder(TierWindow::CalendarYear, 30);
    let since = at("2024-01-10T00:00");
    let history: History = vec![(at("2025-06-01T00:00"), 3)];
    let floor = Floor {
        tier: "gold".into(),
        until: Some(at("2026-03-01T00:00")),
    };
    let gold = holding("gold", since, Some(&floor));
    // 2025 was short; without the floor the member would go down on 31 January 2026.
    assert_eq!(
        target_at(
            &tiers,
            &history,
            holding("gold", since, None),
            at("2026-02-01T00:00")
        ),
        Some("base".into())
    );
    // With it, not before 1 March + 30 days.
    assert_eq!(
        target_at(&tiers, &history, gold, at("2026-03-30T00:00")),
        None
    );
    assert_eq!(
        target_at(&tiers, &history, gold, at("2026-03-31T00:00")),
        Some("base".into())
    );
    let review = review_at(&tiers, &history, gold, at("2026-02-01T00:00")).unwrap();
    assert_eq!(
        (review.at, review.to.as_str()),
        (at("2026-03-31T00:00"), "base")
    );
    // A floor above the current tier raises the member; an endless floor means no review.
    let forever = Floor {
        tier: "silver".into(),
        until: None,
    };
    assert_eq!(
        target_at(
            &tiers,
            &history,
            holding("base", since, Some(&forever)),
            at("2026-02-01T00:00")
        ),
        Some("silver".into())
    );
    assert_eq!(
        review_at(
            &tiers,
            &history,
            holding("silver", since, Some(&forever)),
            at("2026-02-01T00:00")
        ),
        None
    );
    // A lower floor only limits the fall.
    let silver_floor = Floor {
        tier: "silver".into(),
        until: None,
    };
    assert_eq!(
        target_at(
            &tiers,
            &history,
            holding("gold", since, Some(&silver_floor)),
            at("2026-02-01T00:00")
        ),
        Some("silver".into())
    );
    // Upgrades past the floor still apply.
    let rich: History = vec![(at("2026-02-01T00:00"), 30)];
    assert_eq!(
        target_at(
            &tiers,
            &rich,
            holding("silver", since, Some(&forever)),
            at("2026-02-01T00:00")
        ),
        Some("gold".into())
    );
}

#[test]
fn never_and_lifetime_have_no_review() {
    let mut tiers = ladder(TierWindow::CalendarYear, 0);
    tiers.downgrade = DowngradePolicy::Never;
    let gold = holding("gold", at("2020-01-01T00:00"), None);
    assert_eq!(
        review_at(&tiers, &Vec::new(), gold, at("2026-01-01T00:00")),
        None
    );
    assert_eq!(
        target_at(&tiers, &Vec::new(), gold, at("2026-06-01T00:00")),
        None
    );
    let lifetime = ladder(TierWindow::Lifetime, 0);
    assert_eq!(
        review_at(&lifetime, &Vec::new(), gold, at("2026-01-01T00:00")),
        None
    );
}

fn window_strategy() -> impl Strategy<Value = TierWindow> {
    prop_oneof![
        Just(TierWindow::CalendarYear),
        (1_u32..=24).prop_map(|months| TierWindow::Rolling { months }),
    ]
}

proptest! {
    // Many random histories describe a member the nightly pass would already have moved;
    // they are skipped.
    #![proptest_config(ProptestConfig {
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    })]

    /// The review is exact: nothing moves before it; at it the member falls to the tier it
    /// names; buying exactly `needed` now keeps the tier at it. With no review, the member
    /// is still in their tier at the next period's review instant.
    #[test]
    fn the_review_says_what_the_nightly_pass_will_do(
        window in window_strategy(),
        grace in 0_u32..60,
        gold in any::<bool>(),
        since_days in 0_i64..900,
        now_hours in 0_i64..(3 * 365 * 24),
        purchases in proptest::collection::vec((0_i64..1300, 0_i64..12), 0..12),
    ) {
        // A grace longer than a term leaves no time to act on a review.
        if let TierWindow::Rolling { months } = window {
            prop_assume!(grace < 28 * months);
        }
        let tiers = ladder(window, grace);
        let now = at("2024-01-01T00:00") + SignedDuration::from_hours(now_hours);
        let since = now - SignedDuration::from_hours(24 * since_days);
        let history: History = purchases
            .iter()
            .map(|(days_ago, amount)| (now - SignedDuration::from_hours(24 * days_ago), *amount))
            .collect();
        let code = if gold { "gold" } else { "silver" };
        let member = holding(code, since, None);
        // A member the nightly pass would have moved down already is not a state to review.
        let cal = tz();
        let past_reviews: Vec<Timestamp> = match window {
            TierWindow::Rolling { months } => term_ends(since, months, &cal)
                .filter_map(|end| add_days(end, grace, &cal))
                .take_while(|over| *over <= now)
                .collect(),
            _ => (2020..=2027)
                .filter_map(|year| add_days(at(&format!("{year}-01-01T00:00")), grace, &cal))
                .filter(|over| *over > since && *over <= now)
                .collect(),
        };
        for instant in past_reviews.into_iter().chain([now]) {
            prop_assume!(target_at(&tiers, &history, member, instant).is_none());
        }
        match review_at(&tiers, &history, member, now) {
            Some(review) => {
                prop_assert!(review.at > now);
                prop_assert!(review.needed > 0);
                prop_assert!(review.at >= now);
                prop_assert_eq!(target_at(&tiers, &history, member, review.at), Some(review.to.clone()));
                prop_assert_eq!(target_at(&tiers, &history, member, review.at - SignedDuration::from_micros(1)), None);
                let mut kept = history.clone();
                kept.push((now, review.needed));
                prop_assert_eq!(target_at(&tiers, &kept, member, review.at), None);
                if review.needed > 1 {
                    let mut short = history.clone();
                    short.push((now, review.needed - 1));
                    prop_assert!(target_at(&tiers, &short, member, review.at).is_some());
                }
            }
            None => {
                for instant in review_instants(&tiers, &cal, member, now) {
                    prop_assert_eq!(target_at(&tiers, &history, member, instant), None);
                }
            }
        }
    }

    /// A floor is never undercut while it lasts.
    #[test]
    fn a_floor_is_never_undercut(
        window in window_strategy(),
        grace in 0_u32..60,
        floor_level in 0_usize..3,
        current in 0_usize..3,
        later_days in 0_i64..800,
        purchases in proptest::collection::vec((0_i64..1300, 0_i64..12), 0..12),
    ) {
        let tiers = ladder(window, grace);
        let now = at("2026-01-01T00:00");
        let history: History = purchases
            .iter()
            .map(|(days_ago, amount)| (now - SignedDuration::from_hours(24 * days_ago), *amount))
            .collect();
        let floor = Floor {
            tier: tiers.levels[floor_level].code.clone(),
            until: Some(now + 400.days().to_duration(jiff::SpanRelativeTo::days_are_24_hours()).unwrap()),
        };
        let member = holding(&tiers.levels[current].code, now - SignedDuration::from_hours(24 * 500), Some(&floor));
        let later = now + SignedDuration::from_hours(24 * later_days);
        let level = |code: &str| tiers.levels.iter().position(|tier| tier.code == code).unwrap();
        let after = target_at(&tiers, &history, member, later).map_or(current, |to| level(&to));
        if floor.active_at(later) {
            prop_assert!(after >= floor_level);
        }
    }
}
