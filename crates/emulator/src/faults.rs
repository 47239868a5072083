//! Deterministic fault injection. Every decision is a pure function of the seed, the kind of
//! fault and how many calls of that kind came before, so a test with a given seed sees the same
//! calls fail on every run (as long as its calls arrive in the same order).

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Faults to inject. All default to off. Changeable at run time with
/// [`crate::Emulator::set_faults`] or `POST /_emulator/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Seed of every random decision below. Default 0.
    pub seed: u64,
    /// Share (0–1) of UploadPart calls answered with `500 InternalError` or
    /// `503 ServiceUnavailable` (chosen by the seed) after the body has been read; the part is
    /// not stored. Default 0.
    pub upload_part_error_rate: f64,
    /// Share (0–1) of UploadPart calls whose connection is reset after
    /// [`Faults::reset_after_bytes`] bytes of the body, with no response. Default 0.
    pub upload_part_reset_rate: f64,
    /// How many body bytes are read before a reset. Default 65536.
    pub reset_after_bytes: u64,
    /// Share (0–1) of signed OSS requests answered with `403 RequestTimeTooSkewed` whatever
    /// their date. Default 0.
    pub time_skew_rate: f64,
    /// Delay added before every OSS, ECS and RAM response, in milliseconds. Default 0.
    pub delay_ms: u64,
    /// Bandwidth cap applied to every request and response body, in bytes per second;
    /// 0 means unlimited. Default 0.
    pub bandwidth_bytes_per_sec: u64,
    /// Import tasks created while this is set end `Failed` (image `CreateFailed`). Default false.
    pub fail_import: bool,
    /// ECS/RAM/STS actions (e.g. `DescribeTasks`) answered `503 ServiceUnavailable` every time,
    /// after the signature is checked: an outage that outlasts every retry. Default none.
    pub unavailable_actions: Vec<String>,
    /// `x-acs-retry-after` (seconds) on those answers, as the API gateway sends it when it
    /// sheds load; lets a test shorten the client's backoff. Default none (no header).
    pub unavailable_retry_after: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            upload_part_error_rate: 0.0,
            upload_part_reset_rate: 0.0,
            reset_after_bytes: 64 * 1024,
            time_skew_rate: 0.0,
            delay_ms: 0,
            bandwidth_bytes_per_sec: 0,
            fail_import: false,
            unavailable_actions: Vec::new(),
            unavailable_retry_after: None,
        }
    }
}

/// Upper bound of `delay_ms`: one minute, longer than any client timeout worth testing.
pub const MAX_DELAY_MS: u64 = 60_000;

/// The kinds of random decision, each with its own call counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// UploadPart answered 500/503.
    UploadPartError,
    /// UploadPart connection reset.
    UploadPartReset,
    /// RequestTimeTooSkewed.
    TimeSkew,
}

impl FaultKind {
    fn salt(self) -> u64 {
        match self {
            FaultKind::UploadPartError => 0x9E37_79B9_7F4A_7C15,
            FaultKind::UploadPartReset => 0xC2B2_AE3D_27D4_EB4F,
            FaultKind::TimeSkew => 0x1656_67B1_9E37_79F9,
        }
    }
}

/// SplitMix64: a tiny, well-mixed, forever-stable generator (unlike `StdRng`, whose algorithm
/// may change between `rand` versions).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Faults {
    /// Checks that rates are shares in 0..=1 and the delay is bounded.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, v) in [
            ("upload_part_error_rate", self.upload_part_error_rate),
            ("upload_part_reset_rate", self.upload_part_reset_rate),
            ("time_skew_rate", self.time_skew_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::Fault {
                    name,
                    value: v.to_string(),
                    expected: "a share between 0 and 1",
                });
            }
        }
        if self.delay_ms > MAX_DELAY_MS {
            return Err(Error::Fault {
                name: "delay_ms",
                value: self.delay_ms.to_string(),
                expected: "at most 60000",
            });
        }
        Ok(())
    }

    /// A copy with rates clamped to 0..=1 (NaN becomes 0) and the delay to [`MAX_DELAY_MS`].
    pub fn clamped(mut self) -> Self {
        for r in [
            &mut self.upload_part_error_rate,
            &mut self.upload_part_reset_rate,
            &mut self.time_skew_rate,
        ] {
            *r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        }
        self.delay_ms = self.delay_ms.min(MAX_DELAY_MS);
        self
    }

    fn rate(&self, kind: FaultKind) -> f64 {
        match kind {
            FaultKind::UploadPartError => self.upload_part_error_rate,
            FaultKind::UploadPartReset => self.upload_part_reset_rate,
            FaultKind::TimeSkew => self.time_skew_rate,
        }
    }

    /// A value in [0, 1) for call number `index` of `kind`.
    pub fn roll(&self, kind: FaultKind, index: u64) -> f64 {
        let r = splitmix64(self.seed ^ kind.salt() ^ splitmix64(index));
        // 53 random bits -> [0, 1). The shift leaves 53 bits, exactly representable in f64.
        let top = r >> 11;
        #[allow(clippy::cast_precision_loss)]
        let f = top as f64 / (1u64 << 53) as f64;
        f
    }

    /// Whether call number `index` of `kind` fails.
    pub fn fires(&self, kind: FaultKind, index: u64) -> bool {
        let rate = self.rate(kind);
        rate > 0.0 && self.roll(kind, index) < rate
    }

    /// For a failing UploadPart: 503 on odd rolls, 500 otherwise.
    pub fn error_status(&self, index: u64) -> u16 {
        if splitmix64(self.seed ^ index ^ 0x5555) & 1 == 1 {
            503
        } else {
            500
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_close_to_rate() {
        let f = Faults {
            seed: 42,
            upload_part_error_rate: 0.5,
            ..Faults::default()
        };
        let a: Vec<bool> = (0..1000)
            .map(|i| f.fires(FaultKind::UploadPartError, i))
            .collect();
        let b: Vec<bool> = (0..1000)
            .map(|i| f.fires(FaultKind::UploadPartError, i))
            .collect();
        assert_eq!(a, b);
        let n = a.iter().filter(|x| **x).count();
        assert!((400..600).contains(&n), "{n}");
        assert!(!f.fires(FaultKind::TimeSkew, 3));
    }

    #[test]
    fn validation() {
        let f = Faults {
            upload_part_error_rate: 1.5,
            ..Faults::default()
        };
        assert!(f.validate().is_err());
        assert!(Faults::default().validate().is_ok());
    }
}
