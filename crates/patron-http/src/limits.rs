//! Rate limits: a token bucket per API key and per client address, in memory.
//!
//! Each bucket holds up to one second of traffic (`rate` tokens) and refills continuously at
//! `rate` tokens per second, so a client may burst to its rate and then keep to it. The limits
//! are per process: behind a load balancer with N instances a client gets up to N times the
//! rate. Idle buckets are forgotten so the table stays bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle ones are swept.
const BUCKETS_SWEEP_AT: usize = 10_000;
/// A bucket untouched this long is full again and can be forgotten.
const BUCKET_IDLE_SECONDS: f64 = 60.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
pub struct RateLimiter<K> {
    /// Tokens per second, and the bucket size; 0 disables the limit.
    rate_per_second: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate_per_second: u32) -> Self {
        RateLimiter {
            rate_per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`. `Err(seconds)` when the bucket is empty: how long until a
    /// token is there again (at least 1, as `Retry-After` counts whole seconds).
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        if self.rate_per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.rate_per_second);
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= BUCKETS_SWEEP_AT {
            buckets.retain(|_, bucket| {
                now.duration_since(bucket.updated).as_secs_f64() < BUCKET_IDLE_SECONDS
            });
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_seconds = ((1.0 - bucket.tokens) / rate).ceil();
            // Bounded: at most 1 / rate ≤ 1 second.
            Err((wait_seconds as u64).max(1))
        }
    }
}
