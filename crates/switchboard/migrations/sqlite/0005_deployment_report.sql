-- What the deploy daemon last saw (JSON, docs/deployments.md "Status"): the remote branch's
-- commit, the site server's working tree (head, edited files, commits ahead), and the outcome
-- of the last host activation. Observed state, never desired state.
ALTER TABLE deployment ADD COLUMN report TEXT;
-- The applied state's instance ACL and defaults (JSON), read by the scheduler and at enqueue
-- without the whole state; NULL until a deployments repo is applied.
ALTER TABLE deployment ADD COLUMN settings TEXT;
