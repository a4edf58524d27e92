//! A lab of real processes for end-to-end tests: `paddock-switchboard serve` and
//! `paddock-supervisor run` on loopback, each logging at debug level to a file the test can
//! search (for secrets), an image store in the test's temporary directory, and a small HTTP
//! client for the API.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use reqwest::Method;
use serde_json::{Value, json};

pub const SWITCHBOARD: &str = env!("CARGO_BIN_EXE_paddock-switchboard");
pub const SUPERVISOR: &str = env!("CARGO_BIN_EXE_paddock-supervisor");
pub const PADDOCK: &str = env!("CARGO_BIN_EXE_paddock");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A supervisor process and what it needs to be restarted.
pub struct Sup {
    pub name: String,
    pub id: String,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
    pub work: PathBuf,
    /// When set, the process starts in this directory and is given `config` relative to it.
    pub cwd: Option<PathBuf>,
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub store: LocalStore,
    switchboard: Child,
    conf: PathBuf,
    port: u16,
    image_urls: Vec<String>,
    pub sups: Vec<Sup>,
    logs: Vec<PathBuf>,
    options: LabOptions,
}

/// What a test may change about a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// `RUST_LOG` of every process (default `debug`).
    pub rust_log: String,
    /// Extra top-level lines of the switchboard's TOML.
    pub switchboard_toml: String,
    /// Extra top-level lines of every supervisor's TOML.
    pub supervisor_toml: String,
    /// The `[driver]` table of every supervisor's TOML (default: the local driver with a 2 s
    /// stop grace).
    pub driver_toml: String,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            rust_log: "debug".into(),
            switchboard_toml: String::new(),
            supervisor_toml: String::new(),
            driver_toml: "[driver]\nkind = \"local\"\nstop_grace_s = 2\n".into(),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.switchboard.kill();
        let _ = self.switchboard.wait();
        for s in &mut self.sups {
            if let Some(c) = s.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap()
}

fn spawn_switchboard(conf: &Path, port: u16, log: &Path, rust_log: &str) -> Child {
    Command::new(SWITCHBOARD)
        .args(["serve", "--config"])
        .arg(conf)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(log_file(log))
        .spawn()
        .unwrap()
}

impl Lab {
    /// A switchboard with fast timers (1 s heartbeats, 3 s grace) and an image store.
    pub async fn start() -> Lab {
        Lab::start_with(&[]).await
    }

    /// Like [`Lab::start`], with image store servers for the switchboard and the supervisors.
    pub async fn start_with(image_urls: &[String]) -> Lab {
        Lab::start_opts(image_urls, LabOptions::default()).await
    }

    /// Like [`Lab::start_with`], with [`LabOptions`].
    pub async fn start_opts(image_urls: &[String], options: LabOptions) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let conf = dir.path().join("switchboard.toml");
        std::fs::write(
            &conf,
            format!(
                "data_dir = {:?}\nheartbeat_interval_s = 1\nsupervisor_grace_s = 3\nreaper_interval_ms = 100\nstop_grace_s = 10\nimage_store = {:?}\nimage_urls = {:?}\n{}",
                dir.path().join("data").display().to_string(),
                store_dir.display().to_string(),
                image_urls,
                options.switchboard_toml,
            ),
        )
        .unwrap();
        let out = Command::new(SWITCHBOARD)
            .args(["user", "add", "admin", "--privilege", "admin", "--config"])
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.path().join("switchboard.log");
        let switchboard = spawn_switchboard(&conf, port, &log, &options.rust_log);
        let lab = Lab {
            store: LocalStore::new(&store_dir),
            dir,
            base,
            admin,
            http: reqwest::Client::new(),
            switchboard,
            conf,
            port,
            image_urls: image_urls.to_vec(),
            sups: Vec::new(),
            logs: vec![log],
            options,
        };
        lab.wait_healthy().await;
        lab
    }

    async fn wait_healthy(&self) {
        let t0 = Instant::now();
        while !self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "switchboard never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL of the switchboard.
    pub fn kill_switchboard(&mut self) {
        let _ = self.switchboard.kill();
        let _ = self.switchboard.wait();
    }

    /// Starts the switchboard again on the same port and data.
    pub async fn restart_switchboard(&mut self) {
        let log = self
            .path()
            .join(format!("switchboard-{}.log", self.logs.len()));
        self.switchboard = spawn_switchboard(&self.conf, self.port, &log, &self.options.rust_log);
        self.logs.push(log);
        self.wait_healthy().await;
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Imports a script as an image; returns its id.
    pub fn image(&self, label: &str, script: &str, ready_on_puppet: bool) -> String {
        let src = self.path().join(format!("{label}.sh"));
        std::fs::write(&src, script).unwrap();
        self.store
            .import(
                &src,
                &ImportOptions {
                    label: label.into(),
                    revision: None,
                    description: String::new(),
                    entry_point: None,
                    ready_on_puppet,
                },
            )
            .unwrap()
            .to_string()
    }

    pub async fn call(&self, m: Method, path: &str, body: Value) -> (u16, Value) {
        let mut req = self
            .http
            .request(m, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.admin);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Registers supervisor `name` with `tags` and starts its process.
    pub async fn add_supervisor(&mut self, name: &str, tags: &[&str]) -> usize {
        self.add_supervisor_in(name, tags, None).await
    }

    /// As [`Lab::add_supervisor`]; with `cwd`, the process starts there and gets its
    /// `--config` as a path relative to `cwd` (the config's own paths stay relative to it).
    pub async fn add_supervisor_in(
        &mut self,
        name: &str,
        tags: &[&str],
        cwd: Option<&Path>,
    ) -> usize {
        let (s, v) = self
            .call(
                Method::POST,
                "/supervisors",
                json!({"name": name, "site": "lab", "tags": tags}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let sdir = self.path().join("sups").join(name);
        std::fs::create_dir_all(&sdir).unwrap();
        std::fs::write(sdir.join("token"), v["token"].as_str().unwrap()).unwrap();
        let config = sdir.join("supervisor.toml");
        std::fs::write(
            &config,
            format!(
                "switchboard_url = {:?}\nsupervisor_id = {:?}\ntoken_file = \"token\"\nwork_dir = \"work\"\nreconnect_min_ms = 100\nreconnect_max_ms = 1000\n{}[images]\nstores = [{:?}]\nurls = {:?}\n{}",
                self.base,
                v["id"].as_str().unwrap(),
                self.options.supervisor_toml,
                self.store.root().display().to_string(),
                self.image_urls,
                self.options.driver_toml,
            ),
        )
        .unwrap();
        let sup = Sup {
            name: name.into(),
            id: v["id"].as_str().unwrap().into(),
            config,
            child: None,
            log: sdir.join("supervisor.log"),
            work: sdir.join("work"),
            cwd: cwd.map(Path::to_path_buf),
        };
        self.logs.push(sup.log.clone());
        self.sups.push(sup);
        let i = self.sups.len() - 1;
        self.start_supervisor(i).await;
        i
    }

    /// Starts (or restarts) supervisor `i` and waits until the switchboard sees it connected.
    pub async fn start_supervisor(&mut self, i: usize) {
        let rust_log = self.options.rust_log.clone();
        let s = &mut self.sups[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log)
            .unwrap();
        let mut cmd = Command::new(SUPERVISOR);
        match &s.cwd {
            Some(cwd) => cmd
                .current_dir(cwd)
                .args(["run", "--config"])
                .arg(s.config.strip_prefix(cwd).unwrap()),
            None => cmd.args(["run", "--config"]).arg(&s.config),
        };
        s.child = Some(
            cmd.env("RUST_LOG", &rust_log)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let id = s.id.clone();
        let t0 = Instant::now();
        loop {
            let (_, v) = self
                .call(Method::GET, &format!("/supervisors/{id}"), Value::Null)
                .await;
            if v["connected"] == json!(true) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "supervisor never connected: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL of supervisor `i`.
    pub fn kill_supervisor(&mut self, i: usize) {
        let mut c = self.sups[i].child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    pub async fn enqueue(&self, body: Value) -> String {
        let (s, v) = self.call(Method::POST, "/jobs", body).await;
        assert_eq!(s, 201, "{v}");
        v["job_id"].as_str().unwrap().to_string()
    }

    pub async fn job(&self, id: &str) -> Value {
        self.call(Method::GET, &format!("/jobs/{id}"), Value::Null)
            .await
            .1
    }

    /// Waits until the job's execution state is `state`; returns the job.
    pub async fn wait_state(&self, id: &str, state: &str, within: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.job(id).await;
            if j["execution_state"] == json!(state) {
                return j;
            }
            assert!(
                t0.elapsed() < within,
                "job {id} not {state} after {within:?}: {j}\nevents: {}",
                self.call(Method::GET, &format!("/jobs/{id}/events"), Value::Null)
                    .await
                    .1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn terminated(&self, id: &str) -> Value {
        self.wait_state(id, "terminated", Duration::from_secs(30))
            .await
    }

    pub async fn console(&self, id: &str) -> String {
        match self
            .call(Method::GET, &format!("/jobs/{id}/console"), Value::Null)
            .await
            .1
        {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    pub async fn cancel(&self, id: &str) {
        let (s, v) = self
            .call(Method::POST, &format!("/jobs/{id}/cancel"), Value::Null)
            .await;
        assert_eq!(s, 200, "{v}");
    }

    /// Every log line of every process so far.
    pub fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads a pid from a file the workload writes, waiting for it.
pub async fn read_pid(path: &Path) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(p) = s.trim().parse()
        {
            return p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no pid in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process runs (a zombie does not count).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|c| c != 'Z' && c != 'X')
}

/// Waits for a process to be gone.
pub async fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
