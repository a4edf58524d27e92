//! `paddock supervisor add|list|status`.

use clap::Subcommand;
use paddock_core::api::supervisors::{
    CreateSupervisorRequest, NewSupervisor, SupervisorList, SupervisorView,
};
use paddock_core::{Name, Tag};

use super::print_json;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum SupervisorCommand {
    /// Register a supervisor; prints its token once, alone on the last line.
    Add {
        name: Name,
        /// Comma-separated tags, e.g. board:nrf52840dk,site:lab1.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<Tag>,
        #[arg(long)]
        site: Name,
    },
    /// List supervisors.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one supervisor, by id or name.
    Status {
        supervisor: String,
        #[arg(long)]
        json: bool,
    },
    /// The newest audit of a supervisor's host: its inventory's verdict and its last baseline
    /// check run, check by check (docs/audit.md).
    Audit {
        supervisor: String,
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
    Reset { supervisor: String },
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
                     (PATCH ready_for_service, or the deployments repo)",
                    s.name
                );
            }
        }
        SupervisorCommand::List { json } => {
            let (list, raw): (SupervisorList, _) = client.get_json("/supervisors").await?;
            if json {
                print_json(&raw);
            } else {
                println!(
                    "{:<36}  {:<20}  {:<10}  {:<9}  {:<7}  TAGS",
                    "ID", "NAME", "SITE", "CONNECTED", "RETIRED"
                );
                for s in list.supervisors {
                    let tags: Vec<&str> = s.tags.iter().map(Tag::as_str).collect();
                    println!(
                        "{:<36}  {:<20}  {:<10}  {:<9}  {:<7}  {}",
                        s.id,
                        s.name,
                        s.site,
                        s.connected,
                        s.retired,
                        tags.join(",")
                    );
                }
            }
        }
        SupervisorCommand::Status { supervisor, json } => {
            let id = resolve(&client, &supervisor).await?;
            let (s, raw): (SupervisorView, _) =
                client.get_json(&format!("/supervisors/{id}")).await?;
            if json {
                print_json(&raw);
            } else {
                let tags: Vec<&str> = s.tags.iter().map(Tag::as_str).collect();
                println!("supervisor:     {} ({})", s.name, s.id);
                println!("site:           {}", s.site);
                println!("tags:           {}", tags.join(", "));
                println!("connected:      {}", s.connected);
                println!("retired:        {}", s.retired);
                println!("ready:          {}", s.ready_for_service);
                println!("audit blocked:  {}", s.audit_blocked);
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
                println!("supervisor:     {} ({})", s.name, s.id);
                println!("audit blocked:  {}", s.audit_blocked);
                for (kind, label) in [("collect", "inventory:     "), ("check", "check run:     ")]
                {
                    let r = &v[kind];
                    if r.is_null() {
                        println!("{label} none yet");
                        continue;
                    }
                    println!(
                        "{label} {} ({} failures, {} warnings) at {}",
                        r["verdict"].as_str().unwrap_or("?"),
                        r["failures"],
                        r["warnings"],
                        paddock_core::api::format_ms(r["received_at"].as_i64().unwrap_or(0))
                    );
                }
                for c in v["check"]["report"]["checks"]
                    .as_array()
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
