//! The shapes of the metrics endpoints: the club's metrics, campaigns, the points flow, and
//! customer lifetime value (the fitted models and a member's prediction).

use jiff::Timestamp;
use patron_domain::metrics::Scored;
use patron_domain::program::ActivityPeriod;
use patron_domain::rust_decimal::Decimal;
use patron_domain::rust_decimal::prelude::ToPrimitive;
use patron_engine::metrics::{CampaignMetrics, MemberClv, MetricsReport, PeriodMetrics};
use patron_engine::model::{BgNbdValues, ClvRun, GammaGammaValues, PointsFlow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::{ClubIds, ClvRunId, Present};

fn number(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

/// A metric's value next to the club's target (`[targets]`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricOut {
    /// The value; null when it has nothing to divide by (no revenue, no coupons issued...).
    pub value: Option<f64>,
    /// The club's target; null when the program sets none.
    pub target: Option<f64>,
    /// Whether the value reaches the target; null without a value or a target.
    pub meets: Option<bool>,
    /// Whether a higher value is better (false for churn, liability and breakage).
    pub higher_is_better: bool,
}

impl MetricOut {
    fn new(scored: Scored, higher_is_better: bool) -> MetricOut {
        MetricOut {
            value: scored.value.map(number),
            target: scored.target.map(number),
            meets: scored.meets,
            higher_is_better,
        }
    }
}

/// One campaign's coupons in the period: a promotion, or the coupons of a reward.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignOut {
    pub promotion_id: Option<String>,
    pub reward_id: Option<String>,
    pub issued: i64,
    /// Redemptions in the period minus releases (cancelled orders).
    pub redeemed: i64,
    /// redeemed / issued × 100; null when none was issued.
    pub redemption_pct: Option<f64>,
}

impl From<CampaignMetrics> for CampaignOut {
    fn from(c: CampaignMetrics) -> Self {
        CampaignOut {
            promotion_id: c.promotion_id,
            reward_id: c.reward_id,
            issued: c.issued,
            redeemed: c.redeemed,
            redemption_pct: c.redemption_pct.map(number),
        }
    }
}

/// The points ledger over the period: closing = opening + issued − redeemed − expired −
/// clawed_back − forfeited + adjusted + other. Posted points, summed over members (net of
/// debts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointsFlowOut {
    pub opening: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub clawed_back: i64,
    pub forfeited: i64,
    pub adjusted: i64,
    pub other: i64,
    pub closing: i64,
}

impl From<PointsFlow> for PointsFlowOut {
    fn from(f: PointsFlow) -> Self {
        PointsFlowOut {
            opening: f.opening,
            issued: f.issued,
            redeemed: f.redeemed,
            expired: f.expired,
            clawed_back: f.clawed_back,
            forfeited: f.forfeited,
            adjusted: f.adjusted,
            other: f.other,
            closing: f.closing,
        }
    }
}

/// Every metric of one reporting period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodOut {
    /// The period's first and last local days (YYYY-MM-DD).
    pub first_day: String,
    pub last_day: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Start of the activity window `[activity_start, end)` of churn and active members.
    pub activity_start: Timestamp,
    /// Member-linked revenue / all revenue, in percent (net of refunds).
    pub identified_revenue_pct: MetricOut,
    pub revenue_minor: i64,
    pub identified_revenue_minor: i64,
    pub purchases: i64,
    pub identified_purchases: i64,
    /// Coupons redeemed (net of releases) / coupons issued in the period, in percent.
    pub redemption_pct: MetricOut,
    pub coupons_issued: i64,
    pub coupons_redeemed: i64,
    pub campaigns: Vec<CampaignOut>,
    /// Of the members active in the previous activity window, the share with no purchase
    /// in the current one, in percent.
    pub churn_pct: MetricOut,
    pub previous_active_members: i64,
    pub churned_members: i64,
    /// Members with a purchase in the activity window / members at the period's end.
    pub active_pct: MetricOut,
    pub active_members: i64,
    pub members_at_end: i64,
    /// New members in the period.
    pub enrollments: MetricOut,
    /// Outstanding points at the period's end × the program's cost per point, in major
    /// currency units.
    pub liability: MetricOut,
    pub points: PointsFlowOut,
    /// Points expired or forfeited in the period.
    pub breakage_points: i64,
    /// breakage_points / points issued in the period, in percent.
    pub breakage_pct: MetricOut,
}

impl From<PeriodMetrics> for PeriodOut {
    fn from(p: PeriodMetrics) -> Self {
        use patron_domain::metrics::Metric;
        let m = |scored: Scored, metric: Metric| MetricOut::new(scored, metric.higher_is_better());
        PeriodOut {
            first_day: p.first_day.to_string(),
            last_day: p.last_day.to_string(),
            start: p.start,
            end: p.end,
            activity_start: p.activity_start,
            identified_revenue_pct: m(p.identified_revenue_pct, Metric::IdentifiedRevenuePct),
            revenue_minor: p.revenue_minor,
            identified_revenue_minor: p.identified_revenue_minor,
            purchases: p.purchases,
            identified_purchases: p.identified_purchases,
            redemption_pct: m(p.redemption_pct, Metric::RedemptionPct),
            coupons_issued: p.coupons_issued,
            coupons_redeemed: p.coupons_redeemed,
            campaigns: p.campaigns.into_iter().map(CampaignOut::from).collect(),
            churn_pct: m(p.churn_pct, Metric::ChurnPct),
            previous_active_members: p.previous_active_members,
            churned_members: p.churned_members,
            active_pct: m(p.active_pct, Metric::ActivePct),
            active_members: p.active_members,
            members_at_end: p.members_at_end,
            enrollments: m(p.enrollments, Metric::Enrollments),
            liability: m(p.liability, Metric::Liability),
            points: p.points.into(),
            breakage_points: p.breakage_points,
            breakage_pct: m(p.breakage_pct, Metric::BreakagePct),
        }
    }
}

/// The success metrics per period, against the club's targets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricsOut {
    /// day | week | month (weeks start on Monday)
    pub period: String,
    /// The club's time zone, in which periods are calendar days, weeks and months.
    pub time_zone: String,
    /// gregorian | persian: the calendar the club's months are counted in (a Persian club's
    /// months run from the first of each Persian month). Dates are ISO dates either way.
    pub calendar: String,
    pub currency: String,
    /// What one point costs the club, in major units (decimal text).
    pub cost_per_point: String,
    /// day | week | month | quarter | year: the activity window of churn and active members.
    pub activity_period: String,
    /// The store the purchase metrics (revenue, churn, active) are narrowed to; the others
    /// are club-wide.
    pub store: Option<String>,
    pub periods: Vec<PeriodOut>,
}

fn activity_word(period: ActivityPeriod) -> &'static str {
    match period {
        ActivityPeriod::Day => "day",
        ActivityPeriod::Week => "week",
        ActivityPeriod::Month => "month",
        ActivityPeriod::Quarter => "quarter",
        ActivityPeriod::Year => "year",
    }
}

impl From<MetricsReport> for MetricsOut {
    fn from(r: MetricsReport) -> Self {
        MetricsOut {
            period: r.period.as_str().to_owned(),
            time_zone: r.time_zone,
            calendar: r.calendar.as_str().to_owned(),
            currency: r.currency,
            cost_per_point: r.cost_per_point.to_string(),
            activity_period: activity_word(r.activity_period).to_owned(),
            store: r.store_id,
            periods: r.periods.into_iter().map(PeriodOut::from).collect(),
        }
    }
}

/// BG/NBD parameters (or their standard errors).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BgNbdOut {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl From<BgNbdValues> for BgNbdOut {
    fn from(v: BgNbdValues) -> Self {
        BgNbdOut {
            r: v.r,
            alpha: v.alpha,
            a: v.a,
            b: v.b,
        }
    }
}

/// Gamma-Gamma parameters (or their standard errors).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GammaGammaOut {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl From<GammaGammaValues> for GammaGammaOut {
    fn from(v: GammaGammaValues) -> Self {
        GammaGammaOut {
            p: v.p,
            q: v.q,
            v: v.v,
        }
    }
}

/// The spend model of a fit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GammaGammaFitOut {
    /// Repeat customers with a positive average spend the model was fitted on.
    pub customers: i64,
    pub params: GammaGammaOut,
    /// Null when the information matrix could not be inverted.
    pub standard_errors: Option<GammaGammaOut>,
    pub log_likelihood: f64,
}

/// One fit of the lifetime-value models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClvFitOut {
    pub run_id: ClvRunId,
    pub fitted_at: Timestamp,
    /// The club-local day the members' summaries were taken as of (YYYY-MM-DD).
    pub as_of: String,
    pub horizon_weeks: i64,
    /// Decimal text, percent per month.
    pub monthly_discount_pct: String,
    /// Decimal text, percent.
    pub margin_pct: String,
    /// Customers in the BG/NBD fit, and their distinct (x, t_x, T) tuples.
    pub customers: i64,
    pub distinct_tuples: i64,
    pub bgnbd: BgNbdOut,
    /// Null when the information matrix could not be inverted.
    pub bgnbd_standard_errors: Option<BgNbdOut>,
    pub bgnbd_log_likelihood: f64,
    /// Null without a spend model (too few repeat customers with spend).
    pub gamma_gamma: Option<GammaGammaFitOut>,
    /// Members with predictions.
    pub members: i64,
}

fn day_text(day: i64) -> String {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(day))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

impl Present<ClvRun> for ClvFitOut {
    fn present(r: ClvRun, ids: &ClubIds) -> Self {
        ClvFitOut {
            run_id: ids.clv_run(r.id),
            fitted_at: r.fitted_at,
            as_of: day_text(r.as_of_day),
            horizon_weeks: r.horizon_weeks,
            monthly_discount_pct: r.monthly_discount_pct,
            margin_pct: r.margin_pct,
            customers: r.customers,
            distinct_tuples: r.distinct_tuples,
            bgnbd: r.bgnbd.into(),
            bgnbd_standard_errors: r.bgnbd_standard_errors.map(BgNbdOut::from),
            bgnbd_log_likelihood: r.bgnbd_log_likelihood,
            gamma_gamma: r.gamma_gamma.map(|g| GammaGammaFitOut {
                customers: g.customers,
                params: g.params.into(),
                standard_errors: g.standard_errors.map(GammaGammaOut::from),
                log_likelihood: g.log_likelihood,
            }),
            members: r.members,
        }
    }
}

/// The latest fit of the lifetime-value models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClvModelOut {
    /// Null until the `clv` job has fitted the models once.
    pub fit: Option<ClvFitOut>,
}

/// A member's predictions from one fit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClvPredictionOut {
    pub run_id: ClvRunId,
    pub fitted_at: Timestamp,
    pub horizon_weeks: i64,
    /// Repeat purchase days, weeks from the first purchase to the last, and to the as-of day.
    pub x: i64,
    pub t_x: f64,
    pub t: f64,
    /// Probability the member is still a customer.
    pub p_alive: f64,
    /// Expected purchases in the next `horizon_weeks` weeks.
    pub expected_purchases: Option<f64>,
    /// Expected spend per purchase, major currency units.
    pub expected_spend: Option<f64>,
    /// Expected (discounted) spend over the horizon × margin, major currency units.
    pub clv: Option<f64>,
}

/// A member's lifetime value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberClvOut {
    pub member_id: String,
    /// Null until a fit of the `clv` job includes the member (a member who has not bought,
    /// or joined after the latest fit).
    pub clv: Option<ClvPredictionOut>,
}

impl MemberClvOut {
    pub fn new(member_id: String, clv: Option<MemberClv>, ids: &ClubIds) -> MemberClvOut {
        MemberClvOut {
            member_id,
            clv: clv.map(|MemberClv { run, prediction }| ClvPredictionOut {
                run_id: ids.clv_run(run.id),
                fitted_at: run.fitted_at,
                horizon_weeks: run.horizon_weeks,
                x: prediction.x,
                t_x: prediction.t_x,
                t: prediction.t_cal,
                p_alive: prediction.p_alive,
                expected_purchases: prediction.expected_purchases,
                expected_spend: prediction.expected_spend,
                clv: prediction.clv,
            }),
        }
    }
}
