-- A free-text comment on a supervisor (PATCH /supervisors/{id} `comment`, `paddock supervisor
-- set --comment`); for one the deployments repo declares, the repo's `comment`, copied here.
ALTER TABLE supervisors ADD COLUMN comment TEXT;
UPDATE supervisors SET comment = json_extract(spec, '$.comment') WHERE spec IS NOT NULL;
