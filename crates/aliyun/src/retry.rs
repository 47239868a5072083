//! Retry policy: exponential backoff with full jitter ("AWS architecture blog: Exponential
//! Backoff And Jitter"): attempt `n` sleeps a uniform random time in `[0, min(cap, base·2ⁿ)]`.
//! Full jitter spreads the retries of parallel part uploads that failed together (one dropped
//! link resets them all at once), so they do not hammer the server in lock-step.

use std::time::Duration;

use rand::Rng;

/// How often and how long to retry a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 10: with the defaults below that rides out
    /// about a minute of outage, which is what a flaky link or a server restart needs, and
    /// still fails in reasonable time when the network is really gone.
    pub max_attempts: u32,
    /// Backoff base. Default 200 ms.
    pub base_delay: Duration,
    /// Longest single sleep. Default 20 s.
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryConfig {
    /// No retries at all (one attempt).
    pub fn none() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }
    }

    /// Upper bound of the sleep after failed attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A random sleep in `[0, ceiling(attempt)]` (full jitter).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// Whether another attempt is allowed after `attempts_made` attempts.
    pub fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let r = RetryConfig::default();
        assert_eq!(r.ceiling(0), Duration::from_millis(200));
        assert_eq!(r.ceiling(1), Duration::from_millis(400));
        assert_eq!(r.ceiling(3), Duration::from_millis(1600));
        assert_eq!(r.ceiling(10), Duration::from_secs(20));
        assert_eq!(r.ceiling(200), Duration::from_secs(20));
        for attempt in 0..12 {
            assert!(r.backoff(attempt) <= r.ceiling(attempt));
        }
        assert!(r.may_retry(9));
        assert!(!r.may_retry(10));
        assert!(!RetryConfig::none().may_retry(1));
    }
}
