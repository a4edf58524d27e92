-- Console accounting per job (docs/switchboard.md "Console"): bytes kept, bounded by
-- `console_limit_bytes`; bytes dropped past it; and how many of those a marker line and an
-- event have already reported. Kept apart from `jobs`, so console writes never rewrite a job row.
CREATE TABLE console_totals (
    job_id TEXT PRIMARY KEY,
    kept_bytes BIGINT NOT NULL DEFAULT 0,
    dropped_bytes BIGINT NOT NULL DEFAULT 0,
    noted_bytes BIGINT NOT NULL DEFAULT 0
);
