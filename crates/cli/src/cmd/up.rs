//! `paddock up`: a whole lab in one process. The switchboard on SQLite in the data directory,
//! the local image store (`DATA_DIR/store`, with the demo image `hello` imported when the
//! store has none), and N supervisors with the `local` driver connected over real WebSockets
//! on loopback. Prints `PADDOCK_URL=…` and `PADDOCK_TOKEN=…` for the shell.
//!
//! With `--qemu`, one more supervisor, `qemu-1` (tagged `board:vm` and `site:local`), runs each
//! job in a QEMU VM, and the demo VM image `hello-vm` is imported (built once from Debian
//! packages: see [`super::demo_vm`]).
//!
//! Everything it creates lives in the data directory, so a second `paddock up` on it resumes:
//! ```text
//! DATA_DIR/switchboard.db           users, tokens, supervisors, jobs
//! DATA_DIR/admin.token              the admin token printed as PADDOCK_TOKEN (mode 0600)
//! DATA_DIR/store/                   the image store
//! DATA_DIR/supervisors/local-N/     each supervisor's token and work directory
//! DATA_DIR/supervisors/qemu-1/      the QEMU supervisor's (with --qemu)
//! ```
//! Ctrl-C (or SIGTERM) stops the supervisors first: a running job is stopped, its processes
//! killed and it ends `internal_supervisor_error` ("the supervisor shut down"); queued jobs
//! stay queued and run after the next `paddock up`.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use paddock_core::{Name, Privilege, SupervisorId, Tag};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use paddock_supervisor::config::{Accel, LocalDriverConfig, QemuDriverConfig};
use paddock_supervisor::connection::LinkSettings;
use paddock_supervisor::driver::local::LocalDriver;
use paddock_supervisor::driver::qemu::QemuDriver;
use paddock_switchboard::auth::{SUPERVISOR_TOKEN_PREFIX, hash_token, new_token};
use paddock_switchboard::db::Db;
use paddock_switchboard::db::supervisors::NewSupervisor;
use paddock_switchboard::{AppState, Config};

const DEMO_SCRIPT: &str = include_str!("../demo/hello.sh");
const ADMIN: &str = "admin";

#[derive(Debug, Args)]
pub struct Up {
    /// Directory for everything the lab keeps (database, image store, job directories).
    #[arg(long, default_value = ".paddock")]
    data_dir: PathBuf,
    /// Address of the switchboard's API and WebSocket.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How many local supervisors to run (named local-1, local-2, …, tagged board:demo and
    /// site:local).
    #[arg(long, default_value_t = 2)]
    supervisors: u32,
    /// A switchboard configuration file (see switchboard.example.toml); the data directory,
    /// listen address and image store given here win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A deployments repository (local git repo, bare or not; docs/deployments.md): its
    /// branch is applied to the switchboard at start and whenever a new commit lands (checked
    /// every --deploy-poll-s seconds); invalid commits are rejected and shown by
    /// `paddock deploy status`.
    #[arg(long)]
    deployments: Option<String>,
    /// The branch of --deployments.
    #[arg(long, default_value = "main")]
    deploy_branch: String,
    /// Seconds between two reads of the --deployments branch.
    #[arg(long, default_value_t = 2)]
    deploy_poll_s: u64,
    /// Also run a QEMU supervisor, qemu-1 (tagged board:vm and site:local), and import the
    /// demo VM image hello-vm (built once from Debian's cloud kernel and busybox-static with
    /// apt-get download). Needs qemu-system-x86_64 and qemu-img.
    #[arg(long)]
    qemu: bool,
    /// The QEMU supervisor's accelerator: auto (KVM when a bounded probe boots, else TCG),
    /// kvm or tcg.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    qemu_accel: String,
}

/// Writes a secret file with mode 0600.
fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{value}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_secret(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The admin user's token: the saved one while it still works, else a new one.
async fn admin_token(db: &Db, data_dir: &Path) -> anyhow::Result<String> {
    let admin: Name = ADMIN.parse()?;
    if db.get_user(&admin).await.is_err() {
        db.create_user(&admin, None, &[Privilege::Admin])
            .await
            .context("creating the admin user")?;
    }
    let file = data_dir.join("admin.token");
    if let Some(t) = read_secret(&file)
        && db
            .token_owner(&hash_token(&t), paddock_core::api::now_ms())
            .await?
            .is_some_and(|o| o.user == admin)
    {
        return Ok(t);
    }
    let t = paddock_switchboard::tokens::mint(db, &admin, None).await?;
    write_secret(&file, &t.token)?;
    Ok(t.token)
}

/// Imports the demo image when the store has no image labelled `hello`.
fn demo_image(store: &LocalStore, data_dir: &Path) -> anyhow::Result<()> {
    if store.list()?.iter().any(|i| i.label == "hello") {
        return Ok(());
    }
    let tmp = data_dir.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let script = tmp.join("hello.sh");
    std::fs::write(&script, DEMO_SCRIPT)?;
    let id = store.import(
        &script,
        &ImportOptions {
            label: "hello".into(),
            revision: None,
            description: "Paddock demo: prints the job's parameters and exits 0".into(),
            entry_point: None,
            ready_on_puppet: false,
        },
    )?;
    let _ = std::fs::remove_file(&script);
    eprintln!("paddock up: imported the demo image hello ({id})");
    Ok(())
}

/// Registers (or finds) supervisor `name` and returns its id and a working token.
async fn local_supervisor(
    db: &Db,
    name: &str,
    tags: &[&str],
    dir: &Path,
) -> anyhow::Result<(SupervisorId, String)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let token_file = dir.join("token");
    let existing = db
        .list_supervisors()
        .await?
        .into_iter()
        .find(|s| s.name.as_str() == name);
    let id = match existing {
        Some(s) => {
            if s.retired {
                bail!("supervisor {name} is retired; un-retire it or use another data directory");
            }
            if let Some(t) = read_secret(&token_file)
                && db.supervisor_by_token(&hash_token(&t)).await?.map(|x| x.id) == Some(s.id)
            {
                return Ok((s.id, t));
            }
            s.id
        }
        None => {
            let tags = tags
                .iter()
                .map(|t| t.parse())
                .collect::<Result<Vec<Tag>, _>>()?;
            db.create_supervisor(NewSupervisor {
                name: &name.parse()?,
                site: &"local".parse()?,
                tags: &tags,
                acl: &Default::default(),
                ready_for_service: true,
                token_hash: &hash_token(&new_token(SUPERVISOR_TOKEN_PREFIX)),
            })
            .await
            .with_context(|| format!("registering supervisor {name}"))?
        }
    };
    let token = new_token(SUPERVISOR_TOKEN_PREFIX);
    db.set_supervisor_token(id, &hash_token(&token)).await?;
    write_secret(&token_file, &token)?;
    Ok((id, token))
}

pub async fn run(up: Up) -> anyhow::Result<()> {
    if up.supervisors > 1000 {
        bail!("--supervisors: at most 1000");
    }
    // The data directory holds the database (with queued jobs' secrets) and the tokens: 0700.
    // The error names the directory and the cause.
    paddock_switchboard::db::file_modes::secure_data_dir(&up.data_dir)
        .context("preparing the data directory")?;
    let data_dir = up
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", up.data_dir.display()))?;
    let mut config = match &up.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    config.data_dir = data_dir.clone();
    config.listen = up.listen;
    let store_dir = data_dir.join("store");
    config.image_store = Some(store_dir.clone());
    config.validate().map_err(|bad| {
        let lines: Vec<String> = bad.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    let url = config.database_url();
    let db = Db::connect(&url)
        .await
        .with_context(|| format!("opening the database in {}", data_dir.display()))?;

    let store = LocalStore::new(&store_dir);
    demo_image(&store, &data_dir).context("importing the demo image")?;
    let qemu_config = QemuDriverConfig {
        accel: match up.qemu_accel.as_str() {
            "kvm" => Accel::Kvm,
            "tcg" => Accel::Tcg,
            _ => Accel::Auto,
        },
        memory_mib: 256,
        boot_timeout_s: 120,
        stop_grace_s: 5,
        ..QemuDriverConfig::default()
    };
    if up.qemu {
        super::demo_vm::check_qemu(&qemu_config.qemu, &qemu_config.qemu_img)?;
        super::demo_vm::ensure(&store, &data_dir.join("tmp"))
            .context("importing the demo VM image")?;
    }
    let token = admin_token(&db, &data_dir).await?;
    let mut sups = Vec::new();
    for n in 1..=up.supervisors {
        let name = format!("local-{n}");
        let dir = data_dir.join("supervisors").join(&name);
        let (id, t) = local_supervisor(&db, &name, &["board:demo", "site:local"], &dir).await?;
        sups.push((name, dir, id, t));
    }
    let qemu_sup = if up.qemu {
        let dir = data_dir.join("supervisors").join("qemu-1");
        let (id, t) = local_supervisor(&db, "qemu-1", &["board:vm", "site:local"], &dir).await?;
        Some((dir, id, t))
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let app = AppState::new(db, config);
    let switchboard = tokio::spawn(paddock_switchboard::run(app.clone(), listener));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut supervisors = tokio::task::JoinSet::new();
    let settings = |dir: &Path, id: SupervisorId, token: String| paddock_supervisor::Settings {
        link: LinkSettings {
            switchboard_url: base.clone(),
            token,
            supervisor_id: Some(id),
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
            console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
        },
        stores: vec![store_dir.clone()],
        urls: Vec::new(),
        cache_dir: dir.join("work").join("cache"),
        cache_max_bytes: 1 << 30,
    };
    for (name, dir, id, t) in sups {
        let driver = LocalDriver::new(LocalDriverConfig::default(), &dir.join("work"))
            .with_context(|| format!("preparing supervisor {name}"))?;
        let span = tracing::info_span!("supervisor", supervisor.name = %name);
        supervisors.spawn(tracing::Instrument::instrument(
            paddock_supervisor::run(settings(&dir, id, t), driver, stop_rx.clone(), None),
            span,
        ));
    }
    if let Some((dir, id, t)) = qemu_sup {
        let driver = QemuDriver::new(qemu_config, &dir.join("work"))
            .await
            .context("preparing supervisor qemu-1")?;
        let span = tracing::info_span!("supervisor", supervisor.name = "qemu-1");
        supervisors.spawn(tracing::Instrument::instrument(
            paddock_supervisor::run(settings(&dir, id, t), driver, stop_rx.clone(), None),
            span,
        ));
    }

    let deploy = up.deployments.as_ref().map(|repo| {
        let state_dir = data_dir.join("deploy");
        let source = paddock_deploy::git_source::Source::new(repo, &state_dir.join("mirror.git"));
        let settings = paddock_deploy::daemon::Settings {
            state_dir,
            ..paddock_deploy::daemon::Settings::new(
                paddock_deploy::apply::Switchboard {
                    url: base.clone(),
                    token: token.clone(),
                    http: reqwest::Client::new(),
                },
                source,
                &up.deploy_branch,
                Duration::from_secs(up.deploy_poll_s.max(1)),
            )
        };
        let mut stop = stop_rx.clone();
        eprintln!(
            "paddock up: applying {} branch {} every {} s",
            settings.source,
            up.deploy_branch,
            up.deploy_poll_s.max(1)
        );
        tokio::spawn(paddock_deploy::daemon::run(
            settings,
            std::sync::Arc::new(tokio::sync::Notify::new()),
            async move {
                let _ = stop.wait_for(|v| *v).await;
            },
        ))
    });

    // Caught from here on: a SIGTERM right after the lines below stops gracefully.
    let signal = paddock_core::service::shutdown_signal();
    println!("PADDOCK_URL={base}");
    println!("PADDOCK_TOKEN={token}");
    std::io::stdout().flush()?;
    eprintln!(
        "paddock up: switchboard on {base}, {} local supervisor(s){}, data in {}; Ctrl-C stops",
        up.supervisors,
        if up.qemu { " and qemu-1" } else { "" },
        data_dir.display()
    );
    eprintln!("  try: paddock job enqueue hello --tags board:demo --param greeting=hi");
    if up.qemu {
        eprintln!(
            "  a VM: paddock job enqueue {} --tags board:vm --param greeting=hi",
            super::demo_vm::LABEL
        );
    }

    tokio::select! {
        _ = signal => eprintln!("paddock up: stopping (running jobs are stopped)"),
        r = switchboard_ended(&app) => r?,
    }
    stop_tx.send_replace(true);
    if let Some(d) = deploy {
        let _ = d.await;
    }
    while supervisors.join_next().await.is_some() {}
    // Let the last reports land before the switchboard goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.shutdown();
    match switchboard.await {
        Ok(r) => r?,
        Err(e) => bail!("switchboard task: {e}"),
    }
    eprintln!("paddock up: stopped");
    Ok(())
}

/// Resolves only if the switchboard shuts down by itself.
async fn switchboard_ended(app: &AppState) -> anyhow::Result<()> {
    let mut s = app.shutdown_signal();
    let _ = s.wait_for(|v| *v).await;
    Ok(())
}
