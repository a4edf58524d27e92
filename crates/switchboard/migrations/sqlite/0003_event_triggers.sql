-- Every change of a job (each bumps its version) appends its event, and a terminated job gives
-- its supervisor back, in the same statement as the change itself.
ALTER TABLE jobs ADD COLUMN last_actor TEXT NOT NULL DEFAULT 'switchboard';
ALTER TABLE jobs ADD COLUMN last_message TEXT;

CREATE TRIGGER job_created AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, at, actor, from_state, to_state, from_status, to_status, message)
    VALUES (NEW.id, NEW.created_at, NEW.last_actor, NULL, NEW.execution_state, NULL, NEW.exit_status, NEW.last_message);
END;

CREATE TRIGGER job_changed AFTER UPDATE OF version ON jobs WHEN NEW.version <> OLD.version
BEGIN
    INSERT INTO job_events (job_id, at, actor, from_state, to_state, from_status, to_status, message)
    VALUES (NEW.id, NEW.updated_at, NEW.last_actor, OLD.execution_state, NEW.execution_state, OLD.exit_status,
            NEW.exit_status, NEW.last_message);
    UPDATE supervisors SET current_job = NULL
    WHERE NEW.execution_state = 'terminated' AND id = NEW.supervisor_id AND current_job = NEW.id;
END;
