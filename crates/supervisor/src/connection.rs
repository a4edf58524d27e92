//! The connection to the switchboard: a task that keeps one WebSocket (`paddock.v1`) up, and a
//! cloneable [`Link`] the rest of the supervisor sends through.
//!
//! - Connect, say `hello` with every job in the [`JobTable`] (the jobs it still runs, and
//!   finished ones whose final report has not been sent), wait for `welcome`, then send what
//!   queued up while it was away. Job reports are never dropped.
//! - Console output in flight is bounded by a budget ([`LinkSettings::console_budget`],
//!   default [`CONSOLE_BUDGET`] bytes). While connected, [`Link::console`] waits for room, so a
//!   workload that writes faster than the switchboard stores is slowed down (its pipe fills),
//!   never cut. While disconnected, output past the budget is dropped and counted per job; a
//!   `console_dropped` message with the exact byte count goes out before the job's next
//!   console output or report, and the switchboard turns it into a marker line and an event.
//! - Heartbeats every interval the switchboard asked for; three silent intervals mean the
//!   connection is dead.
//! - Reconnect with exponential backoff and jitter ([`crate::backoff`]).
//! - `start_job`, `stop_job` and `config` go to the supervisor's main loop; `status_request`
//!   is answered here from the job table.
//! - The task ends when every [`Link`] is dropped and the queue is sent (or the switchboard is
//!   unreachable at that point).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use paddock_core::protocol::{
    ConsoleStream, RunningJob, SUBPROTOCOL, SupervisorMessage, SwitchboardMessage,
};
use paddock_core::{ExecutionState, ExitStatus, JobId, SupervisorId};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backoff::Backoff;

/// Default console bytes in flight (queued or being sent): the most a connected supervisor
/// holds back, and the most it keeps while the switchboard is unreachable.
pub const CONSOLE_BUDGET: usize = 8 * 1024 * 1024;
/// Why console output a supervisor dropped was dropped, as the marker line says.
pub const DROPPED_UNREACHABLE: &str = "the switchboard was unreachable";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The supervisor's jobs as the switchboard should know them: the last execution state
/// reported for each. A job leaves the table once its `terminated` report is sent.
pub type JobTable = Arc<Mutex<BTreeMap<JobId, ExecutionState>>>;

fn snapshot(jobs: &JobTable) -> Vec<RunningJob> {
    jobs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(id, s)| RunningJob {
            job_id: *id,
            execution_state: *s,
        })
        .collect()
}

/// The `type` of a JSON message, for messages that say what arrived without its contents.
fn message_type(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "an unreadable message".to_string())
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Base URL, `http://HOST:PORT`.
    pub switchboard_url: String,
    pub token: String,
    /// When set, a `welcome` for another supervisor id is refused.
    pub supervisor_id: Option<SupervisorId>,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Console bytes in flight at most (see the module documentation).
    pub console_budget: usize,
}

/// The console output in flight, shared by the [`Link`]s and the connection task.
#[derive(Debug)]
struct ConsoleFlow {
    budget: usize,
    /// Bytes queued or being sent.
    queued: AtomicUsize,
    /// Whether a session is up (after `welcome`): output then waits instead of being dropped.
    connected: AtomicBool,
    /// Woken when bytes leave or the connection goes down.
    changed: Notify,
    /// Bytes dropped per job and not yet reported.
    dropped: Mutex<BTreeMap<JobId, u64>>,
}

impl ConsoleFlow {
    /// Takes room for `n` bytes, if there is some. A chunk larger than the whole budget fits
    /// an empty queue.
    fn reserve(&self, n: usize) -> bool {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q == 0 || q + n <= self.budget).then_some(q + n)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// Sends to the switchboard; cheap to clone.
#[derive(Debug, Clone)]
pub struct Link {
    tx: mpsc::UnboundedSender<SupervisorMessage>,
    jobs: JobTable,
    console: Arc<ConsoleFlow>,
}

impl Link {
    /// Reports a job's state. The job table follows, so a reconnect's `hello` is right.
    pub fn report(
        &self,
        job_id: JobId,
        execution_state: Option<ExecutionState>,
        exit_status: Option<ExitStatus>,
        message: Option<String>,
    ) {
        if let Some(s) = execution_state {
            self.jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job_id, s);
        }
        self.report_dropped(job_id);
        tracing::info!(
            job.id = %job_id,
            state = execution_state.map(|s| s.as_str()),
            exit_status = exit_status.map(|s| s.as_str()),
            "job state"
        );
        let _ = self.tx.send(SupervisorMessage::JobState {
            job_id,
            execution_state,
            exit_status,
            message,
        });
    }

    /// How a user reaches a job's host: sent in order with the job's reports, before its
    /// `ready`.
    pub fn job_access(&self, job_id: JobId, access: paddock_core::protocol::AccessEndpoint) {
        tracing::info!(
            job.id = %job_id,
            host = %access.host,
            port = access.port,
            user = %access.user,
            "job access"
        );
        let _ = self
            .tx
            .send(SupervisorMessage::JobAccess { job_id, access });
    }

    /// Console output of a job. While connected this waits until the budget has room (the
    /// caller, and through it the workload's output, is held back); while disconnected, output
    /// that does not fit is dropped and counted for a `console_dropped` report.
    pub async fn console(&self, job_id: JobId, stream: ConsoleStream, data: String) {
        let n = data.len();
        let flow = &*self.console;
        loop {
            // Registered before the checks, so a change between them and the wait is not missed.
            let changed = flow.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if flow.reserve(n) {
                self.report_dropped(job_id);
                if self
                    .tx
                    .send(SupervisorMessage::Console {
                        job_id,
                        stream,
                        data,
                    })
                    .is_err()
                {
                    flow.release(n);
                }
                return;
            }
            if !flow.connected.load(Ordering::SeqCst) || self.tx.is_closed() {
                *flow
                    .dropped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(job_id)
                    .or_default() += n as u64;
                return;
            }
            changed.await;
        }
    }

    /// Queues a `console_dropped` report for the job's output dropped since the last one.
    fn report_dropped(&self, job_id: JobId) {
        let bytes = self
            .console
            .dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job_id);
        if let Some(bytes) = bytes {
            tracing::warn!(
                job.id = %job_id,
                bytes,
                "console output dropped while the switchboard was unreachable"
            );
            let _ = self.tx.send(SupervisorMessage::ConsoleDropped {
                job_id,
                bytes,
                reason: DROPPED_UNREACHABLE.to_string(),
            });
        }
    }

    /// Starts tracking a job (at `start_job`, before anything is reported).
    pub fn track(&self, job_id: JobId) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(job_id)
            .or_insert(ExecutionState::Scheduled);
    }

    pub fn is_tracked(&self, job_id: &JobId) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(job_id)
    }
}

/// What the connection hands to the supervisor's main loop.
pub type Inbound = mpsc::UnboundedReceiver<SwitchboardMessage>;

/// Starts the connection task. `generation` is the last applied config generation, sent in
/// `hello`.
pub fn spawn(
    settings: LinkSettings,
    jobs: JobTable,
    generation: Arc<Mutex<Option<u64>>>,
) -> (Link, Inbound, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let console = Arc::new(ConsoleFlow {
        budget: settings.console_budget,
        queued: AtomicUsize::new(0),
        connected: AtomicBool::new(false),
        changed: Notify::new(),
        dropped: Mutex::default(),
    });
    let link = Link {
        tx,
        jobs: jobs.clone(),
        console: console.clone(),
    };
    let task = Task {
        settings,
        jobs,
        generation,
        rx,
        inbound: in_tx,
        retry: VecDeque::new(),
        console,
    };
    (link, in_rx, tokio::spawn(task.run()))
}

struct Task {
    settings: LinkSettings,
    jobs: JobTable,
    generation: Arc<Mutex<Option<u64>>>,
    rx: mpsc::UnboundedReceiver<SupervisorMessage>,
    inbound: mpsc::UnboundedSender<SwitchboardMessage>,
    /// A message whose send failed, sent first on the next connection.
    retry: VecDeque<SupervisorMessage>,
    console: Arc<ConsoleFlow>,
}

/// How a session ended.
enum End {
    /// Every `Link` is gone and the queue is empty: the supervisor is shutting down.
    Done,
    Lost(String),
}

impl Task {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.settings.reconnect_min, self.settings.reconnect_max);
        loop {
            let end = self.session(&mut backoff).await;
            self.console.set_connected(false);
            match end {
                End::Done => break,
                End::Lost(why) => {
                    if self.rx.is_closed() && self.rx.is_empty() && self.retry.is_empty() {
                        break;
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(reason = %why, retry_in = ?delay, "switchboard connection lost");
                    if self.rx.is_closed() {
                        // Shutting down: one more try to deliver the last reports, no more.
                        tokio::time::sleep(delay.min(Duration::from_secs(1))).await;
                        let _ = self.session(&mut backoff).await;
                        break;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
        tracing::debug!("connection task ended");
    }

    async fn connect(&self) -> Result<Ws, String> {
        let url = format!(
            "{}/api/v1/supervisor/socket",
            self.settings
                .switchboard_url
                .trim_end_matches('/')
                .replacen("http", "ws", 1)
        );
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad switchboard URL {url}: {e}"))?;
        let h = req.headers_mut();
        h.insert(
            "authorization",
            format!("Bearer {}", self.settings.token)
                .parse()
                .map_err(|_| "the token contains characters not allowed in a header")?,
        );
        h.insert(
            "sec-websocket-protocol",
            SUBPROTOCOL
                .parse()
                .map_err(|_| "bad sub-protocol".to_string())?,
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(req)).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(format!(
                "{url}: HTTP {}{}",
                resp.status(),
                if resp.status() == 401 {
                    " (is the supervisor token right?)"
                } else {
                    ""
                }
            )),
            Ok(Err(e)) => Err(format!("{url}: {e}")),
            Err(_) => Err(format!("{url}: no answer within {CONNECT_TIMEOUT:?}")),
        }
    }

    async fn send(ws: &mut Ws, msg: &SupervisorMessage) -> Result<(), String> {
        let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
        ws.send(Message::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends one queued message; on failure keeps it for the next connection.
    async fn deliver(&mut self, ws: &mut Ws, msg: SupervisorMessage) -> Result<(), String> {
        match Self::send(ws, &msg).await {
            Ok(()) => {
                self.sent(&msg);
                Ok(())
            }
            Err(e) => {
                self.retry.push_front(msg);
                Err(e)
            }
        }
    }

    /// Bookkeeping after a message left: console budget, and jobs whose end is reported.
    fn sent(&self, msg: &SupervisorMessage) {
        match msg {
            SupervisorMessage::Console { data, .. } => self.console.release(data.len()),
            SupervisorMessage::JobState {
                job_id,
                execution_state: Some(ExecutionState::Terminated),
                ..
            } => {
                self.jobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(job_id);
            }
            _ => {}
        }
    }

    async fn session(&mut self, backoff: &mut Backoff) -> End {
        let mut ws = match self.connect().await {
            Ok(ws) => ws,
            Err(e) => return End::Lost(e),
        };
        let generation = *self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let hello = SupervisorMessage::Hello {
            running_jobs: snapshot(&self.jobs),
            config_generation: generation,
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        };
        if let Err(e) = Self::send(&mut ws, &hello).await {
            return End::Lost(e);
        }
        let (id, interval) = match tokio::time::timeout(CONNECT_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str(t.as_str()) {
                Ok(SwitchboardMessage::Welcome {
                    supervisor_id,
                    heartbeat_interval_s,
                }) => (supervisor_id, heartbeat_interval_s.max(1)),
                // Only the type: the text may be a `start_job` with secret parameters.
                _ => {
                    return End::Lost(format!(
                        "expected welcome, got {}",
                        message_type(t.as_str())
                    ));
                }
            },
            Ok(Some(Ok(_))) => return End::Lost("expected welcome, got a non-text frame".into()),
            Ok(Some(Err(e))) => return End::Lost(e.to_string()),
            Ok(None) => return End::Lost("closed before welcome".into()),
            Err(_) => return End::Lost("no welcome".into()),
        };
        if let Some(expected) = self.settings.supervisor_id
            && expected != id
        {
            let _ = ws.close(None).await;
            return End::Lost(format!(
                "the token belongs to supervisor {id}, the configuration says {expected}"
            ));
        }
        tracing::info!(supervisor.id = %id, "connected to the switchboard");
        backoff.reset();
        self.console.set_connected(true);

        while let Some(msg) = self.retry.pop_front() {
            if let Err(e) = self.deliver(&mut ws, msg).await {
                return End::Lost(e);
            }
        }
        let beat = Duration::from_secs(interval);
        let mut tick = tokio::time::interval(beat);
        tick.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                out = self.rx.recv() => {
                    let Some(msg) = out else {
                        let _ = ws.close(None).await;
                        return End::Done;
                    };
                    if let Err(e) = self.deliver(&mut ws, msg).await {
                        return End::Lost(e);
                    }
                }
                frame = ws.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(t))) => {
                            match serde_json::from_str::<SwitchboardMessage>(t.as_str()) {
                                Ok(m) => {
                                    if let Err(e) = self.incoming(&mut ws, m).await {
                                        return End::Lost(e);
                                    }
                                }
                                Err(e) => tracing::warn!(error = %e, "unreadable message from the switchboard"),
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => return End::Lost("closed by the switchboard".into()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return End::Lost(e.to_string()),
                    }
                }
                _ = tick.tick() => {
                    if last_heard.elapsed() > beat * 3 {
                        return End::Lost(format!("switchboard silent for {:?}", beat * 3));
                    }
                    if let Err(e) = Self::send(&mut ws, &SupervisorMessage::Heartbeat).await {
                        return End::Lost(e);
                    }
                }
            }
        }
    }

    async fn incoming(&mut self, ws: &mut Ws, m: SwitchboardMessage) -> Result<(), String> {
        match m {
            SwitchboardMessage::Heartbeat | SwitchboardMessage::Welcome { .. } => Ok(()),
            SwitchboardMessage::StatusRequest => {
                let status = SupervisorMessage::Status {
                    running_jobs: snapshot(&self.jobs),
                };
                Self::send(ws, &status).await
            }
            SwitchboardMessage::Refused { job_id, reason } => {
                tracing::warn!(job.id = job_id.map(|j| j.to_string()), %reason, "the switchboard refused a report");
                Ok(())
            }
            m @ (SwitchboardMessage::StartJob(_)
            | SwitchboardMessage::StopJob { .. }
            | SwitchboardMessage::ConsoleInput { .. }
            | SwitchboardMessage::Config { .. }) => {
                let _ = self.inbound.send(m);
                Ok(())
            }
        }
    }
}
