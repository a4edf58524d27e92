//! Prometheus text exposition: jobs by execution state (from the database, so it is right for
//! the whole cluster), supervisors connected to this process, and a histogram of scheduling
//! latency (enqueue to `start_job` sent) as measured by this process.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use paddock_core::ExecutionState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    latency: Mutex<Histogram>,
    pub refused_transitions: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn observe_scheduling_latency(&self, seconds: f64) {
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn render(
        &self,
        jobs_by_state: &std::collections::HashMap<String, i64>,
        supervisors_connected: usize,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP paddock_jobs Jobs by execution state.");
        let _ = writeln!(out, "# TYPE paddock_jobs gauge");
        for s in ExecutionState::ALL {
            let n = jobs_by_state.get(s.as_str()).copied().unwrap_or(0);
            let _ = writeln!(out, "paddock_jobs{{state=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP paddock_supervisors_connected Supervisors connected to this switchboard process."
        );
        let _ = writeln!(out, "# TYPE paddock_supervisors_connected gauge");
        let _ = writeln!(out, "paddock_supervisors_connected {supervisors_connected}");
        let _ = writeln!(
            out,
            "# HELP paddock_refused_transitions_total Job state reports refused as illegal."
        );
        let _ = writeln!(out, "# TYPE paddock_refused_transitions_total counter");
        let _ = writeln!(
            out,
            "paddock_refused_transitions_total {}",
            self.refused_transitions.load(Ordering::Relaxed)
        );
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP paddock_scheduling_latency_seconds Time from enqueue to start_job sent."
        );
        let _ = writeln!(out, "# TYPE paddock_scheduling_latency_seconds histogram");
        for (b, c) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "paddock_scheduling_latency_seconds_bucket{{le=\"{b}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "paddock_scheduling_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "paddock_scheduling_latency_seconds_sum {}", h.sum);
        let _ = writeln!(out, "paddock_scheduling_latency_seconds_count {}", h.count);
        out
    }
}
