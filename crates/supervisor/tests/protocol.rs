//! The supervisor against a scripted switchboard peer on a real WebSocket over loopback, for
//! protocol cases the real switchboard does not produce on demand: a repeated `start_job`,
//! config generations out of order, and what `hello` carries after a reconnect.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use paddock_core::protocol::{StartJob, SupervisorMessage, SwitchboardMessage};
use paddock_core::{ExecutionState, ExitStatus, JobId, SupervisorId};
use paddock_imagestore::LocalStore;
use paddock_imagestore::import::ImportOptions;
use paddock_supervisor::config::LocalDriverConfig;
use paddock_supervisor::connection::LinkSettings;
use paddock_supervisor::driver::local::LocalDriver;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type Ws = WebSocketStream<TcpStream>;

async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let callback = |req: &Request, mut resp: Response| {
        assert_eq!(
            req.headers()["authorization"].to_str().unwrap(),
            "Bearer pds_test"
        );
        resp.headers_mut()
            .insert("sec-websocket-protocol", "paddock.v1".parse().unwrap());
        Ok(resp)
    };
    tokio_tungstenite::accept_hdr_async(tcp, callback)
        .await
        .unwrap()
}

async fn send(ws: &mut Ws, m: &SwitchboardMessage) {
    ws.send(Message::Text(serde_json::to_string(m).unwrap().into()))
        .await
        .unwrap();
}

/// The next message that is not a heartbeat.
async fn recv(ws: &mut Ws) -> SupervisorMessage {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("supervisor silent")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = frame {
            let m: SupervisorMessage = serde_json::from_str(t.as_str()).unwrap();
            if m != SupervisorMessage::Heartbeat {
                return m;
            }
        }
    }
}

fn start(job: JobId, image: &str) -> SwitchboardMessage {
    SwitchboardMessage::StartJob(StartJob {
        job_id: job,
        image_id: image.parse().unwrap(),
        parameters: Default::default(),
        ssh_keys: vec![],
        timeout_s: 60,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_start_job_config_generations_and_hello_after_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let go = dir.path().join("go");
    let script = dir.path().join("wait.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.05; done\necho done\n",
            go.display()
        ),
    )
    .unwrap();
    let image = store
        .import(
            &script,
            &ImportOptions {
                label: "wait".into(),
                revision: None,
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap()
        .to_string();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sup_id = SupervisorId::new();
    let settings = paddock_supervisor::Settings {
        link: LinkSettings {
            switchboard_url: format!("http://{addr}"),
            token: "pds_test".into(),
            supervisor_id: Some(sup_id),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
        },
        stores: vec![store.root().to_path_buf()],
        urls: Vec::new(),
        cache_dir: dir.path().join("cache"),
        cache_max_bytes: 1 << 30,
    };
    let driver = LocalDriver::new(LocalDriverConfig::default(), &dir.path().join("work")).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (config_tx, mut config_rx) = tokio::sync::watch::channel(None);
    let supervisor = tokio::spawn(paddock_supervisor::run(
        settings,
        driver,
        stop_rx,
        Some(config_tx),
    ));

    // Connection 1.
    let mut ws = accept(&listener).await;
    match recv(&mut ws).await {
        SupervisorMessage::Hello {
            running_jobs,
            config_generation,
            ..
        } => {
            assert!(running_jobs.is_empty());
            assert_eq!(config_generation, None);
        }
        other => panic!("expected hello, got {other:?}"),
    }
    send(
        &mut ws,
        &SwitchboardMessage::Welcome {
            supervisor_id: sup_id,
            heartbeat_interval_s: 1,
        },
    )
    .await;
    for (g, v) in [(5, "five"), (3, "three"), (5, "five again")] {
        send(
            &mut ws,
            &SwitchboardMessage::Config {
                generation: g,
                config: serde_json::json!({ "v": v }),
            },
        )
        .await;
    }
    let job = JobId::new();
    // Sent twice, as a switchboard re-sends it after a reconnect: the job runs once.
    send(&mut ws, &start(job, &image)).await;
    send(&mut ws, &start(job, &image)).await;
    let mut states = Vec::new();
    while states.last() != Some(&ExecutionState::Ready) {
        if let SupervisorMessage::JobState {
            job_id,
            execution_state: Some(s),
            ..
        } = recv(&mut ws).await
        {
            assert_eq!(job_id, job);
            states.push(s);
        }
    }
    assert_eq!(
        states,
        [ExecutionState::Initializing, ExecutionState::Ready]
    );
    config_rx.changed().await.unwrap();
    let applied = config_rx.borrow().clone().unwrap();
    assert_eq!(applied.generation, 5);
    assert_eq!(applied.config["v"], "five");
    // Drop the connection while the job runs.
    drop(ws);

    // Connection 2: `hello` carries the running job and the config generation.
    let mut ws = accept(&listener).await;
    match recv(&mut ws).await {
        SupervisorMessage::Hello {
            running_jobs,
            config_generation,
            ..
        } => {
            assert_eq!(running_jobs.len(), 1, "{running_jobs:?}");
            assert_eq!(running_jobs[0].job_id, job);
            assert_eq!(running_jobs[0].execution_state, ExecutionState::Ready);
            assert_eq!(config_generation, Some(5));
        }
        other => panic!("expected hello, got {other:?}"),
    }
    send(
        &mut ws,
        &SwitchboardMessage::Welcome {
            supervisor_id: sup_id,
            heartbeat_interval_s: 1,
        },
    )
    .await;
    // A status request is answered from the job table.
    send(&mut ws, &SwitchboardMessage::StatusRequest).await;
    match recv(&mut ws).await {
        SupervisorMessage::Status { running_jobs } => assert_eq!(running_jobs.len(), 1),
        other => panic!("expected status, got {other:?}"),
    }
    std::fs::write(&go, "").unwrap();
    let mut console = String::new();
    let final_status = loop {
        match recv(&mut ws).await {
            SupervisorMessage::Console { data, .. } => console.push_str(&data),
            SupervisorMessage::JobState {
                execution_state: Some(ExecutionState::Terminating),
                exit_status,
                ..
            } => break exit_status,
            _ => {}
        }
    };
    assert_eq!(final_status, Some(ExitStatus::WorkloadFinishedSuccess));
    loop {
        match recv(&mut ws).await {
            SupervisorMessage::Console { data, .. } => console.push_str(&data),
            SupervisorMessage::JobState {
                execution_state: Some(ExecutionState::Terminated),
                ..
            } => break,
            _ => {}
        }
    }
    assert!(console.contains("done"), "{console:?}");

    // A welcome for another supervisor id is refused: the supervisor hangs up and retries.
    drop(ws);
    let mut ws = accept(&listener).await;
    let _hello = recv(&mut ws).await;
    send(
        &mut ws,
        &SwitchboardMessage::Welcome {
            supervisor_id: SupervisorId::new(),
            heartbeat_interval_s: 1,
        },
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the supervisor kept a connection for the wrong id"
    );
    drop(accept(&listener).await);

    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), supervisor)
        .await
        .unwrap()
        .unwrap();
}

/// Console output is never dropped while the switchboard is connected, however slowly it reads
/// (issue 11): the workload's output is held back instead. A workload writes 20 MB, more than
/// twice the in-flight budget, to a switchboard that reads slowly; every byte arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_is_held_back_not_dropped_while_connected() {
    const TOTAL: usize = 20_000_000;
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let script = dir.path().join("flood.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nhead -c {TOTAL} /dev/zero | tr '\\0' x\n"),
    )
    .unwrap();
    let image = store
        .import(
            &script,
            &ImportOptions {
                label: "flood".into(),
                revision: None,
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap()
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sup_id = SupervisorId::new();
    let settings = paddock_supervisor::Settings {
        link: LinkSettings {
            switchboard_url: format!("http://{addr}"),
            token: "pds_test".into(),
            supervisor_id: Some(sup_id),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            console_budget: paddock_supervisor::connection::CONSOLE_BUDGET,
        },
        stores: vec![store.root().to_path_buf()],
        urls: Vec::new(),
        cache_dir: dir.path().join("cache"),
        cache_max_bytes: 1 << 30,
    };
    let driver = LocalDriver::new(LocalDriverConfig::default(), &dir.path().join("work")).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let supervisor = tokio::spawn(paddock_supervisor::run(settings, driver, stop_rx, None));

    let mut ws = accept(&listener).await;
    assert!(matches!(
        recv(&mut ws).await,
        SupervisorMessage::Hello { .. }
    ));
    send(
        &mut ws,
        &SwitchboardMessage::Welcome {
            supervisor_id: sup_id,
            heartbeat_interval_s: 1,
        },
    )
    .await;
    let job = JobId::new();
    send(&mut ws, &start(job, &image)).await;
    let mut received = 0usize;
    let mut frames = 0usize;
    let mut dropped_notes = Vec::new();
    loop {
        match recv(&mut ws).await {
            SupervisorMessage::Console { data, .. } => {
                if data.starts_with("[paddock:") {
                    dropped_notes.push(data);
                    continue;
                }
                assert!(
                    data.bytes().all(|b| b == b'x'),
                    "unexpected console {data:?}"
                );
                received += data.len();
                frames += 1;
                // A slow switchboard: far slower than the workload writes.
                if frames.is_multiple_of(10) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    // Heartbeats keep the connection alive meanwhile.
                    send(&mut ws, &SwitchboardMessage::Heartbeat).await;
                }
            }
            SupervisorMessage::ConsoleDropped { bytes, reason, .. } => {
                dropped_notes.push(format!("{bytes} bytes: {reason}"))
            }
            SupervisorMessage::JobState {
                execution_state: Some(ExecutionState::Terminated),
                ..
            } => break,
            _ => {}
        }
    }
    assert!(dropped_notes.is_empty(), "{dropped_notes:?}");
    assert_eq!(received, TOTAL, "console bytes lost while connected");

    // Shut down, answering whatever the supervisor still says.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), supervisor)
        .await
        .unwrap()
        .unwrap();
    drain.abort();
}

/// Imports `script` as image `label`; returns its id.
fn import(store: &LocalStore, dir: &std::path::Path, label: &str, script: &str) -> String {
    let path = dir.join(format!("{label}.sh"));
    std::fs::write(&path, script).unwrap();
    store
        .import(
            &path,
            &ImportOptions {
                label: label.into(),
                revision: None,
                description: String::new(),
                entry_point: None,
                ready_on_puppet: false,
            },
        )
        .unwrap()
        .to_string()
}

/// Output a supervisor cannot deliver (the switchboard is unreachable and the budget is full)
/// is dropped, and a `console_dropped` report says exactly how much before the job's next
/// report: what arrives plus what is reported dropped is all the workload wrote (issue 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_dropped_while_disconnected_is_counted_exactly() {
    const TOTAL: usize = 2_000_000;
    const BUDGET: usize = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let go = dir.path().join("go");
    let image = import(
        &store,
        dir.path(),
        "flood",
        &format!(
            "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.02; done\nhead -c {TOTAL} /dev/zero | tr '\\0' x\n",
            go.display()
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sup_id = SupervisorId::new();
    let settings = paddock_supervisor::Settings {
        link: LinkSettings {
            switchboard_url: format!("http://{addr}"),
            token: "pds_test".into(),
            supervisor_id: Some(sup_id),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            console_budget: BUDGET,
        },
        stores: vec![store.root().to_path_buf()],
        urls: Vec::new(),
        cache_dir: dir.path().join("cache"),
        cache_max_bytes: 1 << 30,
    };
    let driver = LocalDriver::new(LocalDriverConfig::default(), &dir.path().join("work")).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let supervisor = tokio::spawn(paddock_supervisor::run(settings, driver, stop_rx, None));
    let welcome = SwitchboardMessage::Welcome {
        supervisor_id: sup_id,
        heartbeat_interval_s: 1,
    };

    let mut ws = accept(&listener).await;
    assert!(matches!(
        recv(&mut ws).await,
        SupervisorMessage::Hello { .. }
    ));
    send(&mut ws, &welcome).await;
    let job = JobId::new();
    send(&mut ws, &start(job, &image)).await;
    loop {
        if let SupervisorMessage::JobState {
            execution_state: Some(ExecutionState::Ready),
            ..
        } = recv(&mut ws).await
        {
            break;
        }
    }
    // The switchboard goes away; the workload floods meanwhile and exits.
    // (It notices at once; output only starts after that, so none is lost in a dying socket.)
    drop(ws);
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&go, "").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut ws = accept(&listener).await;
    assert!(matches!(
        recv(&mut ws).await,
        SupervisorMessage::Hello { .. }
    ));
    send(&mut ws, &welcome).await;
    let mut received = 0u64;
    let mut dropped = Vec::new();
    loop {
        match recv(&mut ws).await {
            SupervisorMessage::Console { data, .. } => received += data.len() as u64,
            SupervisorMessage::ConsoleDropped {
                job_id,
                bytes,
                reason,
            } => {
                assert_eq!(job_id, job);
                assert_eq!(reason, "the switchboard was unreachable");
                dropped.push(bytes);
            }
            SupervisorMessage::JobState {
                execution_state: Some(ExecutionState::Terminated),
                ..
            } => break,
            _ => {}
        }
    }
    assert!(!dropped.is_empty(), "nothing reported dropped");
    assert!(received <= (BUDGET + 16 * 1024) as u64, "{received}");
    assert_eq!(received + dropped.iter().sum::<u64>(), TOTAL as u64);

    let drain = tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), supervisor)
        .await
        .unwrap()
        .unwrap();
    drain.abort();
}
