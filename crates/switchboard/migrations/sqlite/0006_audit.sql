-- Audit reports of supervisors' hosts (docs/audit.md "Into the fleet"), kept with history.
-- `kind` is collect (an inventory) or check (a baseline run); a check run with a hard failure
-- sets the supervisor's audit_blocked until a passing run arrives: the scheduler skips it.
CREATE TABLE audit_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    supervisor_id TEXT NOT NULL REFERENCES supervisors(id),
    kind TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    failures BIGINT NOT NULL,
    warnings BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX audit_reports_by_supervisor ON audit_reports (supervisor_id, kind, id);
ALTER TABLE supervisors ADD COLUMN audit_blocked INTEGER NOT NULL DEFAULT 0;
