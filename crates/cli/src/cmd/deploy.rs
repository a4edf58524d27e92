//! `paddock deploy validate|apply|status`: the whole-repo check of a deployments working tree,
//! one sync of a branch into the switchboard, and what the switchboard runs
//! (docs/deployments.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use paddock_core::deployments::{self, Diagnostic, Pos};

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
        /// The git repository (bare or not) of the deployments repo.
        repo: PathBuf,
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// What the switchboard runs: applied commit, generation and time, and the newest
    /// rejected commit with its errors.
    Status {
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

async fn apply(repo: &Path, branch: &str) -> anyhow::Result<()> {
    use paddock_deploy::apply::{Outcome, sync_once};
    let client = crate::client::Client::from_config()?;
    match sync_once(repo, branch, &client.deploy_target()).await? {
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
    }
    Ok(())
}

async fn status(json: bool) -> anyhow::Result<()> {
    let client = crate::client::Client::from_config()?;
    let (v, raw): (serde_json::Value, serde_json::Value) = client.get_json("/deployment").await?;
    if json {
        print_json(&raw);
        return Ok(());
    }
    let commit = v["commit"].as_str().unwrap_or("");
    if commit.is_empty() {
        println!("applied:     nothing yet");
    } else {
        println!(
            "applied:     {commit} (generation {}, at {})",
            v["generation"],
            paddock_core::api::format_ms(v["applied_at"].as_i64().unwrap_or(0))
        );
    }
    match v["last_error"].as_object() {
        None => println!("last error:  none"),
        Some(e) => {
            println!(
                "last error:  commit {} rejected at {}:",
                e["commit"].as_str().unwrap_or("?"),
                paddock_core::api::format_ms(e["at"].as_i64().unwrap_or(0))
            );
            for line in e["errors"].as_array().into_iter().flatten() {
                println!("  {}", line.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

/// `(path relative to the repo root, text)` of each file under `db/`.
pub type DbFiles = Vec<(String, String)>;

/// Reads every file under `root/db`; a file that is not UTF-8 becomes an error of its own.
pub fn read_db(root: &Path) -> anyhow::Result<(DbFiles, Vec<Diagnostic>)> {
    let db = root.join("db");
    if !db.is_dir() {
        anyhow::bail!(
            "{}: no db/ directory (expected db/switchboard.yaml and db/sites/<site>.yaml)",
            root.display()
        );
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut stack = vec![db];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Editor droppings and hidden files are not part of the DB.
            if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => files.push((rel, text)),
                    Err(_) => errors.push(Diagnostic::new(
                        &rel,
                        Pos { line: 1, column: 1 },
                        "",
                        "not UTF-8 text",
                    )),
                },
                Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
            }
        }
    }
    Ok((files, errors))
}

fn validate(root: &Path, json: bool) -> anyhow::Result<()> {
    let (files, mut errors) = read_db(root)?;
    let state = match deployments::load(&files) {
        Ok(s) => Some(s),
        Err(d) => {
            errors.extend(d.0);
            None
        }
    };
    let state = state.filter(|_| errors.is_empty());
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
