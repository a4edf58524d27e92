//! The job lifecycle of the Treadmill book: a job's state is an [`ExecutionState`] plus an
//! optional [`ExitStatus`], and [`JobState::apply`] is the one function that decides every
//! change. It implements the book's three tables (execution-state transitions, exit-status
//! transitions, and which exit status may be set in which execution state), the finality rules,
//! who may take which transition, and one documented exception: a user may cancel a `Queued`
//! job, which goes straight to `Terminated` with `JobCanceled` (see docs/job-lifecycle.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its execution (book: "Execution State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionState {
    /// Created, not yet assigned to a supervisor. Every job starts here.
    Queued,
    /// Assigned to a supervisor.
    Scheduled,
    /// The supervisor is starting (or restarting) the job's host.
    Initializing,
    /// The host is up and runs the workload.
    Ready,
    /// The job was asked to terminate; the host is shutting down.
    Terminating,
    /// Final: no further state change, the exit status is frozen.
    Terminated,
}

/// The user-visible outcome of a job (book: "Exit Status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// No registered supervisor could ever run this job (tags, privileges, ACL). Final.
    SupervisorMatchError,
    /// Eligible supervisors exist but none took the job within the queue timeout. Final.
    QueueTimeout,
    /// An internal error while scheduling or running the job. Final.
    InternalSupervisorError,
    /// The supervisor could not start the host (image fetch, resources, ...). Final.
    SupervisorHostStartError,
    /// A user canceled the job. Final.
    JobCanceled,
    /// The workload reports success.
    WorkloadFinishedSuccess,
    /// The workload reports an error.
    WorkloadFinishedError,
    /// The workload ended without saying whether it succeeded.
    WorkloadFinishedUnknown,
    /// The job vanished from its supervisor before reaching `Terminated`. Final.
    SupervisorDroppedJob,
    /// The job ran past its timeout. Final.
    JobTimeout,
}

/// Who asks for a transition. The book reserves some transitions to one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Switchboard,
    Supervisor,
}

impl ExecutionState {
    pub const ALL: [ExecutionState; 6] = [
        Self::Queued,
        Self::Scheduled,
        Self::Initializing,
        Self::Ready,
        Self::Terminating,
        Self::Terminated,
    ];

    /// Book table 1: may a job go from `self` to `to`? (`self == to` is not a transition.)
    pub fn may_become(self, to: ExecutionState) -> bool {
        use ExecutionState::*;
        match (self, to) {
            (a, b) if a == b => false,
            (Queued, _) => true,
            (Scheduled, Queued) => false,
            (Scheduled, _) => true,
            (Initializing, Ready | Terminating | Terminated) => true,
            (Ready, Initializing | Terminating | Terminated) => true,
            (Terminating, Terminated) => true,
            _ => false,
        }
    }

    /// Which side may move a job into this state. Book: `Queued` only by the switchboard;
    /// `Initializing`, `Ready` and `Terminating` only by a supervisor; `Terminated` by either.
    /// `Scheduled` is the switchboard's assignment of a job to a supervisor.
    pub fn may_be_entered_by(self, actor: Actor) -> bool {
        use ExecutionState::*;
        match self {
            Queued | Scheduled => actor == Actor::Switchboard,
            Initializing | Ready | Terminating => actor == Actor::Supervisor,
            Terminated => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ExecutionState::*;
        match self {
            Queued => "queued",
            Scheduled => "scheduled",
            Initializing => "initializing",
            Ready => "ready",
            Terminating => "terminating",
            Terminated => "terminated",
        }
    }
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 10] = [
        Self::SupervisorMatchError,
        Self::QueueTimeout,
        Self::InternalSupervisorError,
        Self::SupervisorHostStartError,
        Self::JobCanceled,
        Self::WorkloadFinishedSuccess,
        Self::WorkloadFinishedError,
        Self::WorkloadFinishedUnknown,
        Self::SupervisorDroppedJob,
        Self::JobTimeout,
    ];

    /// Exit statuses marked final in the book never change once set.
    pub fn is_final(self) -> bool {
        !self.is_workload_finished()
    }

    /// One of the three `WorkloadFinished*` statuses (the book's `WFS*` row and column).
    pub fn is_workload_finished(self) -> bool {
        matches!(
            self,
            Self::WorkloadFinishedSuccess
                | Self::WorkloadFinishedError
                | Self::WorkloadFinishedUnknown
        )
    }

    /// Book table 2: may an exit status already set to `self` change to `to`?
    /// Only a `WorkloadFinished*` status may change, into any status but `SupervisorMatchError`
    /// and `QueueTimeout`. Between the three `WorkloadFinished*` statuses the book writes "-":
    /// Paddock reads that as allowed (the workload may correct its own report before the job
    /// terminates); see docs/job-lifecycle.md.
    pub fn may_become(self, to: ExitStatus) -> bool {
        use ExitStatus::*;
        if self == to || !self.is_workload_finished() {
            return false;
        }
        !matches!(to, SupervisorMatchError | QueueTimeout)
    }

    /// Book table 3: may this exit status be set while the job is in `state`?
    pub fn may_be_set_in(self, state: ExecutionState) -> bool {
        use ExecutionState::*;
        use ExitStatus::*;
        match self {
            SupervisorMatchError | QueueTimeout => state == Queued,
            _ => matches!(state, Scheduled | Initializing | Ready | Terminating),
        }
    }

    /// Which side may set this status. The switchboard owns the scheduling and supervision
    /// outcomes; the supervisor (and the puppet through it) reports host and workload outcomes;
    /// both may report an internal error.
    pub fn may_be_set_by(self, actor: Actor) -> bool {
        use ExitStatus::*;
        match self {
            SupervisorMatchError | QueueTimeout | JobCanceled | SupervisorDroppedJob
            | JobTimeout => actor == Actor::Switchboard,
            SupervisorHostStartError
            | WorkloadFinishedSuccess
            | WorkloadFinishedError
            | WorkloadFinishedUnknown => actor == Actor::Supervisor,
            InternalSupervisorError => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ExitStatus::*;
        match self {
            SupervisorMatchError => "supervisor_match_error",
            QueueTimeout => "queue_timeout",
            InternalSupervisorError => "internal_supervisor_error",
            SupervisorHostStartError => "supervisor_host_start_error",
            JobCanceled => "job_canceled",
            WorkloadFinishedSuccess => "workload_finished_success",
            WorkloadFinishedError => "workload_finished_error",
            WorkloadFinishedUnknown => "workload_finished_unknown",
            SupervisorDroppedJob => "supervisor_dropped_job",
            JobTimeout => "job_timeout",
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An unknown state or status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

impl FromStr for ExecutionState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "execution state",
                name: s.to_string(),
            })
    }
}

impl FromStr for ExitStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "exit status",
                name: s.to_string(),
            })
    }
}

/// A job's whole state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub execution_state: ExecutionState,
    pub exit_status: Option<ExitStatus>,
}

/// A requested change: a new execution state, a new exit status, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub execution_state: Option<ExecutionState>,
    pub exit_status: Option<ExitStatus>,
}

impl Transition {
    pub fn to(state: ExecutionState) -> Self {
        Self {
            execution_state: Some(state),
            exit_status: None,
        }
    }
    pub fn status(status: ExitStatus) -> Self {
        Self {
            execution_state: None,
            exit_status: Some(status),
        }
    }
    pub fn to_with(state: ExecutionState, status: ExitStatus) -> Self {
        Self {
            execution_state: Some(state),
            exit_status: Some(status),
        }
    }
}

/// Why a transition was refused. The job's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("job is terminated; its state is final")]
    Final,
    #[error("illegal execution state transition {from} -> {to}")]
    IllegalExecution {
        from: ExecutionState,
        to: ExecutionState,
    },
    #[error("{actor:?} may not move a job into {to}")]
    ExecutionNotPermitted { actor: Actor, to: ExecutionState },
    #[error("exit status {status} may not be set in execution state {state}")]
    StatusNotAllowedInState {
        status: ExitStatus,
        state: ExecutionState,
    },
    #[error("{actor:?} may not set exit status {status}")]
    StatusNotPermitted { actor: Actor, status: ExitStatus },
    #[error("a job cannot terminate without an exit status")]
    TerminatedWithoutStatus,
}

/// The outcome of an accepted transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub state: JobState,
    /// An exit status that was asked for but not taken because the current one may not change
    /// into it (book: "the previous exit status remains valid"). Worth an event-log note.
    pub ignored_status: Option<ExitStatus>,
}

impl JobState {
    pub const QUEUED: JobState = JobState {
        execution_state: ExecutionState::Queued,
        exit_status: None,
    };

    pub fn is_terminated(&self) -> bool {
        self.execution_state == ExecutionState::Terminated
    }

    /// Decides a transition requested by `actor`. Rules, in order:
    /// 1. A `Terminated` job never changes.
    /// 2. The exception: the switchboard cancels a `Queued` job by moving it to `Terminated`
    ///    with `JobCanceled` in one step.
    /// 3. A new exit status must be one `actor` may set (else refused) and one that may be set
    ///    in the current execution state, table 3 (else refused). If the current status may not
    ///    change into it (table 2), the current one stays and the rest of the transition proceeds.
    /// 4. A new execution state must be legal from the current one (table 1) and enterable by
    ///    `actor`; `Terminated` needs an exit status.
    ///
    /// Re-stating the current execution state or exit status is not a change and is accepted.
    pub fn apply(&self, t: Transition, actor: Actor) -> Result<Applied, TransitionError> {
        use ExecutionState::*;
        if self.is_terminated() {
            return Err(TransitionError::Final);
        }
        if actor == Actor::Switchboard
            && self.execution_state == Queued
            && t == Transition::to_with(Terminated, ExitStatus::JobCanceled)
        {
            return Ok(Applied {
                state: JobState {
                    execution_state: Terminated,
                    exit_status: Some(ExitStatus::JobCanceled),
                },
                ignored_status: None,
            });
        }

        let mut next = *self;
        let mut ignored_status = None;
        if let Some(status) = t.exit_status.filter(|s| Some(*s) != self.exit_status) {
            if !status.may_be_set_by(actor) {
                return Err(TransitionError::StatusNotPermitted { actor, status });
            }
            if !status.may_be_set_in(self.execution_state) {
                return Err(TransitionError::StatusNotAllowedInState {
                    status,
                    state: self.execution_state,
                });
            }
            match self.exit_status {
                Some(old) if !old.may_become(status) => ignored_status = Some(status),
                _ => next.exit_status = Some(status),
            }
        }
        if let Some(to) = t.execution_state.filter(|s| *s != self.execution_state) {
            if !self.execution_state.may_become(to) {
                return Err(TransitionError::IllegalExecution {
                    from: self.execution_state,
                    to,
                });
            }
            if !to.may_be_entered_by(actor) {
                return Err(TransitionError::ExecutionNotPermitted { actor, to });
            }
            if to == Terminated && next.exit_status.is_none() {
                return Err(TransitionError::TerminatedWithoutStatus);
            }
            next.execution_state = to;
        }
        Ok(Applied {
            state: next,
            ignored_status,
        })
    }
}

#[cfg(test)]
mod tests;
