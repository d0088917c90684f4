//! Success metrics against the club's targets, and customer lifetime value
//! (docs/ANALYTICS.md, "Success metrics" and "The CLV job").
//!
//! [`Engine::success_metrics`] turns a range of reporting periods (calendar days, weeks or
//! months in the club's time zone) into windows, asks the store for the aggregate figures of
//! all of them at once, and scores each figure against `[targets]` with
//! `patron_domain::metrics`.
//!
//! [`Engine::fit_clv`] is the work of the `clv` job: it reads every member's BG/NBD summary
//! from `member_stats` (O(members), never the purchase history), fits BG/NBD and
//! Gamma-Gamma with `patron-analytics` on the distinct (x, t_x, T) tuples (off the async
//! threads), predicts P(alive), purchases, spend and CLV per member, and stores the run and
//! the predictions in batches.

use jiff::Timestamp;
use jiff::civil::Date;
use patron_analytics::bgnbd::{self, BgNbdData, FitOptions};
use patron_analytics::clv;
use patron_analytics::gamma_gamma::{self, GammaGammaData};
use patron_analytics::summary::CustomerSummary;
use patron_domain::calendar::CalendarSystem;
use patron_domain::metrics::{
    self, Metric, PeriodError, PeriodLength, Scored, activity_window, percent, score,
};
use patron_domain::program::{ActivityPeriod, Program};
use patron_domain::rust_decimal::Decimal;
use patron_domain::rust_decimal::prelude::ToPrimitive;
use patron_store::clv::{
    BgNbdValues, ClvInput, ClvMember, ClvRun, GammaGammaRun, GammaGammaValues, NewClvRun,
};
use patron_store::metrics::{MetricWindow, PeriodCounts, PointsFlow};
use patron_store::stats::day_number;
use patron_store::tenants::Tenant;

use crate::{Engine, EngineError};

/// Members read per page by the CLV job.
const CLV_PAGE: i64 = 10_000;
/// Days per BG/NBD time unit: weeks.
const DAYS_PER_WEEK: f64 = 7.0;
/// Weeks per month, for turning a monthly discount rate into a weekly one.
const WEEKS_PER_MONTH: f64 = 52.0 / 12.0;

/// What to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsRequest {
    pub period: PeriodLength,
    /// First local day of the range (the report starts at the period containing it).
    pub from: Date,
    /// Last local day of the range, inclusive.
    pub to: Date,
    /// Only purchases at this store for revenue, active members and churn.
    pub store_id: Option<String>,
}

/// One campaign's coupons in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignMetrics {
    pub promotion_id: Option<String>,
    pub reward_id: Option<String>,
    pub issued: i64,
    /// Net of releases.
    pub redeemed: i64,
    pub redemption_pct: Option<Decimal>,
}

/// Every metric of one period, each next to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodMetrics {
    pub first_day: Date,
    pub last_day: Date,
    pub start: Timestamp,
    pub end: Timestamp,
    pub activity_start: Timestamp,
    pub revenue_minor: i64,
    pub identified_revenue_minor: i64,
    pub purchases: i64,
    pub identified_purchases: i64,
    pub identified_revenue_pct: Scored,
    pub coupons_issued: i64,
    pub coupons_redeemed: i64,
    pub redemption_pct: Scored,
    pub campaigns: Vec<CampaignMetrics>,
    pub previous_active_members: i64,
    pub churned_members: i64,
    pub churn_pct: Scored,
    pub active_members: i64,
    pub members_at_end: i64,
    pub active_pct: Scored,
    pub enrollments: Scored,
    pub points: PointsFlow,
    /// Closing outstanding points × cost per point, major currency units.
    pub liability: Scored,
    /// Points expired or forfeited in the period.
    pub breakage_points: i64,
    /// Breakage as a share of the points issued in the period.
    pub breakage_pct: Scored,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsReport {
    pub period: PeriodLength,
    pub time_zone: String,
    /// The calendar the months are counted in.
    pub calendar: CalendarSystem,
    pub currency: String,
    pub cost_per_point: Decimal,
    pub activity_period: ActivityPeriod,
    pub store_id: Option<String>,
    pub periods: Vec<PeriodMetrics>,
}

/// A member's lifetime value from the latest fit.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberClv {
    pub run: ClvRun,
    pub prediction: ClvMember,
}

impl Engine {
    /// The success metrics per period, against the program's targets.
    /// The range a metrics report covers when the caller names no dates: up to today in the
    /// club's time zone, and back `from` the start of the 12th month, 12th week or 30th day
    /// before it (`to`, when given, is kept).
    pub async fn default_metrics_range(
        &self,
        tenant: &Tenant,
        period: PeriodLength,
        from: Option<Date>,
        to: Option<Date>,
    ) -> Result<(Date, Date), EngineError> {
        let program = self.program(tenant).await?.program;
        let to = match to {
            Some(to) => to,
            None => self.now().to_zoned(program.tz()).date(),
        };
        let from = match from {
            Some(from) => from,
            None => {
                let span = match period {
                    PeriodLength::Day => jiff::Span::new().days(29),
                    PeriodLength::Week => jiff::Span::new().weeks(11),
                    PeriodLength::Month => jiff::Span::new().months(11),
                };
                to.checked_sub(span)
                    .map_err(|_| EngineError::invalid("to", "the dates are out of range"))?
            }
        };
        Ok((from, to))
    }

    pub async fn success_metrics(
        &self,
        tenant: &Tenant,
        request: &MetricsRequest,
    ) -> Result<MetricsReport, EngineError> {
        if let Some(store) = &request.store_id {
            // A store id as purchases carry it: the same rules, so every store can be named.
            crate::requests::check_text("store", store)?;
        }
        let program = self.program(tenant).await?.program;
        let cal = program.calendar();
        let periods =
            metrics::periods(request.period, request.from, request.to, &cal).map_err(|error| {
                let field = match error {
                    PeriodError::TooMany { .. } | PeriodError::Reversed => "to",
                    PeriodError::OutOfRange => "from",
                };
                EngineError::invalid(field, error.to_string())
            })?;
        let activity = program.analytics.activity_period;
        let mut windows = Vec::with_capacity(periods.len());
        for period in &periods {
            let out_of_range = || EngineError::invalid("from", "the dates are out of range");
            let (activity_start, _) =
                activity_window(period.end, activity, &cal).ok_or_else(out_of_range)?;
            let (previous_activity_start, _) =
                activity_window(activity_start, activity, &cal).ok_or_else(out_of_range)?;
            windows.push(MetricWindow {
                start: period.start,
                end: period.end,
                activity_start,
                previous_activity_start,
            });
        }
        let counts = self
            .store
            .period_metrics(tenant.id, &windows, request.store_id.as_deref())
            .await?;
        let scored = periods
            .into_iter()
            .zip(windows)
            .zip(counts)
            .map(|((period, window), counts)| {
                period_metrics(&program, request.period, period, window, counts)
            })
            .collect();
        Ok(MetricsReport {
            period: request.period,
            time_zone: program.time_zone.clone(),
            calendar: program.calendar,
            currency: program.currency.code.clone(),
            cost_per_point: program.cost_per_point,
            activity_period: activity,
            store_id: request.store_id.clone(),
            periods: scored,
        })
    }

    /// Fits the lifetime-value models on the club's members as of now and stores every
    /// member's predictions (the `clv` job). Answers a one-line summary; a club with too few
    /// customers to fit is not an error, it is said so.
    pub async fn fit_clv(&self, tenant: &Tenant) -> Result<String, EngineError> {
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let tz = program.tz();
        let as_of_day = day_number(now, &tz);
        let mut inputs: Vec<ClvInput> = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.clv_inputs(tenant.id, &after, CLV_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.member_id.clone();
            let full = i64::try_from(page.len()).unwrap_or(0) == CLV_PAGE;
            inputs.extend(page);
            if !full {
                break;
            }
        }
        let settings = program.analytics.clone();
        let minor_unit = program.currency.minor_unit;
        let fitted = tokio::task::spawn_blocking(move || {
            fit_and_predict(&inputs, as_of_day, &settings, minor_unit)
        })
        .await
        .map_err(|e| EngineError::invalid("clv", format!("the fit did not finish: {e}")))?;
        let (run, members) = match fitted {
            Ok(fitted) => fitted,
            Err(reason) => return Ok(format!("not fitted: {reason}")),
        };
        let run = NewClvRun {
            fitted_at: now,
            as_of_day,
            ..run
        };
        let run_id = self.store.start_clv_run(tenant.id, &run).await?;
        self.store
            .store_clv_members(tenant.id, run_id, &members)
            .await?;
        self.store.complete_clv_run(tenant.id, run_id, now).await?;
        Ok(format!(
            "{} members predicted from {} customers ({} distinct tuples); r={:.4} alpha={:.4} a={:.4} b={:.4}{}",
            members.len(),
            run.customers,
            run.distinct_tuples,
            run.bgnbd.r,
            run.bgnbd.alpha,
            run.bgnbd.a,
            run.bgnbd.b,
            match run.gamma_gamma {
                Some(gg) => format!(
                    "; p={:.4} q={:.4} v={:.4}",
                    gg.params.p, gg.params.q, gg.params.v
                ),
                None => "; no spend model".to_owned(),
            }
        ))
    }

    /// The latest completed lifetime-value fit, if any.
    pub async fn latest_clv(&self, tenant: &Tenant) -> Result<Option<ClvRun>, EngineError> {
        Ok(self.store.latest_clv_run(tenant.id).await?)
    }

    /// A member's predictions from the latest fit; `None` until a fit includes them. The
    /// member must exist (404 otherwise).
    pub async fn member_clv(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Option<MemberClv>, EngineError> {
        self.member(tenant, member_id).await?;
        let Some(run) = self.store.latest_clv_run(tenant.id).await? else {
            return Ok(None);
        };
        let prediction = self.store.clv_member(tenant.id, run.id, member_id).await?;
        Ok(prediction.map(|prediction| MemberClv { run, prediction }))
    }
}

fn period_metrics(
    program: &Program,
    length: PeriodLength,
    period: metrics::Period,
    window: MetricWindow,
    counts: PeriodCounts,
) -> PeriodMetrics {
    let targets = &program.targets;
    let scored = |metric: Metric, value: Option<Decimal>| score(metric, value, targets, length);
    let breakage_points = counts.points.expired + counts.points.forfeited;
    let liability = metrics::liability(
        counts.points.closing,
        program.cost_per_point,
        program.currency.minor_unit,
    );
    PeriodMetrics {
        first_day: period.first_day,
        last_day: period.last_day,
        start: period.start,
        end: period.end,
        activity_start: window.activity_start,
        revenue_minor: counts.revenue_minor,
        identified_revenue_minor: counts.identified_revenue_minor,
        purchases: counts.purchases,
        identified_purchases: counts.identified_purchases,
        identified_revenue_pct: scored(
            Metric::IdentifiedRevenuePct,
            percent(counts.identified_revenue_minor, counts.revenue_minor),
        ),
        coupons_issued: counts.coupons_issued,
        coupons_redeemed: counts.coupons_redeemed,
        redemption_pct: scored(
            Metric::RedemptionPct,
            percent(counts.coupons_redeemed, counts.coupons_issued),
        ),
        campaigns: counts
            .campaigns
            .into_iter()
            .map(|c| CampaignMetrics {
                redemption_pct: percent(c.redeemed, c.issued),
                promotion_id: c.promotion_id,
                reward_id: c.reward_id,
                issued: c.issued,
                redeemed: c.redeemed,
            })
            .collect(),
        previous_active_members: counts.previous_active_members,
        churned_members: counts.churned_members,
        churn_pct: scored(
            Metric::ChurnPct,
            percent(counts.churned_members, counts.previous_active_members),
        ),
        active_members: counts.active_members,
        members_at_end: counts.members_at_end,
        active_pct: scored(
            Metric::ActivePct,
            percent(counts.active_members, counts.members_at_end),
        ),
        enrollments: scored(Metric::Enrollments, Some(Decimal::from(counts.enrollments))),
        points: counts.points,
        liability: scored(Metric::Liability, Some(liability)),
        breakage_points,
        breakage_pct: scored(
            Metric::BreakagePct,
            percent(breakage_points, counts.points.issued),
        ),
    }
}

/// A member's BG/NBD summary in weeks as of `as_of_day` (T is never below t_x: a purchase
/// dated after the as-of day counts as of its own day).
pub fn clv_summary(input: &ClvInput, as_of_day: i64) -> CustomerSummary {
    let x = u32::try_from((input.purchase_days - 1).max(0)).unwrap_or(u32::MAX);
    let t_x_days = (input.last_purchase_day - input.first_purchase_day).max(0);
    let t_days = (as_of_day - input.first_purchase_day).max(t_x_days);
    CustomerSummary {
        x,
        t_x: if x == 0 {
            0.0
        } else {
            t_x_days as f64 / DAYS_PER_WEEK
        },
        t_cal: t_days as f64 / DAYS_PER_WEEK,
        repeat_amount_minor: i128::from(input.repeat_spend_minor),
    }
}

/// The weekly rate equivalent to `monthly_pct` percent per month.
pub fn weekly_discount_rate(monthly_pct: Decimal) -> f64 {
    let monthly = monthly_pct.to_f64().unwrap_or(0.0) / 100.0;
    (1.0 + monthly).powf(1.0 / WEEKS_PER_MONTH) - 1.0
}

/// Fits both models on `inputs` and predicts for each of them: the pure part of the job,
/// also what the tests recompute. Err: why nothing could be fitted.
pub fn fit_and_predict(
    inputs: &[ClvInput],
    as_of_day: i64,
    settings: &patron_domain::program::AnalyticsSettings,
    minor_unit: u32,
) -> Result<(NewClvRun, Vec<ClvMember>), String> {
    let summaries: Vec<CustomerSummary> =
        inputs.iter().map(|i| clv_summary(i, as_of_day)).collect();
    // A customer first seen today has T = 0: no information yet, left out of the fit.
    let data = BgNbdData::new(
        summaries
            .iter()
            .filter(|s| s.t_cal > 0.0)
            .map(|s| (s.x, s.t_x, s.t_cal, 1.0)),
    )
    .map_err(|e| e.to_string())?;
    let bg = bgnbd::fit(&data, FitOptions { threads: 1 }).map_err(|e| e.to_string())?;
    let spend_data = GammaGammaData::new(summaries.iter().map(|s| {
        let average = s.average_repeat_spend(minor_unit).unwrap_or(0.0);
        (s.x, average, 1.0)
    }))
    .map_err(|e| e.to_string())?;
    let gg = gamma_gamma::fit(&spend_data).ok();
    let horizon = f64::from(settings.clv_horizon_weeks);
    let discount = weekly_discount_rate(settings.clv_monthly_discount_pct);
    let margin = settings.clv_margin_pct.to_f64().unwrap_or(100.0) / 100.0;
    let members = inputs
        .iter()
        .zip(&summaries)
        .map(|(input, summary)| {
            let prediction = clv::predict(
                &bg.params,
                gg.as_ref().map(|g| &g.params),
                summary,
                horizon,
                minor_unit,
            );
            let value = match prediction.expected_spend {
                Some(spend) if discount > 0.0 => clv::discounted_value(
                    &bg.params,
                    summary,
                    spend,
                    settings.clv_horizon_weeks,
                    discount,
                ),
                _ => prediction.value(),
            };
            ClvMember {
                member_id: input.member_id.clone(),
                x: i64::from(summary.x),
                t_x: summary.t_x,
                t_cal: summary.t_cal,
                p_alive: prediction.p_alive,
                expected_purchases: prediction.expected_purchases,
                expected_spend: prediction.expected_spend,
                clv: value.map(|v| v * margin),
            }
        })
        .collect();
    let run = NewClvRun {
        fitted_at: Timestamp::UNIX_EPOCH,
        as_of_day,
        horizon_weeks: i64::from(settings.clv_horizon_weeks),
        monthly_discount_pct: settings.clv_monthly_discount_pct.to_string(),
        margin_pct: settings.clv_margin_pct.to_string(),
        customers: bg.customers as i64,
        distinct_tuples: i64::try_from(bg.distinct_tuples).unwrap_or(i64::MAX),
        bgnbd: BgNbdValues {
            r: bg.params.r,
            alpha: bg.params.alpha,
            a: bg.params.a,
            b: bg.params.b,
        },
        bgnbd_standard_errors: bg.standard_errors.map(|s| BgNbdValues {
            r: s.r,
            alpha: s.alpha,
            a: s.a,
            b: s.b,
        }),
        bgnbd_log_likelihood: bg.log_likelihood,
        gamma_gamma: gg.map(|g| GammaGammaRun {
            customers: g.customers as i64,
            params: GammaGammaValues {
                p: g.params.p,
                q: g.params.q,
                v: g.params.v,
            },
            standard_errors: g.standard_errors.map(|s| GammaGammaValues {
                p: s.p,
                q: s.q,
                v: s.v,
            }),
            log_likelihood: g.log_likelihood,
        }),
    };
    Ok((run, members))
}
