//! `paddock job enqueue|list|status|events|cancel|console|logs|watch|ssh`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use paddock_core::ExecutionState;
use paddock_core::api::jobs::{
    EnqueueJobRequest, EnqueueJobResponse, JobEvent, JobEventList, JobList, JobView,
};
use paddock_core::protocol::JobParameter;
use reqwest::Method;

use super::print_json;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Enqueue a job; prints only its id.
    Enqueue(Enqueue),
    /// List jobs, newest first.
    List {
        /// Only jobs in this execution state.
        #[arg(long)]
        state: Option<ExecutionState>,
        /// Only jobs of this user.
        #[arg(long)]
        user: Option<String>,
        /// How many jobs, newest first (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a job's state (`--json`: the API's JSON, with `execution_state` and `exit_status`).
    Status {
        /// The job's id.
        id: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a job's event log; `--follow` streams it until the job terminates.
    Events {
        /// The job's id.
        id: String,
        /// Keep printing events as they happen, until the job terminates.
        #[arg(long)]
        follow: bool,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Attach to a job's console: print it and follow it live until the job terminates
    /// (`logs --follow`). Read-only unless `--input`.
    Console {
        /// The job's id.
        id: String,
        /// Also send each line typed on standard input (with its newline) to the console
        /// (a VM's serial port); needs the privilege console_input. Input ends at end of file
        /// (Ctrl-D); the console is followed until the job terminates.
        #[arg(long, short)]
        input: bool,
    },
    /// Log in to a job's host with SSH (a VM of a `qemu` supervisor with user networking):
    /// runs the system's `ssh` to the endpoint `paddock job status` shows, with CMD when given.
    /// The job's host key is trusted when first seen and checked afterwards (kept in
    /// `known_hosts` beside the client configuration, per job). Exits with ssh's status.
    Ssh(Ssh),
    /// Print a job's console output; `--follow` keeps printing until the job terminates.
    Logs {
        /// The job's id.
        id: String,
        /// Keep printing output as it comes, until the job terminates.
        #[arg(long, short)]
        follow: bool,
    },
    /// Print a job's states and its console as they happen (a state line always starts on a
    /// line of its own); returns when the job terminates and all its output is shown.
    /// Exit code 0 only if it ended workload_finished_success.
    Watch {
        /// The job's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct Enqueue {
    /// Image: its id (the manifest's sha256, 64 hex characters), or with a switchboard that
    /// has an image store (`paddock up` does), a label (its newest revision) or label@revision.
    image: String,
    /// Tag expression selecting supervisors, e.g. 'board:nrf52840dk & !site:pton'.
    #[arg(long)]
    tags: String,
    /// A parameter NAME=VALUE; repeat for several.
    #[arg(long = "param", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// A secret parameter NAME=VALUE: delivered to the job, never shown by the API.
    #[arg(long = "secret-param", value_parser = key_value)]
    secret_params: Vec<(String, String)>,
    /// A file with SSH public keys allowed into the job's host; repeat for several.
    #[arg(long = "ssh-key")]
    ssh_keys: Vec<PathBuf>,
    /// Job timeout in seconds [default: the switchboard's].
    #[arg(long)]
    timeout: Option<u64>,
    /// Queue timeout in seconds [default: the switchboard's].
    #[arg(long)]
    queue_timeout: Option<u64>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0)]
    priority: i32,
}

#[derive(Debug, Args)]
pub struct Ssh {
    /// The job's id.
    id: String,
    /// The private key to log in with (one whose public key was given to `job enqueue
    /// --ssh-key`); default: ssh's own choice (agent, ~/.ssh/id_*).
    #[arg(short = 'i', long = "identity")]
    identity: Option<PathBuf>,
    /// The command to run in the guest, after `--`; default: an interactive shell.
    #[arg(last = true)]
    command: Vec<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

pub async fn run(cmd: JobCommand) -> anyhow::Result<()> {
    let client = Client::from_config()?;
    match cmd {
        JobCommand::Enqueue(e) => {
            let mut parameters = BTreeMap::new();
            for (k, v) in e.params {
                parameters.insert(
                    k,
                    JobParameter {
                        value: v,
                        secret: false,
                    },
                );
            }
            for (k, v) in e.secret_params {
                if parameters
                    .insert(
                        k.clone(),
                        JobParameter {
                            value: v,
                            secret: true,
                        },
                    )
                    .is_some()
                {
                    bail!("parameter {k} given twice");
                }
            }
            let mut ssh_keys = Vec::new();
            for f in &e.ssh_keys {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                ssh_keys.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(String::from),
                );
            }
            let req = EnqueueJobRequest {
                image: e.image,
                tags: e.tags,
                parameters,
                ssh_keys,
                timeout_s: e.timeout,
                queue_timeout_s: e.queue_timeout,
                priority: e.priority,
            };
            let r: EnqueueJobResponse = client.post_json("/jobs", &req).await?;
            println!("{}", r.job_id);
        }
        JobCommand::List {
            state,
            user,
            limit,
            json,
        } => {
            let mut path = format!("/jobs?limit={limit}");
            if let Some(s) = state {
                path += &format!("&state={s}");
            }
            if let Some(u) = user {
                path += &format!("&user={u}");
            }
            let (list, raw): (JobList, _) = client.get_json(&path).await?;
            if json {
                print_json(&raw);
            } else {
                println!(
                    "{:<36}  {:<10}  {:<12}  {:<28}  TAGS",
                    "ID", "USER", "STATE", "EXIT STATUS"
                );
                for j in list.jobs {
                    let status = j.exit_status.map(|s| s.to_string()).unwrap_or_default();
                    println!(
                        "{:<36}  {:<10}  {:<12}  {:<28}  {}",
                        j.id, j.user, j.execution_state, status, j.tags
                    );
                }
            }
        }
        JobCommand::Status { id, json } => {
            let (job, raw): (JobView, _) = client.get_json(&format!("/jobs/{id}")).await?;
            if json {
                print_json(&raw);
            } else {
                print_status(&job);
            }
        }
        JobCommand::Events { id, follow, json } => {
            if follow {
                follow_events(&client, &id, json).await?;
            } else {
                let (list, raw): (JobEventList, _) =
                    client.get_json(&format!("/jobs/{id}/events")).await?;
                if json {
                    print_json(&raw);
                } else {
                    list.events.iter().for_each(print_event);
                }
            }
        }
        JobCommand::Cancel { id } => {
            let job: JobView = client
                .send(client.request(Method::POST, &format!("/jobs/{id}/cancel")))
                .await?
                .json()
                .await?;
            eprintln!("cancel requested: {} is {}", job.id, job.execution_state);
        }
        JobCommand::Logs { id, follow: false } => {
            let (text, _) = console_after(&client, &id, 0).await?;
            print!("{text}");
        }
        JobCommand::Console { id, input: true } => console_with_input(&client, &id).await?,
        JobCommand::Console { id, input: false } | JobCommand::Logs { id, follow: true } => {
            follow_console(&client, &id).await?
        }
        JobCommand::Ssh(ssh) => ssh_to(&client, ssh).await?,
        JobCommand::Watch { id } => watch(&client, &id).await?,
    }
    Ok(())
}

/// The console after `cursor`, and the cursor to continue from.
async fn console_after(client: &Client, id: &str, cursor: i64) -> anyhow::Result<(String, i64)> {
    let resp = client
        .send(client.request(Method::GET, &format!("/jobs/{id}/console?after={cursor}")))
        .await?;
    let next = resp
        .headers()
        .get("x-paddock-console-cursor")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(cursor);
    Ok((resp.text().await?, next))
}

/// Where `job ssh` keeps the host keys of jobs: `known_hosts` beside the client
/// configuration (`~/.config/paddock/known_hosts`), each key under the alias
/// `paddock-job-<id>`, so a port a later job reuses never meets an earlier job's key.
fn known_hosts_file() -> PathBuf {
    let config = crate::config::path();
    config
        .parent()
        .map(|d| d.join("known_hosts"))
        .unwrap_or_else(|| PathBuf::from("known_hosts"))
}

/// The `ssh` arguments that log in to `access` for `job` (before the optional command).
pub fn ssh_args(
    job: &paddock_core::JobId,
    access: &paddock_core::protocol::AccessEndpoint,
    identity: Option<&std::path::Path>,
    known_hosts: &std::path::Path,
) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec![
        "-p".into(),
        access.port.to_string().into(),
        "-l".into(),
        access.user.clone().into(),
        "-o".into(),
        format!("HostKeyAlias=paddock-job-{job}").into(),
        "-o".into(),
        "StrictHostKeyChecking=accept-new".into(),
    ];
    let mut file = std::ffi::OsString::from("UserKnownHostsFile=");
    file.push(known_hosts.as_os_str());
    a.extend(["-o".into(), file]);
    if let Some(k) = identity {
        a.extend(["-i".into(), k.as_os_str().to_owned()]);
        a.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
    }
    a.extend(["--".into(), access.host.clone().into()]);
    a
}

/// `paddock job ssh`: the job's endpoint from the API, then `ssh` in this process's place.
async fn ssh_to(client: &Client, ssh: Ssh) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let (job, _): (JobView, _) = client.get_json(&format!("/jobs/{}", ssh.id)).await?;
    let Some(access) = &job.access else {
        let why = match job.execution_state {
            ExecutionState::Terminated => format!(
                "it has terminated ({})",
                job.exit_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no exit status".into())
            ),
            ExecutionState::Queued | ExecutionState::Scheduled | ExecutionState::Initializing => {
                format!(
                    "it is {}: its host is not started yet (try again once it is ready)",
                    job.execution_state
                )
            }
            s => format!(
                "it is {s}, but its host offers no SSH access (only a VM of a qemu supervisor \
                 with network = \"user\" does)"
            ),
        };
        bail!("job {}: no SSH endpoint: {why}", job.id);
    };
    // The switchboard checked it; checked again, as it becomes ssh's arguments.
    access
        .check()
        .map_err(|e| anyhow::anyhow!("job {}: {e}", job.id))?;
    let known_hosts = known_hosts_file();
    if let Some(d) = known_hosts.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(ssh_args(
        &job.id,
        access,
        ssh.identity.as_deref(),
        &known_hosts,
    ));
    cmd.args(&ssh.command);
    let e = cmd.exec();
    Err(anyhow::Error::new(e).context("running ssh (is openssh-client installed?)"))
}

/// Prints the console as it grows until the job has terminated and all output is shown.
async fn follow_console(client: &Client, id: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut cursor = 0;
    loop {
        // Read the state first: output that arrives before termination is then read below.
        let (job, _): (JobView, _) = client.get_json(&format!("/jobs/{id}")).await?;
        let (text, next) = console_after(client, id, cursor).await?;
        cursor = next;
        print!("{text}");
        std::io::stdout().flush()?;
        if job.execution_state == ExecutionState::Terminated {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Reads `r` up to and with its next `\n`, at most `max` bytes, never splitting a UTF-8
/// character (`pending` carries an incomplete character's bytes to the next call); `None` at
/// end of input. Bytes that are not UTF-8 become U+FFFD.
pub fn next_input_chunk(
    r: &mut impl std::io::BufRead,
    max: usize,
    pending: &mut Vec<u8>,
) -> std::io::Result<Option<String>> {
    let mut buf = std::mem::take(pending);
    let mut eof = false;
    while buf.len() < max && buf.last() != Some(&b'\n') {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            eof = true;
            break;
        }
        let room = max - buf.len();
        let n = match avail.iter().take(room).position(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => avail.len().min(room),
        };
        buf.extend_from_slice(&avail[..n]);
        r.consume(n);
    }
    if buf.is_empty() {
        return Ok(None);
    }
    if !eof && buf.last() != Some(&b'\n') {
        // Cut at the last whole character; the rest starts the next chunk.
        if let Err(e) = std::str::from_utf8(&buf)
            && e.error_len().is_none()
            && e.valid_up_to() > 0
        {
            *pending = buf.split_off(e.valid_up_to());
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// `paddock job console ID --input`: follows the console as `follow_console` does, and sends
/// each line of standard input to `POST /jobs/{id}/console/input`. A refusal that lasts (no
/// privilege, no such job) ends the command with the server's message; one for this moment
/// (the job not running yet, its supervisor away) is printed and the next line is tried.
async fn console_with_input(client: &Client, id: &str) -> anyhow::Result<()> {
    use paddock_core::Privilege;
    use paddock_core::api::auth::WhoAmI;
    use paddock_core::api::jobs::{ConsoleInputRequest, ConsoleInputResponse};
    use paddock_core::protocol::CONSOLE_INPUT_MAX;

    let (me, _): (WhoAmI, _) = client.get_json("/whoami").await?;
    if !Privilege::ConsoleInput.granted_by(&me.privileges) {
        bail!(
            "typing into a job's console needs the privilege console_input, which {} does not \
             hold (without --input the console is followed read-only)",
            me.user
        );
    }
    // Standard input is read on a thread of its own (a read blocks until a line comes).
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut r = stdin.lock();
        let mut pending = Vec::new();
        while let Ok(Some(chunk)) = next_input_chunk(&mut r, CONSOLE_INPUT_MAX, &mut pending) {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    let path = format!("/jobs/{id}/console/input");
    let sender = async {
        while let Some(data) = lines.recv().await {
            let r: anyhow::Result<ConsoleInputResponse> =
                client.post_json(&path, &ConsoleInputRequest { data }).await;
            if let Err(e) = r {
                let status = e
                    .downcast_ref::<paddock_client::ClientError>()
                    .and_then(|c| c.status());
                match status {
                    Some(s) if s == reqwest::StatusCode::CONFLICT => {
                        eprintln!("paddock: console input not sent: {e:#}");
                    }
                    _ => return Err(e.context("console input refused")),
                }
            }
        }
        // End of input: the console is still followed.
        std::future::pending::<anyhow::Result<()>>().await
    };
    tokio::select! {
        r = follow_console(client, id) => r,
        r = sender => r,
    }
}

fn print_status(j: &JobView) {
    println!("job:            {}", j.id);
    println!("user:           {}", j.user);
    println!("image:          {}", j.image_id);
    println!("tags:           {}", j.tags);
    println!("state:          {}", j.execution_state);
    println!(
        "exit status:    {}",
        j.exit_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into())
    );
    if let Some(m) = &j.status_message {
        println!("message:        {m}");
    }
    if let Some(s) = j.supervisor_id {
        println!("supervisor:     {s}");
    }
    if let Some(a) = &j.access {
        println!("ssh:            ssh -p {} {}@{}", a.port, a.user, a.host);
    }
    println!("created:        {}", j.created_at);
    if let Some(t) = &j.terminated_at {
        println!("terminated:     {t}");
    }
}

fn print_event(e: &JobEvent) {
    let status = e.to_status.map(|s| format!(" ({s})")).unwrap_or_default();
    let msg = e
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    println!(
        "{}  {:<11}  {}{status}{msg}",
        e.at,
        format!("{:?}", e.actor).to_lowercase(),
        e.to_state
    );
}

/// The Server-Sent Events stream of a job's event log; it ends after the terminating event.
async fn event_stream(
    client: &Client,
    id: &str,
) -> anyhow::Result<impl futures_util::Stream<Item = reqwest::Result<impl AsRef<[u8]>>>> {
    let req = client
        .request(Method::GET, &format!("/jobs/{id}/events"))
        .header("accept", "text/event-stream");
    Ok(client.send(req).await?.bytes_stream())
}

/// Splits a Server-Sent Events byte stream into the `data` of each event. Bytes are kept until
/// an event is whole, so a UTF-8 character split between chunks is never mangled.
#[derive(Default)]
struct SseEvents {
    buf: Vec<u8>,
}

impl SseEvents {
    /// Adds `chunk`; returns the data of every event it completed.
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let data: String = String::from_utf8_lossy(&block)
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                out.push(data);
            }
        }
        out
    }
}

/// Reads the Server-Sent Events stream until it ends (the job terminated).
async fn follow_events(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let mut body = std::pin::pin!(event_stream(client, id).await?);
    let mut events = SseEvents::default();
    while let Some(chunk) = body.next().await {
        for data in events.push(chunk.context("reading the event stream")?.as_ref()) {
            if json {
                println!("{data}");
            } else if let Ok(e) = serde_json::from_str::<JobEvent>(&data) {
                print_event(&e);
            }
        }
    }
    Ok(())
}

/// How often `watch` asks for new console output while the job runs.
const WATCH_CONSOLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// `paddock job watch`: follows the event stream and, between its events, polls the console
/// (`?after=` the `X-Paddock-Console-Cursor` of the previous answer, so every byte is printed
/// once). State lines and console output go to standard output in the order they arrive; a
/// state line that would continue an unfinished console line starts a new line. When the
/// stream ends (the job terminated) the rest of the console is read once more, then the exit
/// status decides the result.
async fn watch(client: &Client, id: &str) -> anyhow::Result<()> {
    let mut body = std::pin::pin!(event_stream(client, id).await?);
    let mut events = SseEvents::default();
    let mut console = ConsoleTail::default();
    let mut tick = tokio::time::interval(WATCH_CONSOLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            chunk = body.next() => {
                let Some(chunk) = chunk else { break };
                for data in events.push(chunk.context("reading the event stream")?.as_ref()) {
                    if let Ok(e) = serde_json::from_str::<JobEvent>(&data) {
                        console.end_line()?;
                        print_event(&e);
                    }
                }
            }
            _ = tick.tick() => console.poll(client, id).await?,
        }
    }
    // Output the supervisor sent before `terminated` is stored before it: read what is left.
    console.poll(client, id).await?;
    console.end_line()?;
    let (job, _): (JobView, _) = client.get_json(&format!("/jobs/{id}")).await?;
    let status = job
        .exit_status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    if job.exit_status != Some(paddock_core::ExitStatus::WorkloadFinishedSuccess) {
        bail!("job {} ended {status}", job.id);
    }
    eprintln!("job {} ended {status}", job.id);
    Ok(())
}

/// The console printed so far: where to continue, and whether its last line is unfinished.
#[derive(Default)]
struct ConsoleTail {
    cursor: i64,
    mid_line: bool,
}

impl ConsoleTail {
    /// Prints the console output after the cursor, and moves the cursor past it.
    async fn poll(&mut self, client: &Client, id: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let (text, next) = console_after(client, id, self.cursor).await?;
        self.cursor = next;
        if !text.is_empty() {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            self.mid_line = !text.ends_with('\n');
        }
        Ok(())
    }

    /// Ends an unfinished console line, so what follows starts on a line of its own.
    fn end_line(&mut self) -> anyhow::Result<()> {
        use std::io::Write;
        if self.mid_line {
            let mut out = std::io::stdout().lock();
            out.write_all(b"\n")?;
            out.flush()?;
            self.mid_line = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn ssh_arguments() {
        let job: paddock_core::JobId = "0190b6d8-7c2e-7000-8000-000000000001".parse().unwrap();
        let access = paddock_core::protocol::AccessEndpoint {
            host: "rack1.lab".into(),
            port: 42007,
            user: "paddock".into(),
        };
        let a = ssh_args(
            &job,
            &access,
            Some(std::path::Path::new("/k/id")),
            std::path::Path::new("/c/known_hosts"),
        );
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        assert_eq!(
            a.join(" "),
            "-p 42007 -l paddock -o HostKeyAlias=paddock-job-0190b6d8-7c2e-7000-8000-000000000001 \
             -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/c/known_hosts \
             -i /k/id -o IdentitiesOnly=yes -- rack1.lab"
        );
    }

    #[test]
    fn sse_events_survive_any_chunking() {
        let stream = "id: 1\ndata: {\"a\":\"é\"}\n\n: keep-alive\n\nid: 2\ndata: two\n\n";
        let bytes = stream.as_bytes();
        for split in 0..bytes.len() {
            let mut p = SseEvents::default();
            let mut got = p.push(&bytes[..split]);
            got.extend(p.push(&bytes[split..]));
            assert_eq!(got, ["{\"a\":\"é\"}", "two"], "split at {split}");
        }
    }

    /// Console input is read a line at a time (with its newline), at most `max` bytes, never
    /// splitting a character; the last line needs no newline.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn console_input_chunks() {
        let read = |input: &[u8], max| {
            let mut r = std::io::BufReader::with_capacity(3, input);
            let mut pending = Vec::new();
            let mut out = Vec::new();
            while let Some(c) = next_input_chunk(&mut r, max, &mut pending).unwrap() {
                assert!(c.len() <= max, "{c:?}");
                out.push(c);
            }
            out
        };
        assert_eq!(read(b"ls -l\nwho\n", 64), ["ls -l\n", "who\n"]);
        assert_eq!(read(b"a\n\nb", 64), ["a\n", "\n", "b"]);
        assert_eq!(read(b"abcdefgh\n", 4), ["abcd", "efgh", "\n"]);
        // `é` is two bytes: a chunk ends before it rather than in it.
        assert_eq!(read("abcé\n".as_bytes(), 4), ["abc", "é\n"]);
        assert_eq!(read("ééé".as_bytes(), 3), ["é", "é", "é"]);
        assert!(read(b"", 4).is_empty());
    }
}
