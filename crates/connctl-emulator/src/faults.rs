//! Fault injection: the seeded per-sequence-number RNG (fail-rate 503s and jitter), the
//! requests-per-second limiter (429 + `Retry-After`) and the admin-programmed faults
//! ("fail the next N `POST /data/connection`").

use std::time::{Duration, Instant};

/// SplitMix64: a tiny, well-mixed, dependency-free hash used as the seeded RNG.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for `(seed, seq, stream)`.
pub fn unit(seed: u64, seq: u64, stream: u64) -> f64 {
    let h = splitmix64(seed ^ splitmix64(seq.wrapping_mul(0x100).wrapping_add(stream)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether the request with fault sequence number `seq` (0-based, counting only Immuta and
/// warehouse requests since start or the last reset) is answered 503 under `seed`/`fail_rate`.
/// Public so tests can predict the exact sequence.
pub fn fault_decision(seed: u64, seq: u64, fail_rate: f64) -> bool {
    fail_rate > 0.0 && unit(seed, seq, 1) < fail_rate
}

/// Jitter in milliseconds for request `seq`.
pub fn jitter(seed: u64, seq: u64, jitter_ms: u64) -> u64 {
    if jitter_ms == 0 {
        return 0;
    }
    ((unit(seed, seq, 2) * (jitter_ms as f64 + 1.0)) as u64).min(jitter_ms)
}

/// A fixed one-second window that opens at the first request after the previous one closed.
#[derive(Debug, Default)]
pub struct RateWindow {
    start: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// `Ok(())` if admitted, `Err(seconds until the window closes)` if over the limit.
    pub fn admit(&mut self, limit: u32, now: Instant) -> Result<(), u64> {
        let window = Duration::from_secs(1);
        match self.start {
            Some(s) if now.duration_since(s) < window => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        if self.count < limit {
            self.count += 1;
            Ok(())
        } else {
            let left = self
                .start
                .map(|s| window.saturating_sub(now.duration_since(s)))
                .unwrap_or(window);
            Err(left.as_millis().div_ceil(1000).max(1) as u64)
        }
    }

    pub fn reset(&mut self) {
        *self = RateWindow::default();
    }
}

/// An admin-programmed fault: the next `remaining` requests with `method` and exact `path`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InjectedFault {
    pub method: String,
    pub path: String,
    pub remaining: u64,
    pub status: Option<u16>,
    pub delay_ms: Option<u64>,
    /// The request is carried out first; then, after `delay_ms`, the answer is `status` instead
    /// of the real one (a lost answer), or the real one late when there is no `status`.
    #[serde(default)]
    pub after: bool,
}

/// Take one use of the first fault matching `method path`, if any.
pub fn take_injected(faults: &mut Vec<InjectedFault>, method: &str, path: &str) -> Option<InjectedFault> {
    let idx = faults
        .iter()
        .position(|f| f.method.eq_ignore_ascii_case(method) && f.path == path)?;
    let f = &mut faults[idx];
    f.remaining = f.remaining.saturating_sub(1);
    let out = f.clone();
    if f.remaining == 0 {
        faults.remove(idx);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_repeatable_and_near_the_rate() {
        let a: Vec<bool> = (0..1000).map(|s| fault_decision(7, s, 0.2)).collect();
        let b: Vec<bool> = (0..1000).map(|s| fault_decision(7, s, 0.2)).collect();
        assert_eq!(a, b);
        let n = a.iter().filter(|x| **x).count();
        assert!((150..250).contains(&n), "{n}");
        let c: Vec<bool> = (0..1000).map(|s| fault_decision(8, s, 0.2)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn window_limits() {
        let mut w = RateWindow::default();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(w.admit(3, now).is_ok());
        }
        assert_eq!(w.admit(3, now), Err(1));
    }
}
