//! pz's metadata database: users, groups and API tokens now, the product store next.
//!
//! Embedded SQLite in the data directory by default (nothing to start), PostgreSQL when a
//! `postgres://` URL is given, through one code path: sqlx's `Any` driver, migrations from
//! `catalogs/migrations/`, and every statement in [`sql`].

mod sql;
pub mod tokens;
pub mod users;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

pub use tokens::{Token, TokenInfo};
pub use users::User;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What can go wrong with the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the metadata database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot bring the metadata database {url} up to date: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("metadata database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    /// A token that is unknown, revoked or expired (the words say which).
    #[error("{0}")]
    Unauthenticated(String),
}

/// The metadata database.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pool: AnyPool,
    /// The URL without its password, for messages.
    pub url: String,
}

/// The default database of a data directory.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("pz.sqlite").display())
}

/// `url` with any password replaced, so it can be shown.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl MetadataStore {
    /// Opens (creating if need be) the database at `url` (`sqlite://…` or `postgres://…`)
    /// and applies the migrations it lacks.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redacted(url);
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: shown.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                source,
            })?;
        Ok(MetadataStore { pool, url: shown })
    }

    /// The database of `data_dir` (created with the directory when missing), or the one
    /// `url` names.
    pub async fn open_for(data_dir: &Path, url: Option<&str>) -> Result<Self, StoreError> {
        match url {
            Some(u) => Self::open(u).await,
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Invalid(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                Self::open(&default_url(data_dir)).await
            }
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) async fn test_store() -> (tempfile::TempDir, MetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open_for(dir.path(), None).await.unwrap();
    (dir, store)
}
