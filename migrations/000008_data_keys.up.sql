-- Data keys: one per execution, wrapped by a key-encryption key (a local
-- keyring version or a KMS key, named by key_ref). Written by whichever
-- service first needs the key, read by the others; never in the event log.
-- Destroying a key (wrapped set to NULL) makes every copy of that
-- execution's records unreadable: crypto-shredding. Not a read model: a
-- rebuild copies this table from the live schema.
CREATE TABLE data_keys (
    execution_id text        PRIMARY KEY,
    key_ref      text        NOT NULL,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);

ALTER TABLE executions ADD COLUMN data_deleted_at timestamptz;
