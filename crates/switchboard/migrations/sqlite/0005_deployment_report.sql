-- What the deploy daemon last saw (JSON, docs/deployments.md "Status"): the remote branch's
-- commit, the site server's working tree (head, edited files, commits ahead), and the outcome
-- of the last host activation. Observed state, never desired state.
ALTER TABLE deployment ADD COLUMN report TEXT;
