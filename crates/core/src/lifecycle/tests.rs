//! Walks every cell of the book's three tables, typed here exactly as the book prints them.

use super::*;
use ExecutionState as E;
use ExitStatus as X;

/// Book table 1, rows = from, columns = to (Q'd, Sched, Init, Ready, Term-ing, Term'd).
const EXEC_TABLE: [(E, [&str; 6]); 6] = [
    (E::Queued, ["-", "✔", "✔", "✔", "✔", "✔"]),
    (E::Scheduled, ["✘", "-", "✔", "✔", "✔", "✔"]),
    (E::Initializing, ["✘", "✘", "-", "✔", "✔", "✔"]),
    (E::Ready, ["✘", "✘", "✔", "-", "✔", "✔"]),
    (E::Terminating, ["✘", "✘", "✘", "✘", "-", "✔"]),
    (E::Terminated, ["✘", "✘", "✘", "✘", "✘", "-"]),
];

/// Book table 2, rows = from, columns = to
/// (SupMF, QTime, IntSupE, SupHSE, JobC, WFS*, SupJDrop, JobTimeout).
/// The WFS* row and column stand for all three WorkloadFinished* statuses.
const STATUS_TABLE: [(&[X], [&str; 8]); 8] = [
    (
        &[X::SupervisorMatchError],
        ["-", "✘", "✘", "✘", "✘", "✘", "✘", "✘"],
    ),
    (&[X::QueueTimeout], ["✘", "-", "✘", "✘", "✘", "✘", "✘", "✘"]),
    (
        &[X::InternalSupervisorError],
        ["✘", "✘", "-", "✘", "✘", "✘", "✘", "✘"],
    ),
    (
        &[X::SupervisorHostStartError],
        ["✘", "✘", "✘", "-", "✘", "✘", "✘", "✘"],
    ),
    (&[X::JobCanceled], ["✘", "✘", "✘", "✘", "-", "✘", "✘", "✘"]),
    (WFS, ["✘", "✘", "✔", "✔", "✔", "-", "✔", "✔"]),
    (
        &[X::SupervisorDroppedJob],
        ["✘", "✘", "✘", "✘", "✘", "✘", "-", "✘"],
    ),
    (&[X::JobTimeout], ["✘", "✘", "✘", "✘", "✘", "✘", "✘", "-"]),
];

const WFS: &[X] = &[
    X::WorkloadFinishedSuccess,
    X::WorkloadFinishedError,
    X::WorkloadFinishedUnknown,
];

const STATUS_COLUMNS: [&[X]; 8] = [
    &[X::SupervisorMatchError],
    &[X::QueueTimeout],
    &[X::InternalSupervisorError],
    &[X::SupervisorHostStartError],
    &[X::JobCanceled],
    WFS,
    &[X::SupervisorDroppedJob],
    &[X::JobTimeout],
];

/// Book table 3, rows = exit status, columns = execution state.
const IN_STATE_TABLE: [(&[X], [&str; 6]); 8] = [
    (&[X::SupervisorMatchError], ["✔", "✘", "✘", "✘", "✘", "✘"]),
    (&[X::QueueTimeout], ["✔", "✘", "✘", "✘", "✘", "✘"]),
    (
        &[X::InternalSupervisorError],
        ["✘", "✔", "✔", "✔", "✔", "✘"],
    ),
    (
        &[X::SupervisorHostStartError],
        ["✘", "✔", "✔", "✔", "✔", "✘"],
    ),
    (&[X::JobCanceled], ["✘", "✔", "✔", "✔", "✔", "✘"]),
    (WFS, ["✘", "✔", "✔", "✔", "✔", "✘"]),
    (&[X::SupervisorDroppedJob], ["✘", "✔", "✔", "✔", "✔", "✘"]),
    (&[X::JobTimeout], ["✘", "✔", "✔", "✔", "✔", "✘"]),
];

#[test]
fn execution_table_every_cell() {
    let mut cells = 0;
    for (from, row) in EXEC_TABLE {
        for (to, cell) in E::ALL.into_iter().zip(row) {
            cells += 1;
            assert_eq!(from.may_become(to), cell == "✔", "{from} -> {to}");
            // Through apply(): the side allowed to enter `to`, with a status when needed.
            let actor = if to.may_be_entered_by(Actor::Supervisor) && from != E::Queued {
                Actor::Supervisor
            } else if to.may_be_entered_by(Actor::Switchboard) {
                Actor::Switchboard
            } else {
                Actor::Supervisor
            };
            let status = match (to, from) {
                (E::Terminated, E::Queued) => Some(X::SupervisorMatchError),
                (E::Terminated, _) => Some(X::InternalSupervisorError),
                _ => None,
            };
            let state = JobState {
                execution_state: from,
                exit_status: None,
            };
            let t = Transition {
                execution_state: Some(to),
                exit_status: status,
            };
            let r = state.apply(t, actor);
            match cell {
                "✔" => assert_eq!(r.map(|a| a.state.execution_state), Ok(to), "{from} -> {to}"),
                "✘" => assert!(r.is_err(), "{from} -> {to} must be refused"),
                _ if from == E::Terminated => assert_eq!(r, Err(TransitionError::Final)),
                _ => assert_eq!(r.map(|a| a.state), Ok(state), "restating {from} is a no-op"),
            }
        }
    }
    assert_eq!(cells, 36);
}

#[test]
fn status_table_every_cell() {
    let mut cells = 0;
    for (froms, row) in STATUS_TABLE {
        for (tos, cell) in STATUS_COLUMNS.into_iter().zip(row) {
            for &from in froms {
                for &to in tos {
                    cells += 1;
                    let expect = match cell {
                        "✔" => true,
                        "✘" => false,
                        // Diagonal: same status is no change; between two WorkloadFinished*
                        // statuses Paddock allows the change (docs/job-lifecycle.md).
                        _ => from != to && from.is_workload_finished(),
                    };
                    assert_eq!(from.may_become(to), expect, "{from} -> {to}");
                    // Through apply(), in an execution state where `to` may be set: a refused
                    // change keeps the old status ("the previous exit status remains valid").
                    let Some(in_state) = E::ALL.into_iter().find(|s| to.may_be_set_in(*s)) else {
                        continue;
                    };
                    if !from.may_be_set_in(in_state) {
                        continue; // no job can hold `from` in that state
                    }
                    let actor = if to.may_be_set_by(Actor::Supervisor) {
                        Actor::Supervisor
                    } else {
                        Actor::Switchboard
                    };
                    let state = JobState {
                        execution_state: in_state,
                        exit_status: Some(from),
                    };
                    let applied = state
                        .apply(Transition::status(to), actor)
                        .expect("status change is never an error");
                    let kept = if expect { to } else { from };
                    assert_eq!(applied.state.exit_status, Some(kept), "{from} -> {to}");
                    assert_eq!(applied.ignored_status.is_some(), !expect && from != to);
                }
            }
        }
    }
    assert_eq!(cells, 100);
}

#[test]
fn status_in_state_table_every_cell() {
    let mut cells = 0;
    for (statuses, row) in IN_STATE_TABLE {
        for (state, cell) in E::ALL.into_iter().zip(row) {
            for &status in statuses {
                cells += 1;
                assert_eq!(
                    status.may_be_set_in(state),
                    cell == "✔",
                    "{status} in {state}"
                );
                let actor = if status.may_be_set_by(Actor::Supervisor) {
                    Actor::Supervisor
                } else {
                    Actor::Switchboard
                };
                let job = JobState {
                    execution_state: state,
                    exit_status: None,
                };
                let r = job.apply(Transition::status(status), actor);
                if cell == "✔" {
                    assert_eq!(r.map(|a| a.state.exit_status), Ok(Some(status)));
                } else {
                    assert!(r.is_err(), "{status} in {state} must be refused");
                }
            }
        }
    }
    assert_eq!(cells, 60);
}

#[test]
fn cancel_of_queued_job_is_the_one_exception() {
    let t = Transition::to_with(E::Terminated, X::JobCanceled);
    let a = JobState::QUEUED.apply(t, Actor::Switchboard).unwrap();
    assert_eq!(
        a.state,
        JobState {
            execution_state: E::Terminated,
            exit_status: Some(X::JobCanceled)
        }
    );
    // Only as one step, and only by the switchboard.
    assert!(
        JobState::QUEUED
            .apply(Transition::status(X::JobCanceled), Actor::Switchboard)
            .is_err()
    );
    assert!(JobState::QUEUED.apply(t, Actor::Supervisor).is_err());
}

#[test]
fn actors_are_checked() {
    let sched = JobState {
        execution_state: E::Scheduled,
        exit_status: None,
    };
    assert!(matches!(
        sched.apply(Transition::to(E::Ready), Actor::Switchboard),
        Err(TransitionError::ExecutionNotPermitted { .. })
    ));
    assert!(matches!(
        sched.apply(
            Transition::status(X::SupervisorDroppedJob),
            Actor::Supervisor
        ),
        Err(TransitionError::StatusNotPermitted { .. })
    ));
    assert!(matches!(
        JobState::QUEUED.apply(Transition::to(E::Scheduled), Actor::Supervisor),
        Err(TransitionError::ExecutionNotPermitted { .. })
    ));
}

#[test]
fn final_status_survives_workload_report_and_job_terminates() {
    let ready = JobState {
        execution_state: E::Ready,
        exit_status: Some(X::JobTimeout),
    };
    let a = ready
        .apply(
            Transition::to_with(E::Terminated, X::WorkloadFinishedSuccess),
            Actor::Supervisor,
        )
        .unwrap();
    assert_eq!(
        a.state,
        JobState {
            execution_state: E::Terminated,
            exit_status: Some(X::JobTimeout)
        }
    );
    assert_eq!(a.ignored_status, Some(X::WorkloadFinishedSuccess));
}

#[test]
fn terminated_needs_a_status_and_is_final() {
    let ready = JobState {
        execution_state: E::Ready,
        exit_status: None,
    };
    assert_eq!(
        ready.apply(Transition::to(E::Terminated), Actor::Supervisor),
        Err(TransitionError::TerminatedWithoutStatus)
    );
    let done = JobState {
        execution_state: E::Terminated,
        exit_status: Some(X::WorkloadFinishedSuccess),
    };
    for s in X::ALL {
        assert_eq!(
            done.apply(Transition::status(s), Actor::Switchboard),
            Err(TransitionError::Final)
        );
    }
}

#[test]
fn names_are_the_books_in_snake_case() {
    for s in E::ALL {
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
        assert_eq!(s.as_str().parse::<E>().unwrap(), s);
    }
    for s in X::ALL {
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
        assert_eq!(s.as_str().parse::<X>().unwrap(), s);
    }
    assert_eq!(X::SupervisorMatchError.as_str(), "supervisor_match_error");
}
