//! The one retry driver of every Alibaba Cloud client (OSS, ECS/RAM RPC): one error
//! classification ([`classify_answer`], [`Verdict`]) and one loop ([`retry`]) with exponential
//! backoff and full jitter ("AWS architecture blog: Exponential Backoff And Jitter"): attempt
//! `n` sleeps a uniform random time in `[0, min(cap, base·2ⁿ)]`. Full jitter spreads the
//! retries of parallel part uploads that failed together (one dropped link resets them all at
//! once), so they do not hammer the server in lock-step.
//!
//! Exactly one layer retries: a client wraps one whole attempt (sign, send, read and check the
//! answer) in [`retry`], and nothing above it loops again, so a request is sent at most
//! [`RetryConfig::max_attempts`] times whatever fails.

use std::future::Future;
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

/// Longest server-requested wait honoured (`x-acs-retry-after`, `Retry-After`): beyond it the
/// backoff decides, so a confused server cannot park the client for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What one failed attempt means for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same request would fail the same way: give up.
    Fatal,
    /// Transient: try again after the backoff, or after `after` when the server said how long
    /// (capped at [`MAX_RETRY_AFTER`]).
    Retry {
        /// The server's wait, if it gave one.
        after: Option<Duration>,
    },
    /// The server refused our clock and the client has corrected it: sign again at once.
    Resign,
}

impl Verdict {
    /// [`Verdict::Retry`] after the backoff.
    pub const RETRY: Verdict = Verdict::Retry { after: None };
}

/// The shared classification of an error answer by HTTP status and service error code:
///
/// * clock skew (`RequestTimeTooSkewed` from OSS, `InvalidTimeStamp.*` from RPC APIs):
///   [`Verdict::Resign`];
/// * 5xx, 429, `Throttling*`, `ServiceUnavailable`, `InternalError`, `UnknownError`:
///   retry;
/// * `RequestTimeout` (the body did not arrive in time) and `InvalidDigest` (it arrived
///   changed): OSS 400s a damaged or slow transfer gets, retried as the official Go SDK v2
///   retries them;
/// * every other 4xx: fatal.
pub fn classify_answer(status: u16, code: &str) -> Verdict {
    if code == "RequestTimeTooSkewed" || code.starts_with("InvalidTimeStamp") {
        return Verdict::Resign;
    }
    let transient = status >= 500
        || status == 429
        || code.starts_with("Throttling")
        || matches!(
            code,
            "ServiceUnavailable"
                | "InternalError"
                | "UnknownError"
                | "RequestTimeout"
                | "InvalidDigest"
        );
    if transient {
        Verdict::RETRY
    } else {
        Verdict::Fatal
    }
}

/// Failures with no answer (cannot connect, timed out, connection reset, answer cut off) are
/// always worth another attempt: nothing was decided by the server.
pub const NO_ANSWER: Verdict = Verdict::RETRY;

/// Clock corrections in a row before giving up: one should do, a second covers a clock that
/// moved meanwhile.
pub const MAX_RESIGNS: u32 = 2;

/// Runs `attempt` until it succeeds, `verdict` calls its error fatal, or
/// [`RetryConfig::max_attempts`] attempts were made, sleeping [`RetryConfig::backoff`] (or the
/// server's wait) between them. A [`Verdict::Resign`] is retried at once, at most
/// [`MAX_RESIGNS`] times, outside the attempt budget (a corrected clock is not a failure of
/// the network): `attempt` runs at most `max_attempts + MAX_RESIGNS` times in all.
pub async fn retry<T, E, F, Fut>(
    config: &RetryConfig,
    mut attempt: F,
    verdict: impl Fn(&E) -> Verdict,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // Failed attempts that count against the budget (clock corrections do not).
    let mut made = 0u32;
    let mut resigns = 0u32;
    loop {
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match verdict(&err) {
            Verdict::Fatal => return Err(err),
            Verdict::Resign if resigns < MAX_RESIGNS => {
                resigns += 1;
                continue;
            }
            Verdict::Resign => return Err(err),
            _ if !config.may_retry(made + 1) => return Err(err),
            Verdict::Retry { after } => {
                let wait = after
                    .map(|a| a.min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| config.backoff(made));
                made += 1;
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;

    #[test]
    fn classification() {
        assert_eq!(classify_answer(503, "ServiceUnavailable"), Verdict::RETRY);
        assert_eq!(classify_answer(500, ""), Verdict::RETRY);
        assert_eq!(classify_answer(429, ""), Verdict::RETRY);
        assert_eq!(classify_answer(400, "Throttling.User"), Verdict::RETRY);
        assert_eq!(classify_answer(400, "RequestTimeout"), Verdict::RETRY);
        assert_eq!(classify_answer(400, "InvalidDigest"), Verdict::RETRY);
        assert_eq!(
            classify_answer(403, "RequestTimeTooSkewed"),
            Verdict::Resign
        );
        assert_eq!(
            classify_answer(400, "InvalidTimeStamp.Expired"),
            Verdict::Resign
        );
        assert_eq!(classify_answer(400, "InvalidParameter"), Verdict::Fatal);
        assert_eq!(
            classify_answer(403, "SignatureDoesNotMatch"),
            Verdict::Fatal
        );
        assert_eq!(classify_answer(404, "NoSuchUpload"), Verdict::Fatal);
    }

    fn fast(max_attempts: u32) -> RetryConfig {
        RetryConfig {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn the_driver_makes_at_most_max_attempts() {
        // Always transient: exactly max_attempts calls.
        let calls = Cell::new(0u32);
        let r: Result<(), &str> = retry(
            &fast(4),
            || {
                calls.set(calls.get() + 1);
                async { Err("reset") }
            },
            |_| Verdict::RETRY,
        )
        .await;
        assert_eq!((r, calls.get()), (Err("reset"), 4));
        // Clock corrections: at most MAX_RESIGNS, even with no retries allowed.
        calls.set(0);
        let _ = retry(
            &RetryConfig::none(),
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>("skew") }
            },
            |_| Verdict::Resign,
        )
        .await;
        assert_eq!(calls.get(), 3);
        // Fatal: one call.
        calls.set(0);
        let _ = retry(
            &fast(5),
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>("denied") }
            },
            |_| Verdict::Fatal,
        )
        .await;
        assert_eq!(calls.get(), 1);
        // Success after two failures.
        calls.set(0);
        let r = retry(
            &fast(5),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("x")
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| Verdict::RETRY,
        )
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_wait_is_honoured_and_capped() {
        let start = tokio::time::Instant::now();
        let _ = retry(
            &fast(2),
            || async { Err::<(), _>(()) },
            |_| Verdict::Retry {
                after: Some(Duration::from_secs(3600)),
            },
        )
        .await;
        assert_eq!(start.elapsed(), MAX_RETRY_AFTER);
    }

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
