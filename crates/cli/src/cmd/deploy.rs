//! `paddock deploy validate|apply|status`: the whole-repo check of a deployments working tree,
//! one sync of a branch into the switchboard, and what the switchboard runs
//! (docs/deployments.md).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use paddock_core::api::deployment::{Applied, Report};
use paddock_core::api::format_ms;
use paddock_core::deployments;

use super::print_json;

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Check a deployments repo (its db/switchboard.yaml and db/sites/*.yaml): schema,
    /// unknown keys, duplicates, references. Prints every error as file:line:column: field:
    /// message; exit status 1 when there is any.
    Validate {
        /// The repository's working tree (the directory that holds `db/`).
        path: PathBuf,
        /// Print the result as JSON (`{"valid": …, "errors": [...], "summary": …}`).
        #[arg(long)]
        json: bool,
    },
    /// Bring the switchboard (PADDOCK_URL, an admin's PADDOCK_TOKEN) to the newest commit of a
    /// branch of the deployments repo, once: read with gix (a bare repo or a clone, no
    /// checkout), validated whole, then applied in one transaction, or reported rejected with
    /// every error. Exit status 1 when rejected.
    Apply {
        /// The deployments repo: a local git repository (bare or not), or a URL (`ssh://`,
        /// `git://`, `file://`, `git@host:path`) fetched with gix into a temporary mirror.
        repo: String,
        /// The branch whose newest commit is applied.
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// What the switchboard runs: applied commit, generation and time, and the newest
    /// rejected commit with its errors.
    Status {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: DeployCommand) -> anyhow::Result<()> {
    match cmd {
        DeployCommand::Validate { path, json } => validate(&path, json),
        DeployCommand::Apply { repo, branch } => apply(&repo, &branch).await,
        DeployCommand::Status { json } => status(json).await,
    }
}

async fn apply(repo: &str, branch: &str) -> anyhow::Result<()> {
    use paddock_deploy::apply::{Outcome, sync_once};
    let client = crate::client::Client::from_config()?;
    let source = paddock_deploy::git_source::Source::new(repo, &mirror_dir(repo));
    match sync_once(&source, branch, &client.deploy_target()).await? {
        Outcome::Unchanged { commit } => eprintln!("deploy: {commit} is already applied"),
        Outcome::Applied {
            commit,
            generation,
            summary,
        } => {
            for line in &summary {
                println!("{line}");
            }
            eprintln!(
                "deploy: applied {commit} (generation {generation}, {} changes)",
                summary.len()
            );
        }
        Outcome::Rejected { commit, errors } => {
            for e in &errors {
                println!("{e}");
            }
            anyhow::bail!(
                "deploy: {commit} rejected ({} errors); the previous state stays live",
                errors.len()
            );
        }
        // A one-shot sync remembers nothing; never taken here.
        Outcome::AlreadyRejected { commit } => {
            anyhow::bail!("deploy: {commit} was rejected; the previous state stays live")
        }
    }
    Ok(())
}

/// Where `paddock deploy apply URL` keeps the fetched commits between runs:
/// `$XDG_CACHE_HOME/paddock/deploy/<URL as a file name>` (or `~/.cache/…`).
fn mirror_dir(url: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let name: String = paddock_deploy::git_source::without_password(url)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache.join("paddock").join("deploy").join(name)
}

async fn status(json: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let client = crate::client::Client::from_config()?;
    let (raw, _): (serde_json::Value, serde_json::Value) = client.get_json("/deployment").await?;
    if json {
        print_json(&raw);
        return Ok(());
    }
    let v: Applied = serde_json::from_value(raw).context("decoding the answer")?;
    if v.commit.is_empty() {
        println!("applied:     nothing yet");
    } else {
        println!(
            "applied:     {} (generation {}, at {})",
            v.commit,
            v.generation,
            format_ms(v.applied_at)
        );
    }
    match &v.last_error {
        None => println!("last error:  none"),
        Some(e) => {
            println!(
                "last error:  commit {} rejected at {}:",
                e.commit,
                format_ms(e.at)
            );
            for line in &e.errors {
                println!("  {line}");
            }
            // The switchboard keeps the first errors of a commit and their total.
            let total = e.total_errors.max(e.errors.len());
            if total > e.errors.len() {
                println!("  … and {} more (total {total})", total - e.errors.len());
            }
        }
    }
    print_report(v.report.as_ref());
    Ok(())
}

/// The deploy daemon's view: remote, pending commit, drift, working tree, host activation.
fn print_report(r: Option<&Report>) {
    let Some(r) = r else {
        println!("daemon:      no report yet (no paddock-deploy has synced)");
        return;
    };
    let remote = match (&r.remote_commit, &r.remote_error) {
        (Some(c), _) => c.clone(),
        (None, Some(e)) => format!("unreadable: {e}"),
        _ => "?".into(),
    };
    println!(
        "remote:      {} branch {} at {remote} (checked {})",
        r.repo,
        r.branch,
        format_ms(r.checked_at)
    );
    println!("pending:     {}", r.pending.as_deref().unwrap_or("none"));
    println!("drift:       {}", r.drift.as_deref().unwrap_or("none"));
    if let Some(w) = &r.worktree {
        println!(
            "worktree:    {} at {}{}",
            w.path,
            w.head,
            if w.edited.is_empty() {
                String::new()
            } else {
                format!(", edited: {}", w.edited.join(", "))
            }
        );
    }
    if let Some(a) = &r.activation {
        println!(
            "activation:  {} of {} at {}",
            a.outcome,
            a.commit,
            format_ms(a.finished_at)
        );
        for (command, status) in &a.steps {
            println!("  {command} -> {status}");
        }
    }
}

/// Validates the working tree at `root`: every file under `db/` as on disk, links never
/// followed and files refused by their size before they are read (docs/deployments.md).
fn validate(root: &Path, json: bool) -> anyhow::Result<()> {
    let (files, refused) = paddock_deploy::worktree::read_db(root)?;
    let (state, errors) = match deployments::load_read(&files, &refused) {
        Ok(s) => (Some(s), vec![]),
        Err(d) => (None, d.0),
    };
    let summary = state.as_ref().map(|s| {
        format!(
            "{} users, {} sites, {} PDUs, {} supervisors ({} retired)",
            s.switchboard.users.len(),
            s.sites.len(),
            s.sites.iter().map(|x| x.pdus.len()).sum::<usize>(),
            s.sites.iter().map(|x| x.supervisors.len()).sum::<usize>(),
            s.sites
                .iter()
                .flat_map(|x| &x.supervisors)
                .filter(|v| v.retired)
                .count(),
        )
    });
    if json {
        print_json(&serde_json::json!({
            "valid": errors.is_empty(),
            "errors": errors,
            "summary": summary,
        }));
    } else {
        for e in &errors {
            println!("{e}");
        }
    }
    if errors.is_empty() {
        if !json {
            eprintln!("{}: valid: {}", root.display(), summary.unwrap_or_default());
        }
        Ok(())
    } else {
        anyhow::bail!("{}: {} errors", root.display(), errors.len())
    }
}
