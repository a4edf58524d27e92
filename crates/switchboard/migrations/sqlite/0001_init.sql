CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL,
    email TEXT,
    password_hash TEXT,
    privileges TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL REFERENCES users(name),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE TABLE supervisors (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    tags TEXT NOT NULL,
    acl TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    retired INTEGER NOT NULL DEFAULT 0,
    ready_for_service INTEGER NOT NULL DEFAULT 1,
    connection TEXT,
    last_seen INTEGER,
    current_job TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL,
    image_id TEXT NOT NULL,
    tag_expr TEXT NOT NULL,
    parameters TEXT NOT NULL,
    ssh_keys TEXT NOT NULL,
    timeout_s INTEGER NOT NULL,
    queue_timeout_s INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    execution_state TEXT NOT NULL,
    exit_status TEXT,
    status_message TEXT,
    supervisor_id TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    scheduled_at INTEGER,
    stop_requested_at INTEGER,
    terminated_at INTEGER
);
CREATE INDEX jobs_by_state ON jobs (execution_state, priority DESC, seq);
CREATE INDEX jobs_by_supervisor ON jobs (supervisor_id, execution_state);
CREATE INDEX jobs_by_user ON jobs (user_name, seq);

CREATE TABLE job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    message TEXT
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);

CREATE TABLE console_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX console_by_job ON console_chunks (job_id, id);
