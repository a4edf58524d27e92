-- Counters that let processes cache derived data: a cache is valid while its generation matches.
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('supervisors_generation', 0);
