-- The deployments repo's desired state (docs/deployments.md). A supervisor or user the repo
-- declares is marked: `spec` holds the supervisor's declaration (JSON), `deployed` the user's.
-- The single `deployment` row is the last applied commit and its whole state.
ALTER TABLE supervisors ADD COLUMN spec TEXT;
ALTER TABLE users ADD COLUMN deployed INTEGER NOT NULL DEFAULT 0;
CREATE TABLE deployment (
    id INTEGER PRIMARY KEY NOT NULL,
    commit_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    -- The newest rejected commit and its errors (JSON), cleared by the next successful apply.
    last_error TEXT
);
INSERT INTO deployment (id, commit_id, generation, applied_at, state)
VALUES (1, '', 0, 0, '{"switchboard":{"users":[]},"sites":[]}');
