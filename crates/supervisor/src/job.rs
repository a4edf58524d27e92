//! One job on this supervisor, from `start_job` to its final report:
//!
//! 1. `initializing`; verify the image (manifest and every blob against their sha256). A
//!    missing or corrupt image ends the job: `terminated` + `supervisor_host_start_error`.
//! 2. Start the host through the driver (a failure: `supervisor_host_start_error`).
//! 3. `ready` when the driver says the workload runs; console output is forwarded (waiting
//!    while the link's console budget is full and the switchboard connected: back-pressure).
//!    Console input from the switchboard (`console_input`) goes to the host
//!    ([`Host::console_input`]) while it runs.
//! 4. The end: the workload exits (its exit code decides `workload_finished_success` or
//!    `_error`, unless it reported its own outcome through the puppet), the puppet reports
//!    `exit` or asks to `terminate`, a VM powers off by itself (`workload_finished_unknown`
//!    unless the puppet reported first; `supervisor_host_start_error` if its puppet never
//!    reported `ready`), the driver gives up on a host that did not become ready
//!    (`supervisor_host_start_error`: a VM's boot timeout), or the switchboard sends `stop_job` (cancel, timeout: the
//!    switchboard has set the exit status). Then `terminating`, the host is stopped and cleaned
//!    up, and `terminated`.

use std::sync::Arc;

use paddock_core::protocol::StartJob;
use paddock_core::puppet::{PuppetRequest, WorkloadOutcome};
use paddock_core::{ExecutionState, ExitStatus, JobId, SupervisorId};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::connection::Link;
use crate::driver::{Host, HostDriver, HostEvent, HostJob};
use crate::image_cache::ImageSource;

/// Why a job is stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `stop_job` from the switchboard (cancel, timeout, reconcile): it owns the exit status.
    Switchboard,
    /// The supervisor is shutting down: the job ends with `internal_supervisor_error`.
    Shutdown,
}

/// What a job task needs, shared by all jobs of a supervisor.
#[derive(Debug)]
pub struct JobContext<D> {
    pub driver: Arc<D>,
    pub images: Arc<ImageSource>,
    pub link: Link,
    pub supervisor_id: Option<SupervisorId>,
}

impl<D> Clone for JobContext<D> {
    fn clone(&self) -> Self {
        JobContext {
            driver: self.driver.clone(),
            images: self.images.clone(),
            link: self.link.clone(),
            supervisor_id: self.supervisor_id,
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<Option<StopReason>>) -> StopReason {
    loop {
        if let Some(r) = *stop.borrow_and_update() {
            return r;
        }
        if stop.changed().await.is_err() {
            // The supervisor's main loop is gone: treat as shutdown.
            return StopReason::Shutdown;
        }
    }
}

/// How the running phase ended.
enum End {
    Exited { code: Option<i32>, detail: String },
    PoweredOff(String),
    StartFailed(String),
    PuppetExit,
    PuppetTerminate,
    Stopped(StopReason),
}

fn stop_status(r: StopReason) -> Option<(ExitStatus, String)> {
    match r {
        StopReason::Switchboard => None,
        StopReason::Shutdown => Some((
            ExitStatus::InternalSupervisorError,
            "the supervisor shut down".to_string(),
        )),
    }
}

/// Runs one job to its end; see the module documentation.
pub async fn run<D: HostDriver>(
    ctx: JobContext<D>,
    start: StartJob,
    stop: watch::Receiver<Option<StopReason>>,
    input: mpsc::Receiver<String>,
) {
    let span = tracing::info_span!("job", job.id = %start.job_id, image = %start.image_id);
    run_inner(ctx, start, stop, input).instrument(span).await
}

/// Ends a job whose host could not be started (its image refused, or the driver failed):
/// `terminated` with `supervisor_host_start_error` and `message`, logged as `what`.
fn start_failed(link: &Link, id: JobId, message: String, what: &str) {
    tracing::warn!(%message, "{what}");
    link.report(
        id,
        Some(ExecutionState::Terminated),
        Some(ExitStatus::SupervisorHostStartError),
        Some(message),
    );
}

async fn run_inner<D: HostDriver>(
    ctx: JobContext<D>,
    start: StartJob,
    mut stop: watch::Receiver<Option<StopReason>>,
    mut input: mpsc::Receiver<String>,
) {
    let id = start.job_id;
    let link = &ctx.link;
    link.report(id, Some(ExecutionState::Initializing), None, None);

    let image = tokio::select! {
        r = ctx.images.get(&start.image_id) => r,
        r = stopped(&mut stop) => {
            let (status, message) = stop_status(r).unzip();
            link.report(id, Some(ExecutionState::Terminated), status, message);
            return;
        }
    };
    // The pin keeps the image's cached blobs until the job ends.
    let (image, _pin) = match image {
        Ok(i) => i,
        Err(e) => return start_failed(link, id, e.to_string(), "image refused"),
    };

    let (events_tx, mut events) = mpsc::channel(64);
    let job = HostJob {
        job_id: id,
        supervisor_id: ctx.supervisor_id,
        image,
        parameters: start.parameters,
        ssh_keys: start.ssh_keys,
    };
    // Starting is not interrupted half-way (a driver must not be dropped mid-start); a stop
    // that arrives meanwhile is seen right after.
    let mut host = match ctx.driver.start(job, events_tx).await {
        Ok(h) => h,
        Err(e) => {
            let message = format!("{} driver could not start the host: {e}", ctx.driver.name());
            return start_failed(link, id, message, "host start failed");
        }
    };

    if let Some(access) = host.access() {
        link.job_access(id, access);
    }
    let mut ready = false;
    let mut outcome: Option<(WorkloadOutcome, Option<String>)> = None;
    let end = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(HostEvent::Ready | HostEvent::Puppet(PuppetRequest::Ready)) => {
                    if !ready {
                        ready = true;
                        link.report(id, Some(ExecutionState::Ready), None, None);
                    }
                }
                Some(HostEvent::Console { stream, data }) => link.console(id, stream, data).await,
                Some(HostEvent::Puppet(PuppetRequest::Exit { outcome: o, message })) => {
                    outcome = Some((o, message));
                    break End::PuppetExit;
                }
                Some(HostEvent::Puppet(PuppetRequest::Terminate)) => break End::PuppetTerminate,
                // Answered by the puppet port itself, never an event; nothing to do if one came.
                Some(HostEvent::Puppet(PuppetRequest::JobData)) => {}
                Some(HostEvent::Exited { code, detail }) => break End::Exited { code, detail },
                Some(HostEvent::PoweredOff { detail }) => break End::PoweredOff(detail),
                Some(HostEvent::StartFailed { detail }) => break End::StartFailed(detail),
                None => break End::Exited { code: None, detail: "the host went away".into() },
            },
            Some(data) = input.recv() => {
                // What was typed is never logged, only how much.
                let bytes = data.len();
                match host.console_input(data.as_bytes()).await {
                    Ok(()) => tracing::info!(bytes, "console input written"),
                    Err(e) => tracing::warn!(bytes, error = %e, "console input not written"),
                }
            }
            r = stopped(&mut stop) => break End::Stopped(r),
        }
    };
    let verdict: Option<(ExitStatus, String)> = match end {
        End::PuppetExit | End::PuppetTerminate | End::Exited { .. } | End::PoweredOff(_)
            if outcome.is_some() =>
        {
            outcome.map(|(o, m)| {
                (
                    o.exit_status(),
                    m.unwrap_or_else(|| "reported by the workload".into()),
                )
            })
        }
        End::StartFailed(detail) => Some((
            ExitStatus::SupervisorHostStartError,
            format!("{} driver: {detail}", ctx.driver.name()),
        )),
        // A VM's host is ready on its puppet's word: one that powers off before is a start
        // that failed.
        End::PoweredOff(detail) if !ready => Some((
            ExitStatus::SupervisorHostStartError,
            format!("{detail} before its puppet reported ready"),
        )),
        End::PoweredOff(detail) => Some((
            ExitStatus::WorkloadFinishedUnknown,
            format!("{detail}, without a result from the workload"),
        )),
        End::PuppetTerminate => Some((
            ExitStatus::WorkloadFinishedUnknown,
            "the workload asked to terminate without reporting a result".into(),
        )),
        End::Exited {
            code: Some(0),
            detail,
        } => Some((ExitStatus::WorkloadFinishedSuccess, detail)),
        End::Exited { detail, .. } => Some((ExitStatus::WorkloadFinishedError, detail)),
        End::PuppetExit => None,
        End::Stopped(r) => stop_status(r),
    };
    let (status, message) = verdict.unzip();
    link.report(id, Some(ExecutionState::Terminating), status, message);

    // Stop the host while still forwarding what it prints on its way down.
    {
        let stopping = host.stop();
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                r = &mut stopping => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "stopping the host");
                    }
                    break;
                }
                ev = events.recv() => match ev {
                    Some(HostEvent::Console { stream, data }) => link.console(id, stream, data).await,
                    Some(_) => {}
                    None => {
                        // Channel closed: just wait for stop.
                        if let Err(e) = (&mut stopping).await {
                            tracing::warn!(error = %e, "stopping the host");
                        }
                        break;
                    }
                },
            }
        }
    }
    while let Ok(ev) = events.try_recv() {
        if let HostEvent::Console { stream, data } = ev {
            link.console(id, stream, data).await;
        }
    }
    link.report(id, Some(ExecutionState::Terminated), None, None);
}
