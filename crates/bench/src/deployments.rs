//! `paddock-bench deployments`: validate + plan time of a synthetic deployments DB (default
//! 10,000 supervisors over 100 sites): the YAML text is generated in memory, then read whole
//! (`paddock_core::deployments::load`: parse, schema, cross-file checks) and planned against
//! the same fleet with one supervisor in a hundred changed and, per site, one added and one
//! removed.

use std::time::Instant;

use clap::Args;
use paddock_core::deployments::{load, plan};

use crate::scheduler::percentile;

#[derive(Debug, Args)]
pub struct Options {
    /// Sites (one file each).
    #[arg(long, default_value_t = 100)]
    sites: usize,
    /// Supervisors in all, spread evenly over the sites.
    #[arg(long, default_value_t = 10_000)]
    supervisors: usize,
    /// Timed repetitions (the median and the slowest are printed).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// One site's YAML: a PDU per 16 supervisors, every supervisor on its own port, tags, an ACL
/// naming a declared user, a token hash and a MAC: every check has work to do.
fn site_yaml(site: usize, per_site: usize, variant: usize) -> String {
    let mut y = String::from("image_stores:\n  - http://127.0.0.1:8081\npdus:\n");
    for p in 0..per_site.div_ceil(16) {
        y.push_str(&format!(
            "  - name: pdu-{p}\n    driver: shell\n    config: {{ on: 'true', off: 'true' }}\n"
        ));
    }
    y.push_str("supervisors:\n");
    for i in 0..per_site {
        let n = site * per_site + i;
        // Variant 1: one in a hundred gets another tag; each site's first is replaced by a
        // new one (one added, one retired).
        let (id, tag) = if variant == 1 && i == 0 {
            (n + 1_000_000, "x")
        } else if variant == 1 && n % 100 == 50 {
            (n, "changed")
        } else {
            (n, "x")
        };
        y.push_str(&format!(
            "  - id: 00000000-0000-7000-8000-{id:012x}\n    name: sup-{id}\n    kind: local\n    tags: [site:s{site}, arch:x86_64, board:b{b}, t:{tag}]\n    pdu: pdu-{p}\n    pdu_port: {port}\n    acl:\n      allow:\n        users: [alice]\n    token_sha256: {hash:064x}\n    mac: 02:00:{m3:02x}:{m2:02x}:{m1:02x}:{m0:02x}\n",
            b = n % 7,
            p = i / 16,
            port = i % 16,
            hash = id as u128 + 1,
            m3 = (id >> 24) & 0xff,
            m2 = (id >> 16) & 0xff,
            m1 = (id >> 8) & 0xff,
            m0 = id & 0xff,
        ));
    }
    y
}

fn repo(sites: usize, supervisors: usize, variant: usize) -> Vec<(String, String)> {
    let per_site = supervisors / sites.max(1);
    let mut files = vec![(
        "db/switchboard.yaml".to_string(),
        "users:\n  - name: alice\n    privileges: [admin]\n".to_string(),
    )];
    for s in 0..sites {
        files.push((
            format!("db/sites/s{s}.yaml"),
            site_yaml(s, per_site, variant),
        ));
    }
    files
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    let old = repo(opts.sites, opts.supervisors, 0);
    let new = repo(opts.sites, opts.supervisors, 1);
    let bytes: usize = new.iter().map(|(_, t)| t.len()).sum();
    let live = load(&old).map_err(|e| anyhow::anyhow!("synthetic DB invalid:\n{e}"))?;
    let (mut t_load, mut t_plan, mut t_total) = (vec![], vec![], vec![]);
    let mut changes = 0;
    for _ in 0..opts.runs.max(1) {
        let t0 = Instant::now();
        let desired = load(&new).map_err(|e| anyhow::anyhow!("synthetic DB invalid:\n{e}"))?;
        let t1 = Instant::now();
        changes = plan(&live, &desired).len();
        let t2 = Instant::now();
        t_load.push((t1 - t0).as_secs_f64() * 1000.0);
        t_plan.push((t2 - t1).as_secs_f64() * 1000.0);
        t_total.push((t2 - t0).as_secs_f64() * 1000.0);
    }
    for v in [&mut t_load, &mut t_plan, &mut t_total] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    println!(
        "deployments  {} supervisors over {} sites ({:.1} MiB of YAML), {changes} changes planned",
        opts.supervisors,
        opts.sites,
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "deployments  validate (parse + schema + cross-file checks) median {:.0} ms   plan median {:.1} ms   validate+plan median {:.0} ms, slowest {:.0} ms of {} runs",
        percentile(&t_load, 0.5),
        percentile(&t_plan, 0.5),
        percentile(&t_total, 0.5),
        t_total.last().copied().unwrap_or(f64::NAN),
        t_total.len()
    );
    Ok(())
}
