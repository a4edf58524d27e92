-- Every change of a job (each bumps its version) appends its event, and a terminated job gives
-- its supervisor back, in the same statement as the change itself.
ALTER TABLE jobs ADD COLUMN last_actor TEXT NOT NULL DEFAULT 'switchboard';
ALTER TABLE jobs ADD COLUMN last_message TEXT;

CREATE FUNCTION paddock_job_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, at, actor, from_state, to_state, from_status, to_status, message)
    VALUES (NEW.id, NEW.created_at, NEW.last_actor, NULL, NEW.execution_state, NULL, NEW.exit_status, NEW.last_message);
    RETURN NULL;
END;
$$;

CREATE FUNCTION paddock_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, at, actor, from_state, to_state, from_status, to_status, message)
    VALUES (NEW.id, NEW.updated_at, NEW.last_actor, OLD.execution_state, NEW.execution_state, OLD.exit_status,
            NEW.exit_status, NEW.last_message);
    IF NEW.execution_state = 'terminated' THEN
        UPDATE supervisors SET current_job = NULL WHERE id = NEW.supervisor_id AND current_job = NEW.id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_created AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION paddock_job_created();
CREATE TRIGGER job_changed AFTER UPDATE ON jobs FOR EACH ROW WHEN (NEW.version <> OLD.version)
    EXECUTE FUNCTION paddock_job_changed();
