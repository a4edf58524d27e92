-- How a user reaches a job's host (`paddock job ssh`): the supervisor's `job_access` message,
-- JSON `{"host":…,"port":…,"user":…}`, kept while the job runs and cleared when it terminates.
ALTER TABLE jobs ADD COLUMN access TEXT;
