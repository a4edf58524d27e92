//! Storage: migrations are idempotent, and concurrent schedulers on one PostgreSQL never give a
//! job to two supervisors or two jobs to one supervisor.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use paddock_core::acl::Acl;
use paddock_core::{ImageId, Name, Privilege, SupervisorId};
use paddock_switchboard::db::Db;
use paddock_switchboard::db::jobs::NewJob;
use paddock_switchboard::db::supervisors::NewSupervisor;

use crate::both_backends;
use crate::common::{Backend, IMAGE, fresh_database};

async fn migrations_are_idempotent(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let db = Db::connect(&url).await.unwrap();
    let name = Name::from_str("u").unwrap();
    db.create_user(&name, None, &[Privilege::SubmitJobs])
        .await
        .unwrap();
    drop(db);
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(
        db.get_user(&name).await.unwrap().privileges,
        vec![Privilege::SubmitJobs]
    );
    assert!(matches!(
        db.create_user(&name, None, &[]).await,
        Err(paddock_switchboard::db::StoreError::Conflict(_))
    ));
}
both_backends!(migrations_are_idempotent);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_on_postgres_never_double_assign() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path()).await;
    let db = Db::connect(&url).await.unwrap();
    let user = Name::from_str("u").unwrap();
    db.create_user(&user, None, &[Privilege::SubmitJobs])
        .await
        .unwrap();
    let mut sups = HashSet::new();
    for i in 0..20 {
        let name = Name::from_str(&format!("s{i}")).unwrap();
        let site = Name::from_str("lab").unwrap();
        let tags = ["board:x".parse().unwrap()];
        let id = db
            .create_supervisor(NewSupervisor {
                name: &name,
                site: &site,
                tags: &tags,
                acl: &Acl::default(),
                ready_for_service: true,
                token_hash: &format!("h{i}"),
            })
            .await
            .unwrap();
        db.supervisor_connected(id, "test").await.unwrap();
        sups.insert(id);
    }
    for _ in 0..50 {
        let job = NewJob {
            user: user.clone(),
            image_id: ImageId::from_str(IMAGE).unwrap(),
            tag_expr: "board:x".into(),
            parameters: Default::default(),
            ssh_keys: vec![],
            timeout_s: 60,
            queue_timeout_s: 60,
            priority: 0,
        };
        db.create_job(job, None).await.unwrap();
    }
    // Four "switchboard processes", each with its own pool, claim at the same time.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = Db::connect(&url).await.unwrap();
        let sups = sups.clone();
        tasks.push(tokio::spawn(async move {
            db.claim(&sups, 100, |jobs, idle| {
                let acl = Acl::default();
                paddock_switchboard::scheduler::pick(jobs, idle, &acl)
            })
            .await
            .unwrap()
        }));
    }
    let mut by_job = HashMap::new();
    let mut by_sup: HashMap<SupervisorId, usize> = HashMap::new();
    for t in tasks {
        for c in t.await.unwrap() {
            assert!(
                by_job.insert(c.job.id, c.supervisor_id).is_none(),
                "job claimed twice"
            );
            *by_sup.entry(c.supervisor_id).or_default() += 1;
        }
    }
    assert_eq!(
        by_job.len(),
        20,
        "every idle supervisor got exactly one job"
    );
    assert!(by_sup.values().all(|&n| n == 1));
    // The database agrees.
    for (job, sup) in by_job {
        let j = db.get_job(job).await.unwrap();
        assert_eq!(j.supervisor_id, Some(sup));
        assert_eq!(db.get_supervisor(sup).await.unwrap().current_job, Some(job));
    }
}
