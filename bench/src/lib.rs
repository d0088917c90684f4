//! Shared helpers for Patron's benchmarks (see BENCHMARKS.md for what is measured and how).

use std::time::{Duration, Instant};

/// Runs `rounds` measurements and returns the median duration.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Operations per second for `count` operations taking `elapsed`.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Times one async block.
pub async fn time<F: std::future::Future<Output = ()>>(f: F) -> Duration {
    let start = Instant::now();
    f.await;
    start.elapsed()
}
