//! Audit agent figures: a full `collect` on this machine (wall time per run), every parser
//! over every fixture, and a timed fuzz of every parser (mutated fixtures and random bytes,
//! panics counted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paddock_audit::parse::*;

use crate::scheduler::percentile;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Full collects timed on this machine.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Seconds of fuzzing (split over the parsers).
    #[arg(long, default_value_t = 30)]
    pub fuzz_s: u64,
}

/// `(name, parser)`: every tool-output parser, errors discarded.
type Parser = (&'static str, fn(&str));

const PARSERS: &[Parser] = &[
    ("dmidecode", |t| drop(dmidecode::parse(t))),
    ("lsblk", |t| drop(lsblk::parse(t))),
    ("lscpu", |t| drop(lscpu::parse(t))),
    ("lspci", |t| drop(lspci::parse(t))),
    ("ip addr", |t| drop(ip::parse_addr(t))),
    ("ip route", |t| drop(ip::parse_route(t))),
    ("ipmitool sensor", |t| drop(ipmitool::parse_sensors(t))),
    ("ipmitool fru", |t| drop(ipmitool::parse_fru(t))),
    ("nvidia-smi xml", |t| drop(nvidia_smi::parse(t))),
    ("nvidia-smi text", |t| drop(nvidia_smi::parse_text(t))),
    ("nvme id-ctrl", |t| drop(nvme::parse_id_ctrl(t))),
    ("nvme smart-log", |t| drop(nvme::parse_smart_log(t))),
    ("meminfo", |t| drop(proc::meminfo(t))),
    ("cpuinfo", |t| drop(proc::cpuinfo(t))),
    ("mounts", |t| drop(proc::mounts(t))),
    ("smartctl json", |t| drop(smartctl::parse(t))),
    ("smartctl text", |t| drop(smartctl::parse_text(t))),
    ("smartctl scan", |t| drop(smartctl::parse_scan(t))),
];

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/tests/data");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A small deterministic generator (xorshift), so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    // 1. A full collect here.
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..opts.runs.max(1) {
        let t0 = Instant::now();
        let r = paddock_audit::report::collect(
            Arc::new(paddock_audit::host::Local),
            paddock_audit::collectors::all(),
            Duration::from_secs(60),
        );
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        last = Some(r);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    if let Some(r) = &last {
        let statuses: Vec<String> = r
            .collectors
            .iter()
            .map(|(n, c)| format!("{n}={:?}/{}ms", c.status, c.duration_ms).to_lowercase())
            .collect();
        println!("audit  collectors here: {}", statuses.join(" "));
    }
    println!(
        "audit  full collect on this machine: median {:.0} ms, slowest {:.0} ms of {} runs (target < 2 s)",
        percentile(&ms, 0.5),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    );

    // 2. Every parser over every fixture.
    let files = fixtures();
    let texts: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let t0 = Instant::now();
    for t in &texts {
        for (_, p) in PARSERS {
            p(t);
        }
    }
    println!(
        "audit  {} parsers x {} fixture files ({:.1} MiB): {:.0} ms",
        PARSERS.len(),
        texts.len(),
        bytes as f64 / (1024.0 * 1024.0),
        t0.elapsed().as_secs_f64() * 1000.0
    );

    // 3. Fuzz: each parser in turn gets mutated fixtures and random bytes for its share of
    // the time; a panic is caught and counted.
    let per_parser = Duration::from_secs(opts.fuzz_s.max(1)).div_f64(PARSERS.len() as f64);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    let mut panics = 0u64;
    let t_all = Instant::now();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, p) in PARSERS {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < per_parser {
            let input: Vec<u8> = if !texts.is_empty() && !rng.next().is_multiple_of(4) {
                let base = texts[(rng.next() as usize) % texts.len()].as_bytes();
                // Keep inputs short enough for many executions: a window of the fixture.
                let start = (rng.next() as usize) % base.len().max(1);
                let len = 1 + (rng.next() as usize) % 4096;
                let mut v = base[start.min(base.len())..(start + len).min(base.len())].to_vec();
                for _ in 0..(rng.next() % 8) {
                    if !v.is_empty() {
                        let i = (rng.next() as usize) % v.len();
                        v[i] = rng.next() as u8;
                    }
                }
                v
            } else {
                (0..(rng.next() % 512)).map(|_| rng.next() as u8).collect()
            };
            let text = String::from_utf8_lossy(&input);
            if std::panic::catch_unwind(|| p(&text)).is_err() {
                panics += 1;
                eprintln!("audit  PANIC in {name} on {} bytes", input.len());
            }
            n += 1;
        }
        total += n;
    }
    std::panic::set_hook(quiet);
    println!(
        "audit  fuzzed {} parsers for {:.1} s: {} inputs ({:.0}/s), {} panics",
        PARSERS.len(),
        t_all.elapsed().as_secs_f64(),
        total,
        total as f64 / t_all.elapsed().as_secs_f64(),
        panics
    );
    anyhow::ensure!(panics == 0, "{panics} parser panics");
    Ok(())
}
