-- The audit gate (`require_audit`, docs/switchboard.md "Scheduling"): whether the host's latest
-- baseline check run passed (exists, no hard failure), and whether its latest inventory's
-- verdict is FAILED. Kept on the supervisor row, next to audit_blocked, for the scheduler.
ALTER TABLE supervisors ADD COLUMN audit_check_passed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE supervisors ADD COLUMN inventory_failed INTEGER NOT NULL DEFAULT 0;
UPDATE supervisors SET audit_check_passed = 1
    WHERE audit_blocked = 0
      AND EXISTS (SELECT 1 FROM audit_reports r WHERE r.supervisor_id = supervisors.id AND r.kind = 'check');
UPDATE supervisors SET inventory_failed = 1
    WHERE (SELECT r.verdict FROM audit_reports r
           WHERE r.supervisor_id = supervisors.id AND r.kind = 'collect'
           ORDER BY r.id DESC LIMIT 1) = 'FAILED';
