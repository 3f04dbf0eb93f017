-- Erasures of data subjects or records: pseudonyms only (record ids and
-- keyed source-id hashes), never the erased content. Every execution that
-- starts afterwards drops the records they name with reason "erased".
-- Written by the API, read by processors; not a read model.
CREATE TABLE erasures (
    erasure_id       text        PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    by_user          text        NOT NULL,
    record_ids       text[]      NOT NULL,
    source_id_hashes text[]      NOT NULL
);
