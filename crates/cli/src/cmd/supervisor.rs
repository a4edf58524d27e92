//! `paddock supervisor add|list|status|set|audit|token`.

use anyhow::Context;
use clap::Subcommand;
use paddock_core::acl::Acl;
use paddock_core::api::supervisors::{
    CreateSupervisorRequest, NewSupervisor, SupervisorList, SupervisorView, UpdateSupervisorRequest,
};
use paddock_core::{Name, Tag};

use super::print_json;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum SupervisorCommand {
    /// Register a supervisor; prints its token once, alone on the last line.
    Add {
        /// Its name, unique in the lab.
        name: Name,
        /// Comma-separated tags, e.g. board:nrf52840dk,site:lab1.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<Tag>,
        /// The site it belongs to (a name, as in the deployments repo's db/sites/SITE.yaml).
        #[arg(long)]
        site: Name,
    },
    /// List supervisors.
    List {
        /// Print the API's records as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one supervisor, by id or name.
    Status {
        /// The supervisor: its id or its name.
        supervisor: String,
        /// Print the API's record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a supervisor (by id or name): tags, retirement, readiness, ACL, comment. Fields
    /// not given stay as they are. Prints the changed record. Putting a supervisor in service
    /// (`--ready-for-service true`) is an admin's; a supervisor the deployments repo declares
    /// gets the repo's values back at the deploy daemon's next apply.
    Set {
        /// The supervisor: its id or its name.
        supervisor: String,
        /// The new tags, comma-separated, replacing the old ones (`--tags ''` removes all).
        #[arg(long)]
        tags: Option<String>,
        /// Retire (`true`: no new jobs; a running one finishes) or bring back (`false`).
        #[arg(long, value_name = "true|false")]
        retired: Option<bool>,
        /// Put in service (`true`, admin only) or take out of service (`false`).
        #[arg(long, value_name = "true|false")]
        ready_for_service: Option<bool>,
        /// The supervisor's ACL, replacing the old one: a YAML or JSON file shaped like the
        /// API's `acl`, e.g. `{deny: {users: [bob]}, allow: {privileges: [submit_jobs]}}`;
        /// `{}` removes every rule.
        #[arg(long, value_name = "FILE")]
        acl_file: Option<std::path::PathBuf>,
        /// A free-text note (`--comment ''` removes it).
        #[arg(long)]
        comment: Option<String>,
        /// Print the changed record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The newest audit of a supervisor's host: its inventory's verdict and its last baseline
    /// check run, check by check (docs/audit.md).
    Audit {
        /// The supervisor: its id or its name.
        supervisor: String,
        /// Print the latest inventory and check run whole, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Supervisor credentials for the deployments repo.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a fresh supervisor id and token, offline. Prints the YAML lines for the
    /// deployments repo (`id:` and `token_sha256:`, safe to commit) on standard error, and the
    /// token, which goes into the site's secrets and never into git, alone on standard output.
    New,
    /// Mint a new token for a supervisor (by id or name) on the switchboard; the old one stops
    /// working. Prints the token once, alone on standard output. For supervisors the
    /// deployments repo declares without `token_sha256`, or a lost token.
    Reset {
        /// The supervisor: its id or its name.
        supervisor: String,
    },
}

pub async fn run(cmd: SupervisorCommand) -> anyhow::Result<()> {
    if let SupervisorCommand::Token(TokenCommand::New) = cmd {
        let id = paddock_core::SupervisorId::new();
        let token = paddock_switchboard::auth::new_token(
            paddock_switchboard::auth::SUPERVISOR_TOKEN_PREFIX,
        );
        let hash = paddock_switchboard::auth::hash_token(&token);
        eprintln!("# for db/sites/<site>.yaml (no secret in these two lines):");
        eprintln!("  - id: {id}");
        eprintln!("    token_sha256: {hash}");
        eprintln!("# the supervisor's token (its config's token_file; keep it out of git):");
        println!("{token}");
        return Ok(());
    }
    let client = Client::from_config()?;
    match cmd {
        SupervisorCommand::Add { name, tags, site } => {
            let req = CreateSupervisorRequest {
                name,
                site,
                tags,
                acl: Default::default(),
                ready_for_service: None,
            };
            let s: NewSupervisor = client.post_json("/supervisors", &req).await?;
            eprintln!(
                "supervisor {} has id {}; its token (shown once):",
                s.name, s.id
            );
            println!("{}", s.token);
            let (view, _): (SupervisorView, _) =
                client.get_json(&format!("/supervisors/{}", s.id)).await?;
            if !view.ready_for_service {
                eprintln!(
                    "note: {} is out of service until an admin puts it in service \
                     (`paddock supervisor set {} --ready-for-service true`, or the deployments repo)",
                    s.name, s.name
                );
            }
        }
        SupervisorCommand::List { json } => {
            let (list, raw): (SupervisorList, _) = client.get_json("/supervisors").await?;
            if json {
                print_json(&raw);
            } else {
                let rows: Vec<Vec<String>> = list
                    .supervisors
                    .iter()
                    .map(|s| {
                        let tags: Vec<&str> = s.tags.iter().map(Tag::as_str).collect();
                        vec![
                            s.id.to_string(),
                            s.name.to_string(),
                            s.site.to_string(),
                            s.kind.clone().unwrap_or_else(|| "-".into()),
                            s.connected.to_string(),
                            s.retired.to_string(),
                            s.ready_for_service.to_string(),
                            if s.audit_blocked { "blocked" } else { "ok" }.to_string(),
                            tags.join(","),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    super::format_table(
                        &[
                            "ID",
                            "NAME",
                            "SITE",
                            "KIND",
                            "CONNECTED",
                            "RETIRED",
                            "READY",
                            "AUDIT",
                            "TAGS"
                        ],
                        &rows,
                        &[]
                    )
                );
            }
        }
        SupervisorCommand::Status { supervisor, json } => {
            let id = resolve(&client, &supervisor).await?;
            let (s, raw): (SupervisorView, _) =
                client.get_json(&format!("/supervisors/{id}")).await?;
            if json {
                print_json(&raw);
            } else {
                print_status(&s);
            }
        }
        SupervisorCommand::Set {
            supervisor,
            tags,
            retired,
            ready_for_service,
            acl_file,
            comment,
            json,
        } => {
            let tags = tags
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| t.parse::<Tag>().with_context(|| format!("--tags: {t:?}")))
                        .collect::<anyhow::Result<Vec<Tag>>>()
                })
                .transpose()?;
            let acl = acl_file.as_deref().map(read_acl).transpose()?;
            let req = UpdateSupervisorRequest {
                tags,
                retired,
                ready_for_service,
                acl,
                comment,
            };
            if req.tags.is_none()
                && req.retired.is_none()
                && req.ready_for_service.is_none()
                && req.acl.is_none()
                && req.comment.is_none()
            {
                anyhow::bail!(
                    "nothing to change: give --tags, --retired, --ready-for-service, --acl-file or --comment"
                );
            }
            let id = resolve(&client, &supervisor).await?;
            let raw: serde_json::Value = client
                .patch_json(&format!("/supervisors/{id}"), &req)
                .await?;
            if json {
                print_json(&raw);
            } else {
                let s: SupervisorView =
                    serde_json::from_value(raw).context("decoding the answer")?;
                print_status(&s);
            }
        }
        SupervisorCommand::Audit { supervisor, json } => {
            let id = resolve(&client, &supervisor).await?;
            let (s, _): (SupervisorView, _) =
                client.get_json(&format!("/supervisors/{id}")).await?;
            let (_, v): (serde_json::Value, _) = client
                .get_json(&format!("/audit/reports/latest?supervisor={}", s.name))
                .await?;
            if json {
                print_json(&v);
            } else {
                use paddock_core::api::audit::{AuditKind, LatestAudits};
                let latest: LatestAudits =
                    serde_json::from_value(v).context("decoding the answer")?;
                println!("supervisor:     {} ({})", s.name, s.id);
                println!("audit blocked:  {}", s.audit_blocked);
                for (kind, label) in [
                    (AuditKind::Collect, "inventory:     "),
                    (AuditKind::Check, "check run:     "),
                ] {
                    let Some(r) = latest.of(kind) else {
                        println!("{label} none yet");
                        continue;
                    };
                    println!(
                        "{label} {} ({} failures, {} warnings) at {}",
                        r.verdict,
                        r.failures,
                        r.warnings,
                        paddock_core::api::format_ms(r.received_at)
                    );
                }
                // The check run itself is the agent's JSON (docs/audit.md), kept as JSON: it is
                // versioned by its own `format`, so its fields are read leniently here.
                let run = latest.check.as_ref().and_then(|r| r.report.as_ref());
                for c in run
                    .and_then(|r| r["checks"].as_array())
                    .into_iter()
                    .flatten()
                {
                    println!(
                        "  {} {}: {}",
                        c["status"].as_str().unwrap_or("?"),
                        c["name"].as_str().unwrap_or("?"),
                        c["detail"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SupervisorCommand::Token(TokenCommand::New) => unreachable!("handled above"),
        SupervisorCommand::Token(TokenCommand::Reset { supervisor }) => {
            let id = resolve(&client, &supervisor).await?;
            let s: NewSupervisor = client
                .post_json(&format!("/supervisors/{id}/token"), &serde_json::json!({}))
                .await?;
            eprintln!(
                "supervisor {} ({}): new token (shown once; the old one no longer works):",
                s.name, s.id
            );
            println!("{}", s.token);
        }
    }
    Ok(())
}

/// `paddock supervisor status`'s text.
fn print_status(s: &SupervisorView) {
    let tags: Vec<&str> = s.tags.iter().map(Tag::as_str).collect();
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("supervisor:     {} ({})", s.name, s.id);
    println!("site:           {}", s.site);
    println!("kind:           {}", or_dash(&s.kind));
    println!("tags:           {}", tags.join(", "));
    println!("connected:      {}", s.connected);
    println!("retired:        {}", s.retired);
    println!("ready:          {}", s.ready_for_service);
    println!("audit blocked:  {}", s.audit_blocked);
    println!("check passed:   {}", s.audit_check_passed);
    println!("inventory fail: {}", s.inventory_failed);
    if !s.acl.is_empty() {
        println!(
            "acl:            {}",
            serde_json::to_string(&s.acl).unwrap_or_default()
        );
    }
    if s.pdu.is_some() {
        println!(
            "pdu:            {} port {}",
            or_dash(&s.pdu),
            or_dash(&s.pdu_port)
        );
    }
    if s.mac.is_some() {
        println!("mac:            {}", or_dash(&s.mac));
    }
    if let Some(c) = &s.comment {
        println!("comment:        {c}");
    }
    println!(
        "current job:    {}",
        s.current_job
            .map(|j| j.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "last seen:      {}",
        s.last_seen.as_deref().unwrap_or("never")
    );
}

/// An ACL from a YAML or JSON file shaped like the API's `acl`.
fn read_acl(path: &std::path::Path) -> anyhow::Result<Acl> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --acl-file {}", path.display()))?;
    let name = path.display().to_string();
    let value = if text.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => v,
            // Flow-style YAML (`{deny: {users: [bob]}}`) is not JSON.
            Err(_) => yaml_value(&name, &text)?,
        }
    } else {
        yaml_value(&name, &text)?
    };
    if value.is_null() {
        anyhow::bail!("{name}: empty ACL file: write {{}} to remove every rule");
    }
    serde_json::from_value(value).with_context(|| {
        format!("{name}: not an ACL (`deny` and `allow`, each with `users` and `privileges`)")
    })
}

fn yaml_value(name: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    use paddock_core::deployments::{Diagnostics, decode, yaml};
    let node = yaml::parse(name, text).map_err(|d| anyhow::anyhow!("{}", Diagnostics(d)))?;
    Ok(decode::to_json(&node))
}

/// A supervisor's id from its id or name.
async fn resolve(client: &Client, supervisor: &str) -> anyhow::Result<String> {
    if supervisor.parse::<paddock_core::SupervisorId>().is_ok() {
        return Ok(supervisor.to_string());
    }
    let (list, _): (SupervisorList, _) = client.get_json("/supervisors").await?;
    list.supervisors
        .into_iter()
        .find(|s| s.name.as_str() == supervisor)
        .map(|s| s.id.to_string())
        .ok_or_else(|| anyhow::anyhow!("no supervisor named {supervisor}"))
}
