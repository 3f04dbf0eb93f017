-- The review queue: quarantined records waiting for a human, and what the
-- reviewer said. Rebuilt from dataset.review.* events like every read model.
CREATE TABLE reviews (
    execution_id    text        NOT NULL REFERENCES executions ON DELETE CASCADE,
    review          int         NOT NULL,
    record_id       text        NOT NULL,
    source          text        NOT NULL,
    position        bigint      NOT NULL,
    flags           text[]      NOT NULL,
    crisis_level    text        NOT NULL,
    score           double precision NOT NULL,
    status          text        NOT NULL,
    opened_at       timestamptz NOT NULL,
    acknowledged_by text        NOT NULL DEFAULT '',
    note            text        NOT NULL DEFAULT '',
    acknowledged_at timestamptz,
    PRIMARY KEY (execution_id, review)
);
CREATE INDEX reviews_open ON reviews (opened_at) WHERE status = 'open';
