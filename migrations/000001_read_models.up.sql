-- Read models rebuilt by the projector from the event log. Every column is a
-- function of events alone (event times, never now()), so a rebuild from
-- offset zero reproduces them exactly.

CREATE TABLE executions (
    execution_id     text PRIMARY KEY,
    user_id          text        NOT NULL,
    status           text        NOT NULL,
    current_stage    text        NOT NULL DEFAULT '',
    request          jsonb       NOT NULL,
    received         bigint      NOT NULL DEFAULT 0,
    valid            bigint      NOT NULL DEFAULT 0,
    rejected         bigint      NOT NULL DEFAULT 0,
    total            bigint      NOT NULL DEFAULT 0,
    rate_per_sec     double precision NOT NULL DEFAULT 0,
    reported_percent double precision,
    error_reason     text        NOT NULL DEFAULT '',
    error_category   text        NOT NULL DEFAULT '',
    output_dir       text        NOT NULL DEFAULT '',
    last_seq         bigint      NOT NULL,
    last_hash        text        NOT NULL,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX executions_active ON executions (created_at) WHERE status IN ('requested', 'queued', 'running');
CREATE INDEX executions_user ON executions (user_id, created_at);

CREATE TABLE stage_runs (
    execution_id text        NOT NULL REFERENCES executions ON DELETE CASCADE,
    stage        text        NOT NULL,
    ordinal      int         NOT NULL,
    status       text        NOT NULL,
    received     bigint      NOT NULL DEFAULT 0,
    valid        bigint      NOT NULL DEFAULT 0,
    rejected     bigint      NOT NULL DEFAULT 0,
    duration_ms  bigint      NOT NULL DEFAULT 0,
    error_reason text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    PRIMARY KEY (execution_id, stage)
);

CREATE TABLE source_runs (
    execution_id text        NOT NULL REFERENCES executions ON DELETE CASCADE,
    source_index int         NOT NULL,
    name         text        NOT NULL,
    kind         text        NOT NULL,
    status       text        NOT NULL,
    records      bigint      NOT NULL DEFAULT 0,
    output       bigint      NOT NULL DEFAULT 0,
    bytes        bigint      NOT NULL DEFAULT 0,
    error_reason text        NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, source_index)
);

CREATE TABLE output_files (
    execution_id text   NOT NULL REFERENCES executions ON DELETE CASCADE,
    name         text   NOT NULL,
    records      bigint NOT NULL,
    bytes        bigint NOT NULL,
    sha256       text   NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE alerts (
    execution_id text        NOT NULL REFERENCES executions ON DELETE CASCADE,
    seq          bigint      NOT NULL,
    severity     text        NOT NULL,
    code         text        NOT NULL,
    message      text        NOT NULL,
    stage        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- The audit chain: every event as published, byte for byte, so the hash
-- chain can be verified from Postgres as well as from Kafka.
CREATE TABLE audit_events (
    execution_id text        NOT NULL,
    seq          bigint      NOT NULL,
    event_id     text        NOT NULL,
    type         text        NOT NULL,
    time         timestamptz NOT NULL,
    prevhash     text        NOT NULL,
    hash         text        NOT NULL,
    envelope     bytea       NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- Consumed offsets, written in the same transaction as the read-model change.
-- generation fences a projector that lost its partition but still writes.
CREATE TABLE projector_offsets (
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    generation  int    NOT NULL,
    PRIMARY KEY (topic, partition)
);
