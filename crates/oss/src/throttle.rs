//! The upload rate limit (`--max-upload-rate`): one token bucket shared by every body the
//! client sends, so the cap holds across all parts in flight, and across all the uploads of
//! a batch that share one limiter.
//!
//! Hand-written rather than `governor`: the whole need is one async `take(n)` over a
//! theoretical-arrival-time clock (GCRA), a dozen lines, where the crate brings its own clock
//! and quota types and a dependency tree.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Slowest rate accepted, 64 KiB/s: even 64 parts in flight then wait at most 16 s each for
/// their next 16 KiB slice, far inside the idle timeout that drops a stalled connection.
pub const MIN_RATE: u64 = 64 * 1024;

/// A shared bytes-per-second budget.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: u64,
    /// When the bytes granted so far will have been sent at the rate (GCRA's theoretical
    /// arrival time). Never behind "now" by more than [`BURST`], so an idle pause does not
    /// bank an unbounded burst.
    next: Mutex<Instant>,
}

/// Largest burst let through after an idle pause.
const BURST: Duration = Duration::from_millis(50);

impl RateLimiter {
    /// A limiter of `bytes_per_sec` (at least [`MIN_RATE`]).
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimiter {
            bytes_per_sec: bytes_per_sec.max(MIN_RATE),
            next: Mutex::new(Instant::now()),
        }
    }

    /// A limiter of `bytes_per_sec` to share between uploads (clone the `Arc`).
    pub fn shared(bytes_per_sec: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::new(bytes_per_sec))
    }

    /// The rate, bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Waits until `n` more bytes may go.
    pub async fn take(&self, n: usize) {
        let cost = Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
        let due = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let start = (*next).max(now.checked_sub(BURST).unwrap_or(now));
            *next = start + cost;
            // These bytes may go once the ones before them are through.
            start
        };
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Parses a rate: bytes per second with an optional binary suffix, as ossutil takes them
/// (`512K`, `10M`, `1G`, `10MiB`, `1048576`); `/s` may follow. At least [`MIN_RATE`].
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (bytes per second, e.g. 512K, 10M, 1G)"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (bytes per second, e.g. 512K, 10M, 1G)"))?;
    let rate = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if rate < MIN_RATE {
        return Err(format!(
            "{s:?} is below the slowest upload rate, {MIN_RATE} bytes per second"
        ));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("512K"), Ok(512 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("10MiB/s"), Ok(10 << 20));
        assert_eq!(parse_rate("1g"), Ok(1 << 30));
        assert_eq!(parse_rate("65536"), Ok(65536));
        assert!(parse_rate("10K").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1.5M").is_err());
        assert!(parse_rate("10X").is_err());
        assert!(parse_rate("99999999999999G").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_holds_the_rate_across_takers() {
        let limiter = std::sync::Arc::new(RateLimiter::new(256 * 1024));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..16 {
                    l.take(16 * 1024).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 1 MiB at 256 KiB/s: the last slice may start after ~3.94 s.
        assert!(
            start.elapsed() >= Duration::from_millis(3900),
            "{:?}",
            start.elapsed()
        );
    }
}
