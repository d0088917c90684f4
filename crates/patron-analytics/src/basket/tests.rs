use super::*;
use proptest::prelude::*;

/// (member, document, day, category, sku)
type Line = (u64, &'static str, i32, &'static str, &'static str);

/// Two members, five baskets (see docs/ANALYTICS.md for the worked example).
const EXAMPLE: [Line; 11] = [
    (1, "D1", 1, "coffee", "B1"),
    (1, "D1", 1, "filters", "F1"),
    (1, "D2", 5, "filters", "F1"),
    (1, "D2", 5, "milk", "M1"),
    (1, "D3", 9, "coffee", "B2"),
    (1, "D3", 9, "filters", "F1"),
    (2, "D4", 2, "coffee", "B1"),
    (2, "D4", 2, "milk", "M1"),
    // The same SKU again, on a later day: counts once, and the basket's day stays 2.
    (2, "D4", 4, "coffee", "B1"),
    (2, "D5", 3, "filters", "F2"),
    // A line without a SKU still puts its category in the basket.
    (2, "D5", 3, "filters", ""),
];

fn log_of(lines: &[Line]) -> BasketLog {
    let mut log = BasketLog::new();
    for &(member, document, day, category, sku) in lines {
        log.add_line(
            Id::Number(member),
            Id::Text(document),
            Day(day),
            category,
            (!sku.is_empty()).then_some(sku),
        );
    }
    log
}

fn rows(report: &PairReport<'_>) -> Vec<(String, String, u64, u64, u64)> {
    report
        .pairs
        .iter()
        .map(|p| (p.a.into(), p.b.into(), p.both, p.with_a, p.with_b))
        .collect()
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() < 1e-12
}

#[test]
fn the_hand_computed_example() {
    let baskets = log_of(&EXAMPLE).finish();
    assert_eq!(baskets.len(), 5);
    assert_eq!(baskets.members(), 2);
    let s = |a: &str, b: &str, both, ca, cb| (a.to_string(), b.to_string(), both, ca, cb);

    // coffee in D1 D3 D4 (3), filters in D1 D2 D3 D5 (4), milk in D2 D4 (2).
    let all = baskets.frequent_pairs(Level::Category, 0.2, None);
    assert_eq!(
        rows(&all),
        [
            s("coffee", "filters", 2, 3, 4),
            s("coffee", "milk", 1, 3, 2),
            s("filters", "milk", 1, 4, 2)
        ]
    );
    let p = &all.pairs[0];
    assert!(close(p.support(), 0.4));
    assert!(close(p.confidence_a_to_b(), 2.0 / 3.0));
    assert!(close(p.confidence_b_to_a(), 0.5));
    assert!(close(p.lift(), 10.0 / 12.0));
    assert!(close(all.pairs[2].lift(), 0.625));
    let strict = baskets.frequent_pairs(Level::Category, 0.3, None);
    assert_eq!(rows(&strict), [s("coffee", "filters", 2, 3, 4)]);
    assert_eq!(strict.min_baskets, 2);
    assert_eq!(
        rows(&baskets.frequent_pairs(Level::Category, 0.2, Some(2))).len(),
        2
    );

    // SKUs: B1 in D1 D4, F1 in D1 D2 D3, M1 in D2 D4, B2 and F2 once.
    let skus = baskets.frequent_pairs(Level::Sku, 0.2, None);
    assert_eq!(
        rows(&skus),
        [
            s("B1", "F1", 1, 2, 3),
            s("B1", "M1", 1, 2, 2),
            s("B2", "F1", 1, 1, 3),
            s("F1", "M1", 1, 3, 2)
        ]
    );
    let pruned = baskets.frequent_pairs(Level::Sku, 0.4, None);
    assert_eq!((pruned.items, pruned.frequent_items), (5, 3));
    assert!(pruned.pairs.is_empty());

    // Member 1: D1 {coffee, filters} → D2 {filters, milk} → D3 {coffee, filters};
    // member 2: D4 (day 2) {coffee, milk} → D5 (day 3) {filters}.
    let next: Vec<(&str, &str, u64, u64)> = baskets
        .next_categories(None)
        .iter()
        .map(|n| (n.category, n.next, n.count, n.from))
        .collect();
    assert_eq!(
        next,
        [
            ("coffee", "filters", 2, 2),
            ("coffee", "milk", 1, 2),
            ("filters", "filters", 2, 2),
            ("filters", "coffee", 1, 2),
            ("filters", "milk", 1, 2),
            ("milk", "filters", 2, 2),
            ("milk", "coffee", 1, 2),
        ]
    );
    let top1: Vec<(&str, &str)> = baskets
        .next_categories(Some(1))
        .iter()
        .map(|n| (n.category, n.next))
        .collect();
    assert_eq!(
        top1,
        [
            ("coffee", "filters"),
            ("filters", "filters"),
            ("milk", "filters")
        ]
    );
}

#[test]
fn same_day_baskets_follow_document_order_numbers_first() {
    let mut log = BasketLog::new();
    log.add_line(Id::Number(1), Id::Text("b"), Day(0), "z", None);
    log.add_line(Id::Number(1), Id::Text("10"), Day(0), "y", None);
    log.add_line(Id::Number(1), Id::Number(9), Day(0), "x", None);
    log.add_line(Id::Number(1), Id::Text("a"), Day(0), "w", None);
    let baskets = log.finish();
    let next: Vec<(&str, &str)> = baskets
        .next_categories(None)
        .iter()
        .map(|n| (n.category, n.next))
        .collect();
    // 9 < 10 < "a" < "b".
    assert_eq!(next, [("w", "z"), ("x", "y"), ("y", "w")]);
}

#[test]
fn the_threshold_count_agrees_with_the_written_support() {
    assert_eq!(min_baskets(0.01, 300), 3);
    assert_eq!(min_baskets(0.01, 301), 4);
    assert_eq!(min_baskets(0.5, 4), 2);
    assert_eq!(min_baskets(1.0, 7), 7);
    assert_eq!(min_baskets(0.0, 7), 1);
    assert_eq!(min_baskets(0.1, 0), 1);
    for n in 1..500u64 {
        for s in [0.01, 0.05, 0.1, 0.3, 1.0 / 3.0, 0.7] {
            let c = min_baskets(s, n);
            assert!(c as f64 / n as f64 >= s || c > n, "{s} {n} {c}");
            assert!(c == 1 || ((c - 1) as f64 / n as f64) < s, "{s} {n} {c}");
        }
    }
}

/// Pairs counted the slow way, without pruning.
fn brute_force(lines: &[(u8, u8, u8, u8, u8)], min_support: f64) -> Vec<(String, String, u64)> {
    let mut baskets: std::collections::BTreeMap<(u8, u8), std::collections::BTreeSet<String>> =
        Default::default();
    for &(member, document, _, category, _) in lines {
        baskets
            .entry((member, document))
            .or_default()
            .insert(format!("c{category}"));
    }
    let n = baskets.len() as u64;
    let mut pairs: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for set in baskets.values() {
        let items: Vec<&String> = set.iter().collect();
        for i in 0..items.len() {
            for j in i + 1..items.len() {
                *pairs
                    .entry((items[i].clone(), items[j].clone()))
                    .or_default() += 1;
            }
        }
    }
    let mut out: Vec<(String, String, u64)> = pairs
        .into_iter()
        .filter(|&(_, c)| c as f64 / n as f64 >= min_support)
        .map(|((a, b), c)| (a, b, c))
        .collect();
    out.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    out
}

fn build(lines: &[(u8, u8, u8, u8, u8)]) -> BasketLog {
    let mut log = BasketLog::new();
    for &(member, document, day, category, sku) in lines {
        let member_text = format!("M{member}");
        let member = if member % 2 == 0 {
            Id::Number(u64::from(member))
        } else {
            Id::Text(&member_text)
        };
        let document_text = format!("R{document}");
        let document = if document % 3 == 0 {
            Id::Text(&document_text)
        } else {
            Id::Number(u64::from(document))
        };
        log.add_line(
            member,
            document,
            Day(i32::from(day)),
            &format!("c{category}"),
            Some(&format!("s{sku}")),
        );
    }
    log
}

type Outcome = (
    Vec<(String, String, u64, u64, u64)>,
    Vec<(String, String, u64, u64, u64)>,
    Vec<(String, String, u64, u64)>,
);

fn outcome(baskets: &Baskets, min_support: f64) -> Outcome {
    (
        rows(&baskets.frequent_pairs(Level::Category, min_support, None)),
        rows(&baskets.frequent_pairs(Level::Sku, min_support, None)),
        baskets
            .next_categories(None)
            .iter()
            .map(|n| (n.category.into(), n.next.into(), n.count, n.from))
            .collect(),
    )
}

proptest! {
    #[test]
    fn measures_are_in_range_and_consistent(
        lines in prop::collection::vec((0u8..6, 0u8..30, 0u8..20, 0u8..8, 0u8..15), 1..200),
        min_support in 0.0f64..0.5,
    ) {
        let baskets = build(&lines).finish();
        for level in [Level::Category, Level::Sku] {
            let report = baskets.frequent_pairs(level, min_support, None);
            for p in &report.pairs {
                prop_assert!(p.a < p.b);
                for v in [p.support(), p.confidence_a_to_b(), p.confidence_b_to_a()] {
                    prop_assert!((0.0..=1.0).contains(&v), "{p:?}");
                }
                prop_assert!(p.support() >= min_support);
                // Lift is symmetric: confidence(A→B)/support(B) = confidence(B→A)/support(A).
                let n = p.baskets as f64;
                let one = p.confidence_a_to_b() / (p.with_b as f64 / n);
                let other = p.confidence_b_to_a() / (p.with_a as f64 / n);
                prop_assert!((one - other).abs() < 1e-9 * one.max(1.0));
                prop_assert!((p.lift() - one).abs() < 1e-9 * one.max(1.0));
            }
            prop_assert!(report.pairs.windows(2).all(|w| w[0].both >= w[1].both));
        }
        prop_assert_eq!(
            rows(&baskets.frequent_pairs(Level::Category, min_support, None))
                .into_iter()
                .map(|(a, b, c, _, _)| (a, b, c))
                .collect::<Vec<_>>(),
            brute_force(&lines, min_support)
        );
        for n in baskets.next_categories(None) {
            prop_assert!(n.count <= n.from && (0.0..=1.0).contains(&n.share()));
        }
    }

    #[test]
    fn results_do_not_depend_on_line_order_or_threads(
        lines in prop::collection::vec((0u8..6, 0u8..30, 0u8..20, 0u8..8, 0u8..15), 1..200),
        seed in any::<u64>(),
        split in 0usize..200,
        min_support in 0.0f64..0.3,
    ) {
        let first = outcome(&build(&lines).finish(), min_support);
        let mut shuffled = lines.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        // Two "threads" read the two halves of the shuffled lines.
        let split = split.min(shuffled.len());
        let mut log = build(&shuffled[split..]);
        log.merge(build(&shuffled[..split]));
        let baskets = log.finish();
        prop_assert_eq!(&first, &outcome(&baskets, min_support));
        // The hash-map counters (many frequent items) count the same as the dense ones.
        let sparse = (
            rows(&baskets.frequent_pairs_with(Level::Category, min_support, None, 0)),
            rows(&baskets.frequent_pairs_with(Level::Sku, min_support, None, 0)),
            baskets
                .next_categories_with(None, 0)
                .iter()
                .map(|n| (n.category.into(), n.next.into(), n.count, n.from))
                .collect(),
        );
        prop_assert_eq!(&first, &sparse);
    }
}
