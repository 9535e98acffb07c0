//! The registry's storage: SQLite (embedded, the default) or PostgreSQL (several instances
//! over one database), one schema with one migration per backend and version.
//!
//! Every write is one transaction, committed before the request is acknowledged: a record the
//! server said it stored survives a kill (SQLite runs in WAL mode with `synchronous=FULL`).
//! Inserts are idempotent: sending the same record twice stores it once, so a client that
//! retries after a lost answer never duplicates anything.

use std::str::FromStr as _;
use std::time::Duration;

use hallmark::{
    Candidate,
    ledger::{Checkpoint, Record},
};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one this server speaks.
    #[error("unsupported database URL (use sqlite:PATH or postgres://...): {0}")]
    Url(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrating the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The connection pool of one backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The registry database. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// Runs the same query text on whichever backend: the SQL below is written in the subset
/// both speak (`$N` placeholders, `ON CONFLICT`), so each statement exists once.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// What a new record did to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// It was new and is now stored.
    Created,
    /// The same record was already there (a retry, or a ledger pushed twice); manifest
    /// bytes it brings are added if the stored copy had none.
    Existing,
    /// Another record already claims this manifest ID: nothing was written.
    Conflict,
}

/// One record to store: a signed ledger record, and the manifest store's bytes when known.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// The signed record (checked by the caller).
    pub record: Record,
    /// The manifest store (`application/c2pa`), when sent.
    pub manifest_store: Option<Vec<u8>>,
    /// Where it came from: `stamp` or `ledger`.
    pub source: &'static str,
}

/// The soft-binding algorithm of hallmark's watermark.
pub const ALG: &str = hallmark::image_mark::SOFT_BINDING_ALG;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Store {
    /// Opens (and for SQLite creates) the database at `url` and brings its schema up to
    /// date. `sqlite:PATH` (or `sqlite://PATH`) or `postgres://USER@HOST/DB`.
    ///
    /// # Errors
    /// An unsupported URL, a database that cannot be opened, or a failed migration.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::Url(url.chars().take(200).collect()));
        };
        Ok(Store { pool })
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// The database's error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Stores a record and its soft binding, in one transaction.
    ///
    /// # Errors
    /// The database's error.
    pub async fn insert(&self, r: &NewRecord) -> Result<Inserted, StoreError> {
        // The same statements run on both backends (see `on_pool!`).
        on_pool!(self, |p| {
            let pool = p;
            let rec = &r.record;
            let e = &rec.entry;
            let record_json = serde_json::to_string(rec).unwrap_or_default();
            let store_sha = r
                .manifest_store
                .as_ref()
                .map(|s| hex::encode(Sha256::digest(s)));
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
            "INSERT INTO manifests (manifest_id, manifest_store, manifest_store_sha256, signer, model, key_id, \
             stamp_time, input_sha256, output_sha256, watermark_id, record_json, record_hash, public_key, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (manifest_id) DO NOTHING",
        )
        .bind(e.manifest_id.clone())
        .bind(r.manifest_store.clone())
        .bind(store_sha.clone())
        .bind(e.signer.clone())
        .bind(e.model.clone())
        .bind(e.key_id.clone())
        .bind(e.time.clone())
        .bind(e.input_sha256.clone())
        .bind(e.output_sha256.clone())
        .bind(e.watermark_id.to_string())
        .bind(record_json)
        .bind(rec.hash.clone())
        .bind(rec.public_key.clone())
        .bind(r.source)
        .bind(now())
        .execute(&mut *tx)
        .await?;
            let outcome = if done.rows_affected() == 1 {
                sqlx::query("INSERT INTO bindings (alg, value, manifest_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(ALG)
                .bind(e.watermark_id.0.to_be_bytes().to_vec())
                .bind(e.manifest_id.clone())
                .execute(&mut *tx)
                .await?;
                Inserted::Created
            } else {
                // Someone stored this manifest ID before: the same record (a retry), or a forgery.
                // The hash covers the whole signed record, signer key included.
                let row = sqlx::query("SELECT record_hash FROM manifests WHERE manifest_id = $1")
                    .bind(e.manifest_id.clone())
                    .fetch_one(&mut *tx)
                    .await?;
                let hash: String = row.try_get(0)?;
                if hash != rec.hash {
                    Inserted::Conflict
                } else {
                    if r.manifest_store.is_some() {
                        sqlx::query(
                            "UPDATE manifests SET manifest_store = $1, manifest_store_sha256 = $2 \
                         WHERE manifest_id = $3 AND manifest_store IS NULL",
                        )
                        .bind(r.manifest_store.clone())
                        .bind(store_sha)
                        .bind(e.manifest_id.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    Inserted::Existing
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// The manifest IDs bound to (`alg`, `value`), oldest stamp first, at most `max`.
    ///
    /// # Errors
    /// The database's error.
    pub async fn by_binding(
        &self,
        alg: &str,
        value: &[u8],
        max: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = on_pool!(self, |p| {
            sqlx::query(
            "SELECT b.manifest_id FROM bindings b JOIN manifests m ON m.manifest_id = b.manifest_id \
             WHERE b.alg = $1 AND b.value = $2 ORDER BY m.stamp_time, b.manifest_id LIMIT $3"
        )
        .bind(alg)
        .bind(value)
        .bind(max)
        .fetch_all(p)
        .await
        .and_then(|rows| rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, _>>())
        })?;
        Ok(rows)
    }

    /// What the registry holds for (`alg`, `value`): candidates for [`hallmark::recover`].
    ///
    /// # Errors
    /// The database's error.
    pub async fn candidates(
        &self,
        alg: &str,
        value: &[u8],
        max: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        let out = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT m.manifest_id, m.manifest_store, m.signer, m.model, m.stamp_time \
                 FROM bindings b JOIN manifests m ON m.manifest_id = b.manifest_id \
                 WHERE b.alg = $1 AND b.value = $2 ORDER BY m.stamp_time, b.manifest_id LIMIT $3",
            )
            .bind(alg)
            .bind(value)
            .bind(max)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Candidate {
                        manifest_id: r.try_get(0)?,
                        manifest_store: r.try_get(1)?,
                        signer: r.try_get(2)?,
                        model: r.try_get(3)?,
                        time: r.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(out)
    }

    /// The manifest store of `manifest_id`: `None` when unknown, `Some(None)` when the
    /// registry knows the manifest only from a ledger.
    ///
    /// # Errors
    /// The database's error.
    pub async fn manifest(&self, manifest_id: &str) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let row = on_pool!(self, |p| sqlx::query(
            "SELECT manifest_store FROM manifests WHERE manifest_id = $1"
        )
        .bind(manifest_id)
        .fetch_optional(p)
        .await
        .and_then(|r| r.map(|r| r.try_get::<Option<Vec<u8>>, _>(0)).transpose()))?;
        Ok(row)
    }

    /// How many manifests the registry holds.
    ///
    /// # Errors
    /// The database's error.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let n = on_pool!(self, |p| sqlx::query("SELECT COUNT(*) FROM manifests")
            .fetch_one(p)
            .await
            .and_then(|r| r.try_get::<i64, _>(0)))?;
        Ok(n)
    }

    /// Creates a write token and returns it; only its SHA-256 is stored.
    ///
    /// # Errors
    /// The database's error.
    pub async fn create_token(&self, label: Option<&str>) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let token = format!("hm_{}", hex::encode(raw));
        let hash = token_hash(&token);
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO tokens (token_sha256, label, created_at) VALUES ($1, $2, $3)"
        )
        .bind(&hash)
        .bind(label)
        .bind(now())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(token)
    }

    /// Whether `token` is a write token of this registry.
    ///
    /// # Errors
    /// The database's error.
    pub async fn token_valid(&self, token: &str) -> Result<bool, StoreError> {
        let hash = token_hash(token);
        let found = on_pool!(self, |p| sqlx::query(
            "SELECT 1 FROM tokens WHERE token_sha256 = $1"
        )
        .bind(&hash)
        .fetch_optional(p)
        .await
        .map(|r| r.is_some()))?;
        Ok(found)
    }

    /// Stores a signed checkpoint (checked by the caller): `Created`, `Existing` for the same
    /// one again, `Conflict` when another checkpoint of the same signer counts as many
    /// records with another head (the ledger was rewritten).
    ///
    /// # Errors
    /// The database's error.
    pub async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<Inserted, StoreError> {
        let json = serde_json::to_string(cp).unwrap_or_default();
        let records = i64::try_from(cp.records).unwrap_or(i64::MAX);
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "INSERT INTO checkpoints (public_key, records, head, checkpoint_json, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (public_key, records) DO NOTHING",
            )
            .bind(cp.public_key.clone())
            .bind(records)
            .bind(cp.head.clone())
            .bind(json)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            let out = if done.rows_affected() == 1 {
                Inserted::Created
            } else {
                let row = sqlx::query(
                    "SELECT head FROM checkpoints WHERE public_key = $1 AND records = $2",
                )
                .bind(cp.public_key.clone())
                .bind(records)
                .fetch_one(&mut *tx)
                .await?;
                let head: String = row.try_get(0)?;
                if head == cp.head {
                    Inserted::Existing
                } else {
                    Inserted::Conflict
                }
            };
            tx.commit().await?;
            Ok(out)
        })
    }

    /// The checkpoints registered for a signer's public key (hex), fewest records first.
    ///
    /// # Errors
    /// The database's error.
    pub async fn checkpoints(&self, public_key: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = on_pool!(self, |p| sqlx::query(
            "SELECT checkpoint_json FROM checkpoints WHERE public_key = $1 ORDER BY records"
        )
        .bind(public_key)
        .fetch_all(p)
        .await
        .and_then(|rows| rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()))?;
        Ok(rows
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect())
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await);
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
