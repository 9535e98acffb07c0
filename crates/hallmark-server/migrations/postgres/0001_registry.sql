-- The registry: one row per signed manifest, its soft bindings, and the write tokens.
-- The SQLite migration of the same number creates the same tables and columns.
CREATE TABLE manifests (
    manifest_id TEXT PRIMARY KEY NOT NULL,
    manifest_store BYTEA,
    manifest_store_sha256 TEXT,
    signer TEXT NOT NULL,
    model TEXT,
    key_id TEXT NOT NULL,
    stamp_time TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    watermark_id TEXT NOT NULL,
    record_json TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    public_key TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE bindings (
    alg TEXT NOT NULL,
    value BYTEA NOT NULL,
    manifest_id TEXT NOT NULL REFERENCES manifests (manifest_id),
    PRIMARY KEY (alg, value, manifest_id)
);

CREATE TABLE tokens (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    label TEXT,
    created_at TEXT NOT NULL
);
