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

/// Old data, new code: a database at migration 0007 (before supervisor comments and the audit
/// gate) with a declared supervisor and audit history; migrations 0008 and 0009 copy the
/// repo's comment and derive each host's gate state from its history.
async fn migrations_0008_0009_read_old_rows(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    let sub = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(sub);
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.as_str() < "0008" {
            std::fs::copy(e.path(), old.join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let a = SupervisorId::new();
    let b = SupervisorId::new();
    let spec = serde_json::json!({"id": a.to_string(), "name": "a", "kind": "netboot", "tags": [],
        "mac": "52:54:00:12:34:56", "comment": "from the repo", "retired": false,
        "ready_for_service": true, "acl": {}});
    for (id, name, spec, blocked) in [(a, "a", Some(spec.to_string()), 0), (b, "b", None, 1)] {
        sqlx::query(
            "INSERT INTO supervisors (id, name, site, tags, acl, token_hash, retired, ready_for_service, created_at, spec, audit_blocked) \
             VALUES ($1, $2, 'lab', '[]', '{}', $3, 0, 1, 1, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(format!("hash-{name}"))
        .bind(spec)
        .bind(blocked)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (id, kind, verdict, failures) in [
        (a, "check", "FAILED", 1),
        (a, "check", "OK", 0),
        (a, "collect", "OK", 0),
        (a, "collect", "FAILED", 0),
        (b, "collect", "FAILED", 0),
        (b, "collect", "OK", 0),
        (b, "check", "FAILED", 2),
    ] {
        sqlx::query(
            "INSERT INTO audit_reports (supervisor_id, kind, received_at, verdict, failures, warnings, report) \
             VALUES ($1, $2, 1, $3, $4, 0, '{}')",
        )
        .bind(id.to_string())
        .bind(kind)
        .bind(verdict)
        .bind(failures)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let db = Db::connect(&url).await.unwrap();
    let sa = db.get_supervisor(a).await.unwrap();
    assert_eq!(sa.comment.as_deref(), Some("from the repo"));
    let declared = sa.declared.clone().unwrap();
    assert_eq!(declared.kind.as_deref(), Some("netboot"));
    assert_eq!(declared.mac.as_deref(), Some("52:54:00:12:34:56"));
    assert!(sa.audit_check_passed, "the latest check run passed");
    assert!(sa.inventory_failed, "the latest inventory is FAILED");
    let sb = db.get_supervisor(b).await.unwrap();
    assert_eq!(sb.comment, None);
    assert!(sb.declared.is_none());
    assert!(!sb.audit_check_passed, "the latest check run failed");
    assert!(!sb.inventory_failed, "the latest inventory is OK");
}
both_backends!(migrations_0008_0009_read_old_rows);
