//! Exponential backoff with jitter for reconnecting: the delay doubles from `min` up to `max`,
//! and each delay is drawn at random from its upper half, so a fleet of supervisors cut off
//! together does not reconnect in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
        ceiling.mul_f64(jitter).max(Duration::from_millis(1))
    }

    /// Called after a connection succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_ceiling_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400) && delays[3] <= Duration::from_millis(800));
        for d in &delays[5..] {
            assert!(
                *d >= Duration::from_secs(1) && *d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
        // Jitter: ten delays at the ceiling are not all equal.
        let at_ceiling: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(at_ceiling.iter().any(|d| *d != at_ceiling[0]));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
