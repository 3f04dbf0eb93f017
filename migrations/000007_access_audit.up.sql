-- The access audit: every API call that touches execution data, as the
-- API published it on dataset.access, one hash chain per API instance run,
-- byte for byte (envelope) so the chains verify from Postgres as well as
-- from Kafka. The other columns are for querying; they hold no record
-- text, tokens or query strings.
CREATE TABLE access_chains (
    chain      text        PRIMARY KEY,
    last_seq   bigint      NOT NULL,
    last_hash  text        NOT NULL,
    sealed_seq bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);

CREATE TABLE access_events (
    chain        text        NOT NULL,
    seq          bigint      NOT NULL,
    type         text        NOT NULL,
    time         timestamptz NOT NULL,
    user_id      text        NOT NULL DEFAULT '',
    role         text        NOT NULL DEFAULT '',
    action       text        NOT NULL DEFAULT '',
    method       text        NOT NULL DEFAULT '',
    route        text        NOT NULL DEFAULT '',
    execution_id text        NOT NULL DEFAULT '',
    review       text        NOT NULL DEFAULT '',
    remote       text        NOT NULL DEFAULT '',
    status       int         NOT NULL DEFAULT 0,
    prevhash     text        NOT NULL,
    hash         text        NOT NULL,
    envelope     bytea       NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX access_events_time ON access_events (time);
CREATE INDEX access_events_user ON access_events (user_id, time);
CREATE INDEX access_events_execution ON access_events (execution_id, time) WHERE execution_id <> '';
