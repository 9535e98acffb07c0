-- Signed ledger checkpoints (record count + head hash), one per signer and count: a pushed
-- ledger shorter than, or rewritten under, a checkpoint registered earlier is refused.
-- The PostgreSQL migration of the same number creates the same table.
CREATE TABLE checkpoints (
    public_key TEXT NOT NULL,
    records BIGINT NOT NULL,
    head TEXT NOT NULL,
    checkpoint_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (public_key, records)
);
