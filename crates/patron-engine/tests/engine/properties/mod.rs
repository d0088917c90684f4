//! Property tests (docs/LEDGER.md#invariants): random sequences of enroll, earn (posted or
//! pending), post (clock + jobs), void, redeem, hold/capture/release, reverse, refund (partial
//! and full), adjust, transfer, expire and exit, on every backend, under several programs.
//!
//! After every step the store's own verification must be clean, and every member's balance
//! must equal what an independent in-test model of lots, debt, pending points and holds
//! predicts. Every rejection the store gives must be the one the model predicts, and vice
//! versa.
//!
//! One database per backend per test, a new tenant per case. Written as plain `#[test]`s that
//! drive a tokio runtime, since proptest's runner is synchronous.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::{SignedDuration, Timestamp};
use patron_domain::expiry;
use patron_domain::program::{ExitPolicy, Program, ReturnPolicy};
use patron_engine::{
    AdjustRequest, Engine, EngineError, EnrollRequest, ManualClock, ProfileFields, RedeemRequest,
    Replayable, TransferRequest,
};
use patron_store::Rejection;
use patron_store::redemptions::ExpiringPoints;
use patron_store::tenants::Tenant;
use patron_store::testing;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{label, program, purchase_request, refund_request, start};

/// Cases per backend per program (`PATRON_PROPTEST_CASES` overrides it for longer local
/// runs), and steps per case.
const CASES: u32 = 16;
const STEPS_MAX: usize = 40;

/// How far an `Advance` step moves the clock.
const ADVANCE_HOURS: [i64; 5] = [1, 25, 4 * 24, 13 * 24, 40 * 24];
/// Hold lengths: one that any advance outlives, one that spans several advances.
const HOLD_MINUTES: [i64; 2] = [60, 3 * 24 * 60];

static TENANTS: AtomicUsize = AtomicUsize::new(0);

/// How many points an operation names: mostly a share of what there is (so that most
/// operations succeed), sometimes a fixed number (so that some are refused).
#[derive(Debug, Clone, Copy)]
enum Points {
    /// Percent (1 to 110) of the base, at least 1.
    Share(i64),
    Exactly(i64),
}

impl Points {
    fn of(self, base: i64) -> i64 {
        match self {
            Points::Share(percent) => (base.max(0) * percent / 100).max(1),
            Points::Exactly(points) => points,
        }
    }
}

fn points() -> impl Strategy<Value = Points> {
    prop_oneof![3 => (1i64..=110).prop_map(Points::Share), 1 => (1i64..=80).prop_map(Points::Exactly)]
}

#[derive(Debug, Clone)]
enum Op {
    Enroll,
    Purchase {
        member: usize,
        quantity: i64,
        unit_minor: i64,
    },
    /// `quantity` None: a full refund of what remains.
    Refund {
        purchase: usize,
        quantity: Option<i64>,
    },
    /// `points` of the member's spendable balance.
    Redeem {
        member: usize,
        points: Points,
        hold: Option<usize>,
    },
    /// `points` of what is held; None: capture everything held.
    Capture {
        redemption: usize,
        points: Option<Points>,
    },
    Release {
        redemption: usize,
    },
    Reverse {
        redemption: usize,
    },
    /// A credit of `points`, or a debit of `points` of the spendable balance.
    Adjust {
        member: usize,
        credit: bool,
        points: Points,
    },
    /// `points` of the sender's spendable balance, to themselves when `to` is 0, otherwise to
    /// another member.
    Transfer {
        from: usize,
        to: usize,
        points: Points,
    },
    Advance {
        step: usize,
    },
    Exit {
        member: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Enroll),
        10 => (0usize..6, 1i64..=3, 50i64..=3000).prop_map(|(member, quantity, unit_minor)| Op::Purchase { member, quantity, unit_minor }),
        3 => (0usize..12, proptest::option::of(1i64..=3)).prop_map(|(purchase, quantity)| Op::Refund { purchase, quantity }),
        6 => (0usize..6, points(), proptest::option::weighted(0.5, 0usize..HOLD_MINUTES.len()))
            .prop_map(|(member, points, hold)| Op::Redeem { member, points, hold }),
        3 => (0usize..8, proptest::option::of(points())).prop_map(|(redemption, points)| Op::Capture { redemption, points }),
        2 => (0usize..8).prop_map(|redemption| Op::Release { redemption }),
        1 => (0usize..8).prop_map(|redemption| Op::Reverse { redemption }),
        2 => (0usize..6, any::<bool>(), points()).prop_map(|(member, credit, points)| Op::Adjust { member, credit, points }),
        2 => (0usize..6, 0usize..8, points()).prop_map(|(from, to, points)| Op::Transfer { from, to, points }),
        4 => (0usize..ADVANCE_HOURS.len()).prop_map(|step| Op::Advance { step }),
        1 => (0usize..6).prop_map(|member| Op::Exit { member }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 8..=STEPS_MAX)
}

// The model: `model.rs`.

mod model;
use model::*;

// ----- running a case -----

struct Harness {
    engine: Engine,
    clock: ManualClock,
    label: &'static str,
}

fn ok<T: std::fmt::Debug>(
    what: &str,
    result: Result<Replayable<T>, EngineError>,
) -> Result<T, TestCaseError> {
    match result {
        Ok(answer) => Ok(answer.value),
        Err(error) => Err(TestCaseError::fail(format!(
            "{what}: expected success, got {error:?}"
        ))),
    }
}

fn rejected<T: std::fmt::Debug>(
    what: &str,
    result: Result<Replayable<T>, EngineError>,
    expected: &Rejection,
) -> Result<(), TestCaseError> {
    match result {
        Err(EngineError::Rejected(rejection)) if &rejection == expected => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "{what}: expected {expected:?}, got {other:?}"
        ))),
    }
}

struct Case<'a> {
    harness: &'a Harness,
    tenant: Tenant,
    model: Model,
}

impl Case<'_> {
    fn engine(&self) -> &Engine {
        &self.harness.engine
    }

    fn member_index(&self, n: usize) -> usize {
        n % self.model.members.len()
    }

    /// Mostly a redemption in one of the `wanted` states (so that captures, releases and
    /// reversals mostly succeed), sometimes any (so that resolving twice is tried too).
    fn pick_redemption(&self, n: usize, wanted: &[Status]) -> usize {
        let candidates: Vec<usize> = (0..self.model.redemptions.len())
            .filter(|&r| wanted.contains(&self.model.redemptions[r].status))
            .collect();
        if candidates.is_empty() || n.is_multiple_of(4) {
            n % self.model.redemptions.len()
        } else {
            candidates[n % candidates.len()]
        }
    }

    async fn enroll(&mut self) -> Result<(), TestCaseError> {
        let n = self.model.members.len();
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some(format!("member-{n}")),
                ..ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        let member = ok(
            "enroll",
            self.engine().enroll(&self.tenant, &request, None).await,
        )?;
        self.model.members.push(MemberModel {
            id: member.id,
            lots: Vec::new(),
            debt: 0,
            exited: false,
            inactive_at: None,
            rule_day: None,
        });
        // Under [`RULES`], the join gift is credited at once, with a lot.
        if !self.model.program.rules.is_empty() {
            let m = self.model.members.len() - 1;
            let expires_at = self.model.lot_expiry(self.model.now);
            self.model.add_lot(m, JOIN_GIFT, expires_at);
            self.model.touch(m);
        }
        Ok(())
    }

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let tenant = self.tenant.clone();
        match *op {
            Op::Enroll => self.enroll().await?,
            Op::Purchase {
                member,
                quantity,
                unit_minor,
            } => {
                let m = self.member_index(member);
                self.model.documents += 1;
                let document = format!("doc-{}", self.model.documents);
                let id = self.model.members[m].id.clone();
                let request = purchase_request(
                    &document,
                    Some(&id),
                    &quantity.to_string(),
                    unit_minor,
                    "USD",
                );
                let result = self.engine().post_purchase(&tenant, &request, None).await;
                if self.model.members[m].exited {
                    return rejected(
                        "purchase",
                        result,
                        &Rejection::MemberExited { member_id: id },
                    );
                }
                let receipt = ok("purchase", result)?;
                let model = &mut self.model;
                let total_minor = quantity * unit_minor;
                let base = total_minor / 100;
                // Under [`RULES`], the matching line earns double once a day (club time).
                let today = model.now.to_zoned(model.program.tz()).date();
                let doubled = !model.program.rules.is_empty()
                    && base > 0
                    && model.members[m].rule_day != Some(today);
                if doubled {
                    model.members[m].rule_day = Some(today);
                }
                let points = if doubled { 2 * base } else { base };
                prop_assert_eq!(receipt.base_points, base, "base points of the purchase");
                prop_assert_eq!(
                    receipt.rules.len(),
                    usize::from(doubled),
                    "rules that fired"
                );
                let until = expiry::pending_until(
                    &model.program.pending,
                    model.now,
                    &model.program.calendar(),
                );
                let earn = match (points, until) {
                    (0, _) => Earn::None,
                    (_, Some(_)) => Earn::Pending,
                    (_, None) => {
                        let expires_at = model.lot_expiry(model.now);
                        model.add_lot(m, points, expires_at);
                        model.touch(m);
                        Earn::Posted
                    }
                };
                let state = match earn {
                    Earn::None => "none",
                    Earn::Pending => "pending",
                    _ => "posted",
                };
                prop_assert_eq!(receipt.points, points, "points of the purchase");
                prop_assert_eq!(receipt.points_state.as_str(), state);
                model.purchases.push(PurchaseModel {
                    id: receipt.purchase_id,
                    member: m,
                    quantity,
                    total_minor,
                    points,
                    earn,
                    until: if earn == Earn::Pending { until } else { None },
                    refunded_quantity: 0,
                    refunded_minor: 0,
                    settled: 0,
                    clawed: 0,
                    voided_by_exit: false,
                    rule_day: doubled.then_some(today),
                    forgiven: 0,
                });
            }
            Op::Refund { purchase, quantity } => {
                if self.model.purchases.is_empty() {
                    return Ok(());
                }
                let p = purchase % self.model.purchases.len();
                self.model.documents += 1;
                let document = format!("ret-{}", self.model.documents);
                let quantity_text = quantity.map(|q| q.to_string());
                let request = refund_request(&document, quantity_text.as_deref());
                let purchase_id = self.model.purchases[p].id.clone();
                let result = self
                    .engine()
                    .refund(&tenant, &purchase_id, &request, None)
                    .await;
                let model = &mut self.model;
                let bought = model.purchases[p].clone();
                let remaining = bought.quantity - bought.refunded_quantity;
                let returned = quantity.unwrap_or(remaining);
                if returned > remaining || returned == 0 {
                    return match result {
                        Err(EngineError::Rejected(Rejection::RefundTooLarge { .. })) => Ok(()),
                        other => Err(TestCaseError::fail(format!(
                            "refund beyond the purchase: expected RefundTooLarge, got {other:?}"
                        ))),
                    };
                }
                let receipt = ok("refund", result)?;
                let amount = if returned == remaining {
                    bought.total_minor - bought.refunded_minor
                } else {
                    div_half_even(
                        i128::from(bought.total_minor) * i128::from(returned),
                        i128::from(bought.quantity),
                    )
                    .min(bought.total_minor - bought.refunded_minor)
                };
                let target = div_half_up(
                    i128::from(bought.points) * i128::from(bought.refunded_minor + amount),
                    i128::from(bought.total_minor),
                );
                let delta = (target - bought.settled).max(0);
                let (mut clawed, mut reduced, mut forgiven) = (0, 0, 0);
                let m = bought.member;
                match bought.earn {
                    Earn::Pending => {
                        reduced = delta;
                        if bought.settled + reduced >= bought.points {
                            model.purchases[p].earn = Earn::Voided;
                        }
                    }
                    Earn::Posted => match (model.program.returns, model.members[m].exited) {
                        (ReturnPolicy::OnlyPending, _) => forgiven = delta,
                        // A member who left is never taken into debt: under `unlimited`
                        // their closed account gives back what it holds, as under
                        // `within_balance` (clawback::mode_for_account).
                        (ReturnPolicy::WithinBalance, _) | (ReturnPolicy::Unlimited, true) => {
                            clawed = delta.min(model.spendable(m).max(0));
                            forgiven = delta - clawed;
                            model.consume(m, clawed);
                        }
                        (ReturnPolicy::Unlimited, false) => {
                            clawed = delta;
                            let (_, shortfall) = model.consume(m, clawed);
                            model.members[m].debt += shortfall;
                        }
                    },
                    Earn::None | Earn::Voided => {}
                }
                let refunded = &mut model.purchases[p];
                refunded.refunded_quantity += returned;
                refunded.refunded_minor += amount;
                refunded.settled += clawed + reduced + forgiven;
                refunded.clawed += clawed;
                refunded.forgiven += forgiven;
                // Returned in full with every point taken back: the firing no longer counts
                // against the rule's limit (docs/PROGRAM.md, "Limits and refunds").
                if refunded.refunded_quantity == refunded.quantity
                    && refunded.forgiven == 0
                    && refunded.rule_day.is_some()
                    && model.members[m].rule_day == refunded.rule_day
                {
                    model.members[m].rule_day = None;
                }
                prop_assert_eq!(receipt.amount_minor, amount, "refunded amount");
                prop_assert_eq!(
                    (
                        receipt.clawed_back_points,
                        receipt.reduced_pending_points,
                        receipt.forgiven_points
                    ),
                    (clawed, reduced, forgiven),
                    "(clawed back, reduced pending, forgiven)"
                );
                // Invariant 6: what is settled is always the cumulative target, so partial
                // refunds add up to exactly what one full refund settles.
                let refunded = refunded.clone();
                if refunded.points > 0 && !refunded.voided_by_exit {
                    prop_assert_eq!(
                        refunded.settled,
                        target,
                        "settled = round(earned × refunded / amount)"
                    );
                    if refunded.refunded_quantity == refunded.quantity {
                        prop_assert_eq!(
                            refunded.settled,
                            refunded.points,
                            "a fully refunded purchase settles all it earned"
                        );
                    }
                }
                let stored = self.engine().purchase(&tenant, &purchase_id).await.unwrap();
                prop_assert_eq!(
                    (stored.settled_points, stored.clawed_back_points),
                    (refunded.settled, refunded.clawed)
                );
                prop_assert!(
                    stored.clawed_back_points <= stored.settled_points
                        && stored.settled_points <= stored.points
                );
            }
            Op::Redeem {
                member,
                points,
                hold,
            } => {
                let m = self.member_index(member);
                let id = self.model.members[m].id.clone();
                let points = points.of(self.model.spendable(m));
                let request = RedeemRequest {
                    points,
                    hold: hold.is_some(),
                    hold_minutes: hold.map(|h| HOLD_MINUTES[h]),
                    description: None,
                };
                let result = self.engine().redeem(&tenant, &id, &request, None).await;
                let model = &mut self.model;
                if model.members[m].exited {
                    return rejected("redeem", result, &Rejection::MemberExited { member_id: id });
                }
                let spendable = model.spendable(m);
                if spendable < points {
                    return rejected(
                        "redeem",
                        result,
                        &Rejection::InsufficientPoints {
                            available: spendable.max(0),
                            requested: points,
                        },
                    );
                }
                let redemption = ok("redeem", result)?;
                let (takes, shortfall) = model.consume(m, points);
                prop_assert_eq!(shortfall, 0);
                let status = if hold.is_some() {
                    Status::Held
                } else {
                    Status::Completed
                };
                if status == Status::Completed {
                    model.touch(m);
                }
                prop_assert_eq!(redemption.status.as_str(), status.as_str());
                model.redemptions.push(RedemptionModel {
                    id: redemption.id,
                    member: m,
                    points,
                    captured: if hold.is_some() { 0 } else { points },
                    status,
                    hold_expires_at: redemption.hold_expires_at,
                    outstanding: takes,
                });
            }
            Op::Capture { redemption, points } => {
                if self.model.redemptions.is_empty() {
                    return Ok(());
                }
                let r = self.pick_redemption(redemption, &[Status::Held]);
                let id = self.model.redemptions[r].id.clone();
                let points = points.map(|p| p.of(self.model.redemptions[r].points));
                let result = self.engine().capture(&tenant, &id, points, None).await;
                let model = &mut self.model;
                let held = model.redemptions[r].clone();
                if held.status != Status::Held {
                    let expected = Rejection::RedemptionResolved {
                        redemption_id: id,
                        status: held.status.as_str().into(),
                    };
                    return rejected("capture", result, &expected);
                }
                let capture = points.unwrap_or(held.points);
                if capture > held.points {
                    return rejected(
                        "capture",
                        result,
                        &Rejection::CaptureTooLarge {
                            held: held.points,
                            requested: capture,
                        },
                    );
                }
                let captured = ok("capture", result)?;
                model.restore(r, held.points - capture);
                model.redemptions[r].status = Status::Captured;
                model.redemptions[r].captured = capture;
                model.touch(held.member);
                prop_assert_eq!(
                    (captured.status.as_str(), captured.captured_points),
                    ("captured", capture)
                );
            }
            Op::Release { redemption } => {
                if self.model.redemptions.is_empty() {
                    return Ok(());
                }
                let r = self.pick_redemption(redemption, &[Status::Held]);
                let id = self.model.redemptions[r].id.clone();
                let result = self.engine().release(&tenant, &id, None).await;
                let model = &mut self.model;
                let held = model.redemptions[r].clone();
                if held.status != Status::Held {
                    let expected = Rejection::RedemptionResolved {
                        redemption_id: id,
                        status: held.status.as_str().into(),
                    };
                    return rejected("release", result, &expected);
                }
                let released = ok("release", result)?;
                model.restore(r, held.points);
                model.redemptions[r].status = Status::Released;
                prop_assert_eq!(released.status.as_str(), "released");
            }
            Op::Reverse { redemption } => {
                if self.model.redemptions.is_empty() {
                    return Ok(());
                }
                let r = self.pick_redemption(redemption, &[Status::Completed, Status::Captured]);
                let id = self.model.redemptions[r].id.clone();
                let result = self.engine().reverse_redemption(&tenant, &id, None).await;
                let model = &mut self.model;
                let spent = model.redemptions[r].clone();
                if spent.status != Status::Completed && spent.status != Status::Captured {
                    let expected = Rejection::RedemptionResolved {
                        redemption_id: id,
                        status: spent.status.as_str().into(),
                    };
                    return rejected("reverse", result, &expected);
                }
                // Points never go back to a member who left (their exit forfeited or keeps
                // what they had).
                if model.members[spent.member].exited {
                    let expected = Rejection::MemberExited {
                        member_id: model.members[spent.member].id.clone(),
                    };
                    return rejected("reverse", result, &expected);
                }
                let reversed = ok("reverse", result)?;
                model.restore(r, spent.captured);
                model.redemptions[r].status = Status::Reversed;
                prop_assert_eq!(reversed.status.as_str(), "reversed");
            }
            Op::Adjust {
                member,
                credit,
                points,
            } => {
                let m = self.member_index(member);
                let id = self.model.members[m].id.clone();
                let points = if credit {
                    points.of(40)
                } else {
                    -points.of(self.model.spendable(m))
                };
                let request = AdjustRequest {
                    points,
                    reason: "property test".into(),
                };
                let result = self
                    .engine()
                    .adjust(&tenant, &id, &request, "tester", None)
                    .await;
                let model = &mut self.model;
                if model.members[m].exited {
                    return rejected("adjust", result, &Rejection::MemberExited { member_id: id });
                }
                if points < 0 && model.spendable(m) < -points {
                    let expected = Rejection::InsufficientPoints {
                        available: model.spendable(m).max(0),
                        requested: -points,
                    };
                    return rejected("adjust", result, &expected);
                }
                ok("adjust", result)?;
                if points > 0 {
                    let expires_at = model.lot_expiry(model.now);
                    model.add_lot(m, points, expires_at);
                    model.touch(m);
                } else {
                    model.consume(m, -points);
                }
            }
            Op::Transfer { from, to, points } => {
                let (f, t) = (self.member_index(from), {
                    let (f, n) = (self.member_index(from), self.model.members.len());
                    if to == 0 || n == 1 {
                        f
                    } else {
                        (f + 1 + (to - 1) % (n - 1)) % n
                    }
                });
                let (from_id, to_id) = (
                    self.model.members[f].id.clone(),
                    self.model.members[t].id.clone(),
                );
                let points = points.of(self.model.spendable(f));
                let request = TransferRequest {
                    to_member_id: to_id.clone(),
                    points,
                };
                let result = self
                    .engine()
                    .transfer(&tenant, &from_id, &request, None)
                    .await;
                let model = &mut self.model;
                if f == t {
                    return rejected("transfer", result, &Rejection::TransferToSelf);
                }
                for (m, id) in [(f, &from_id), (t, &to_id)] {
                    if model.members[m].exited {
                        return rejected(
                            "transfer",
                            result,
                            &Rejection::MemberExited {
                                member_id: id.clone(),
                            },
                        );
                    }
                }
                let spendable = model.spendable(f);
                if spendable < points {
                    return rejected(
                        "transfer",
                        result,
                        &Rejection::InsufficientPoints {
                            available: spendable.max(0),
                            requested: points,
                        },
                    );
                }
                ok("transfer", result)?;
                let (takes, _) = model.consume(f, points);
                for (lot, amount) in takes {
                    let expires_at = model.members[f].lots[lot].expires_at;
                    model.add_lot(t, amount, expires_at);
                }
                model.touch(f);
                model.touch(t);
            }
            Op::Exit { member } => {
                let m = self.member_index(member);
                let id = self.model.members[m].id.clone();
                let result = self
                    .engine()
                    .exit_member(&tenant, &id, "tester", None)
                    .await;
                if self.model.members[m].exited {
                    return rejected("exit", result, &Rejection::MemberExited { member_id: id });
                }
                let receipt = ok("exit", result)?;
                let model = &mut self.model;
                let pending_voided = model.pending(m);
                for purchase in model
                    .purchases
                    .iter_mut()
                    .filter(|p| p.member == m && p.earn == Earn::Pending)
                {
                    purchase.earn = Earn::Voided;
                    purchase.voided_by_exit = true;
                }
                let holds_released = model.held(m);
                for r in 0..model.redemptions.len() {
                    if model.redemptions[r].member == m
                        && model.redemptions[r].status == Status::Held
                    {
                        model.restore(r, model.redemptions[r].points);
                        model.redemptions[r].status = Status::Released;
                    }
                }
                model.expire();
                let mut forfeited = 0;
                if model.program.exit == ExitPolicy::Forfeit && model.spendable(m) > 0 {
                    forfeited = model.spendable(m);
                    model.consume(m, forfeited);
                }
                model.members[m].exited = true;
                prop_assert_eq!(
                    (
                        receipt.points_forfeited,
                        receipt.pending_voided,
                        receipt.holds_released,
                        receipt.points_kept
                    ),
                    (
                        forfeited,
                        pending_voided,
                        holds_released,
                        model.spendable(m).max(0)
                    ),
                    "exit receipt (forfeited, pending voided, holds released, kept)"
                );
            }
            Op::Advance { step } => {
                let model = &mut self.model;
                model.now = model
                    .now
                    .checked_add(SignedDuration::from_hours(ADVANCE_HOURS[step]))
                    .unwrap();
                self.harness.clock.set(model.now);
                model.expire();
                // Pending earnings whose window closed post what was not refunded, with a lot
                // that expires from the instant the window closed.
                let mut due: Vec<usize> = (0..model.purchases.len())
                    .filter(|&p| {
                        model.purchases[p].earn == Earn::Pending
                            && model.purchases[p].until.is_some_and(|u| u <= model.now)
                    })
                    .collect();
                due.sort_by_key(|&p| (model.purchases[p].until, p));
                for &p in &due {
                    let purchase = model.purchases[p].clone();
                    let amount = purchase.points - purchase.settled;
                    if amount > 0 {
                        let expires_at = model.lot_expiry(purchase.until.unwrap());
                        model.add_lot(purchase.member, amount, expires_at);
                        model.touch(purchase.member);
                        model.purchases[p].earn = Earn::Posted;
                    } else {
                        model.purchases[p].earn = Earn::Voided;
                    }
                }
                model.expire();
                let mut released = 0;
                for r in 0..model.redemptions.len() {
                    let hold = &model.redemptions[r];
                    if hold.status == Status::Held
                        && hold.hold_expires_at.is_some_and(|at| at <= model.now)
                    {
                        model.restore(r, hold.points);
                        model.redemptions[r].status = Status::Released;
                        released += 1;
                    }
                }
                model.expire();
                let report = self.engine().run_due_jobs(&tenant).await.unwrap();
                prop_assert_eq!(
                    report.pending_posted,
                    u64::try_from(due.len()).unwrap(),
                    "pending earnings posted"
                );
                prop_assert_eq!(report.holds_released, released, "stale holds released");
                let again = self.engine().run_due_jobs(&tenant).await.unwrap();
                prop_assert_eq!(
                    again,
                    patron_engine::JobReport::default(),
                    "the second run of the jobs does nothing"
                );
            }
        }
        self.model.expire();
        Ok(())
    }

    /// The invariants after each step: the store's verification is clean and nothing is left
    /// past its expiry; every balance is what the model says; debt only under `unlimited`.
    async fn check(&self, step: usize, op: &Op) -> Result<(), TestCaseError> {
        let store = self.engine().store();
        let report = store
            .verify_ledger(self.tenant.id, self.model.now)
            .await
            .unwrap();
        prop_assert!(
            report.is_clean(),
            "after step {} ({:?}): verify: {:?}",
            step,
            op,
            report.discrepancies
        );
        prop_assert_eq!(
            report.lots_past_due,
            0,
            "after step {} ({:?}): lots left past their expiry",
            step,
            op
        );
        for (m, member) in self.model.members.iter().enumerate() {
            let balance = self
                .engine()
                .balance(&self.tenant, &member.id)
                .await
                .unwrap();
            let expected = (
                self.model.spendable(m).max(0),
                self.model.pending(m),
                self.model.held(m),
                member.debt,
                self.model.expiring(m),
            );
            let actual = (
                balance.available,
                balance.pending,
                balance.held,
                balance.debt,
                balance.expiring.clone(),
            );
            prop_assert_eq!(
                actual,
                expected,
                "after step {} ({:?}): balance (available, pending, held, debt, expiring) of member {}",
                step,
                op,
                m
            );
            prop_assert!(
                member.debt == 0 || self.model.program.returns == ReturnPolicy::Unlimited,
                "debt without unlimited returns"
            );
            prop_assert!(member.lots.iter().all(|l| l.remaining >= 0));
        }
        Ok(())
    }
}

async fn run_case(harness: &Harness, source: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let name = format!("prop{}", TENANTS.fetch_add(1, Ordering::Relaxed));
    harness.clock.set(start());
    let (tenant, _, _) = harness
        .engine
        .apply_program(&name, source, "test")
        .await
        .unwrap();
    let program = harness
        .engine
        .program(&tenant)
        .await
        .unwrap()
        .program
        .as_ref()
        .clone();
    let mut case = Case {
        harness,
        tenant,
        model: Model::new(program, start()),
    };
    case.enroll().await?;
    case.enroll().await?;
    for (step, op) in ops.iter().enumerate() {
        case.apply(op).await.map_err(|e| {
            TestCaseError::fail(format!("[{}] step {step} {op:?}: {e}", harness.label))
        })?;
        case.check(step, op)
            .await
            .map_err(|e| TestCaseError::fail(format!("[{}] {e}", harness.label)))?;
    }
    Ok(())
}

/// Earning rules the model knows: a join gift, and double points on the test purchases' line
/// once a day per member.
const RULES: &str = "\n[[rules]]\nid = \"welcome\"\nname = \"Welcome\"\nkind = \"join\"\npoints = 10\n\n\
    [[rules]]\nid = \"double_daily\"\nname = \"Double today\"\nkind = \"multiplier\"\nmultiplier = 2\n\
    categories = [\"general\"]\nlimit = { count = 1, per = \"day\" }\n";
const JOIN_GIFT: i64 = 10;

/// Runs `CASES` random operation sequences under `source` on every backend.
fn run_property(source: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let databases = runtime.block_on(testing::all());
    for db in databases {
        let harness = {
            let clock = ManualClock::new(start());
            Harness {
                engine: Engine::new(db.store.clone(), Arc::new(clock.clone())),
                clock,
                label: label(&db),
            }
        };
        let cases = std::env::var("PATRON_PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(CASES);
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_time: 120_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&ops(), |ops| {
            runtime.block_on(run_case(&harness, source, &ops))
        });
        runtime.block_on(db.cleanup());
        if let Err(failure) = result {
            panic!("[{}] {failure}", harness.label);
        }
    }
}

#[test]
fn pending_points_with_dated_lots_and_unlimited_returns_keep_every_invariant() {
    run_property(&program(
        3,
        "policy = \"after_earning\"\namount = 30\nunit = \"days\"\nround_to = \"end_of_day\"",
        "unlimited",
        "forfeit",
    ));
}

#[test]
fn monthly_expiry_with_returns_within_balance_keeps_every_invariant() {
    run_property(&program(
        0,
        "policy = \"after_earning\"\namount = 2\nunit = \"months\"\nround_to = \"end_of_month\"",
        "within_balance",
        "keep_until_expiry",
    ));
}

#[test]
fn inactivity_expiry_with_returns_only_pending_keeps_every_invariant() {
    run_property(&program(
        2,
        "policy = \"inactivity\"\nmonths = 1",
        "only_pending",
        "forfeit",
    ));
}

#[test]
fn yearly_expiry_with_unlimited_returns_keeps_every_invariant() {
    run_property(&program(
        0,
        "policy = \"fixed_yearly_date\"\nmonth = 4\nday = 1",
        "unlimited",
        "keep_until_expiry",
    ));
}

#[test]
fn earning_rules_with_a_join_gift_and_a_daily_limit_keep_every_invariant() {
    let source = program(
        2,
        "policy = \"after_earning\"\namount = 30\nunit = \"days\"\nround_to = \"end_of_day\"",
        "unlimited",
        "forfeit",
    ) + RULES;
    run_property(&source);
}
