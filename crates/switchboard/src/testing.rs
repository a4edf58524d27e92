//! For tests, of this crate and of the others (feature `testing`): [`TestApp`], the real
//! router and tasks in-process on a `127.0.0.1:0` listener, over a fresh SQLite file or a fresh
//! PostgreSQL schema per test, with an admin and its token. Panics on failure: test code only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::db::Db;
use crate::{AppState, Config};
use paddock_core::{Name, Privilege};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const IMAGE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn postgres_url() -> String {
    std::env::var("PADDOCK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database URL for a fresh, empty database of this backend.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let base = postgres_url();
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::AnyConnection::connect(&base)
                .await
                .expect("PostgreSQL at PADDOCK_TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut conn)
                .await
                .expect("create schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        }
    }
}

/// A switchboard serving on loopback, shut down when dropped (unless [`TestApp::detach`]ed).
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub app: AppState,
    /// The token of the user `admin` (privilege `admin`).
    pub admin: String,
    pub http: reqwest::Client,
    dir: std::path::PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl TestApp {
    /// A switchboard on a fresh database of `backend`, with the reaper every 100 ms.
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}).await
    }

    /// As [`TestApp::start`], with the configuration changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let owned = tempfile::tempdir().unwrap();
        let mut t = Self::start_in(owned.path(), backend, tweak).await;
        t._owned = Some(owned);
        t
    }

    /// As [`TestApp::start_with`], with the SQLite database (`test.db`) in `dir`, which the
    /// caller keeps.
    pub async fn start_in(
        dir: &std::path::Path,
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let url = fresh_database(backend, dir).await;
        let db = Db::connect(&url).await.unwrap();
        let mut config = Config {
            reaper_interval_ms: 100,
            ..Config::default()
        };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let admin_name: Name = "admin".parse().unwrap();
        db.create_user(&admin_name, None, &[Privilege::Admin])
            .await
            .unwrap();
        let admin = crate::tokens::mint(&db, &admin_name, None)
            .await
            .unwrap()
            .token;
        let app = AppState::new(db, config);
        tokio::spawn(crate::run(app.clone(), listener));
        TestApp {
            base,
            app,
            admin,
            http: reqwest::Client::new(),
            dir: dir.to_path_buf(),
            _owned: None,
        }
    }

    /// The test's directory (the SQLite database is `test.db` in it).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Lets the switchboard run on after this handle is gone (until the test's runtime ends;
    /// a directory of [`TestApp::start_with`] is then left behind);
    /// returns its URL and the admin's token.
    pub fn detach(self) -> (String, String) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.base.clone(), this.admin.clone())
    }

    pub async fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.req(method, path, Some(&self.admin), body).await
    }

    /// A user with these privileges; returns its token.
    pub async fn user(&self, name: &str, privileges: &[&str]) -> String {
        let (s, v) = self
            .admin(
                Method::POST,
                "/api/v1/users",
                Some(json!({"name": name, "privileges": privileges})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"]["token"].as_str().unwrap().to_string()
    }

    pub async fn add_supervisor(&self, name: &str, tags: &[&str]) -> (String, String) {
        let body = json!({"name": name, "site": "lab", "tags": tags});
        let (s, v) = self
            .admin(Method::POST, "/api/v1/supervisors", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn enqueue_as(&self, token: &str, tags: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"image": IMAGE, "tags": tags});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.req(Method::POST, "/api/v1/jobs", Some(token), Some(body))
            .await
    }

    pub async fn enqueue(&self, tags: &str, extra: Value) -> String {
        let (s, v) = self.enqueue_as(&self.admin.clone(), tags, extra).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["job_id"].as_str().unwrap().to_string()
    }

    pub async fn job(&self, id: &str) -> Value {
        let (s, v) = self
            .admin(Method::GET, &format!("/api/v1/jobs/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Waits until the job is in `state`; returns it.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let j = self.job(id).await;
            if j["execution_state"] == state {
                return j;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} never reached {state}: {j}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.app.shutdown();
    }
}
