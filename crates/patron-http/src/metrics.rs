//! Prometheus metrics, served as text on `/metrics`: requests by route template and status,
//! latency by route, successful ledger postings by operation, earning rules that failed at run
//! time by rule, the job queue depth, and how PostgreSQL's purchases were posted.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type RequestLabels = [(&'static str, String); 3];
type RouteLabels = [(&'static str, String); 1];
type OperationLabels = [(&'static str, &'static str); 1];

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    postings: Family<OperationLabels, Counter>,
    rule_failures: Family<RouteLabels, Counter>,
    job_queue_depth: Gauge,
    jobs_failed: Gauge,
    purchase_paths: Family<OperationLabels, Counter>,
}

/// Counts the earning rules the engine skipped because an expression failed at run time
/// (`patron_rule_failures_total{rule}`); installed into the engine by the server.
#[derive(Debug, Clone)]
pub struct RuleFailureCounter(Family<RouteLabels, Counter>);

impl patron_engine::RuleFailureObserver for RuleFailureCounter {
    fn rule_failed(&self, rule_id: &str, _error: &str) {
        self.0.get_or_create(&[("rule", rule_id.to_string())]).inc();
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let postings = Family::<OperationLabels, Counter>::default();
        let rule_failures = Family::<RouteLabels, Counter>::default();
        let job_queue_depth = Gauge::default();
        let jobs_failed = Gauge::default();
        registry.register(
            "patron_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "patron_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            latency.clone(),
        );
        registry.register(
            "patron_ledger_postings",
            "Successful ledger-changing calls (replays not counted), by operation",
            postings.clone(),
        );
        registry.register(
            "patron_rule_failures",
            "Earning rules skipped because an expression failed at run time, by rule id",
            rule_failures.clone(),
        );
        // Read from the jobs table when /metrics is scraped (every tenant).
        registry.register(
            "patron_job_queue_depth",
            "Jobs due and waiting for a worker (pending and due, or running with an expired lease)",
            job_queue_depth.clone(),
        );
        registry.register(
            "patron_jobs_failed",
            "Jobs that failed their last allowed attempt (patron jobs list --state failed)",
            jobs_failed.clone(),
        );
        // Copied from the store's counters when /metrics is scraped.
        let purchase_paths = Family::<OperationLabels, Counter>::default();
        registry.register(
            "patron_purchase_paths",
            "Purchases (a member's or anonymous) posted on PostgreSQL, by path: optimistic \
             (committed without a transaction: two statements, one when anonymous) or locked_fallback (handed to the locked path by a concurrent unit of \
             work on the wallet, a replay, points due to expire, a debt or a referral)",
            purchase_paths.clone(),
        );
        Metrics {
            registry,
            purchase_paths,
            requests,
            latency,
            postings,
            rule_failures,
            job_queue_depth,
            jobs_failed,
        }
    }

    /// The observer the engine reports rule failures to.
    pub fn rule_failure_counter(&self) -> RuleFailureCounter {
        RuleFailureCounter(self.rule_failures.clone())
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&[
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&[("route", route.to_string())])
            .observe(seconds);
    }

    pub fn ledger_posting(&self, operation: &'static str) {
        self.postings
            .get_or_create(&[("operation", operation)])
            .inc();
    }

    /// The job gauges, as read from the jobs table.
    pub fn set_job_queue(&self, due: i64, failed: i64) {
        self.job_queue_depth.set(due);
        self.jobs_failed.set(failed);
    }

    /// The purchase paths, as the store counted them since this process started.
    pub fn set_purchase_paths(&self, paths: patron_engine::model::PurchasePaths) {
        for (path, value) in [
            ("optimistic", paths.optimistic),
            ("locked_fallback", paths.locked_fallbacks),
        ] {
            let counter = self.purchase_paths.get_or_create(&[("path", path)]);
            let seen = counter.get();
            if value > seen {
                counter.inc_by(value - seen);
            }
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(8 * 1024);
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
