//! pz's metadata database: users, groups and API tokens, and the product store's records
//! (releases, products, their files and columns).
//!
//! Embedded SQLite in the data directory by default (nothing to start), PostgreSQL when a
//! `postgres://` URL is given, through one code path: sqlx's `Any` driver, migrations from
//! `catalogs/migrations/`, and every statement in [`sql`].
//!
//! The product store's operations take the caller's user name and apply, in the store, who
//! may see and change what (one visibility rule, in [`sql`]), so no front end (Flight, CLI)
//! can forget a check.

pub mod product_contents;
pub mod product_files;
pub mod product_types;
pub mod products;
pub mod releases;
mod sql;
pub mod tokens;
pub mod users;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

pub use product_contents::{Association, NewColumn, ProductColumn};
pub use product_files::{FileRole, NewProductFile, ProductFile};
pub use product_types::ProductType;
pub use products::{
    NewProduct, Product, ProductFilter, ProductOrder, ProductOrderField, ProductPage, ProductQuery,
    ProductUpdate, Status,
};
pub use releases::{NewRelease, Release};
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
    /// A known caller asking for what only an owner or an admin may do (the words say
    /// who may). Never for what the caller may not see: that is `NotFound`.
    #[error("{0}")]
    PermissionDenied(String),
    /// The bytes of a product could not be stored or read (the words name the key).
    #[error("product storage: {0}")]
    Storage(String),
    /// A user's storage quota would be exceeded.
    #[error("{0}")]
    Quota(String),
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

pub fn now_unix() -> i64 {
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

/// What the store's tests share: a throwaway PostgreSQL database, and running one test body
/// on SQLite and on PostgreSQL, so both databases get every test through one code path.
#[cfg(test)]
pub(crate) mod testing {
    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures::FutureExt;
    use sqlx::Connection;

    use super::{now_unix, test_store, MetadataStore, User};

    /// Tells the databases of tests running at once in one process apart.
    static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

    /// A database of its own on the PostgreSQL server that PZ_TEST_POSTGRES_URL names (a
    /// role that may create databases; `.ci/run` starts Debian's PostgreSQL and sets it).
    pub(crate) struct PostgresDatabase {
        base: String,
        name: String,
        /// The URL of the new database.
        pub url: url::Url,
    }

    impl PostgresDatabase {
        pub(crate) async fn create() -> Self {
            let Ok(base) = std::env::var("PZ_TEST_POSTGRES_URL") else {
                panic!("PZ_TEST_POSTGRES_URL is not set: run .ci/run, which starts PostgreSQL for this test");
            };
            let name = format!(
                "pz_test_{}_{}_{}",
                std::process::id(),
                now_unix(),
                NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
            );
            let mut admin = sqlx::postgres::PgConnection::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
            let mut url = url::Url::parse(&base).unwrap();
            url.set_path(&name);
            PostgresDatabase { base, name, url }
        }

        /// Drops the database, closing whatever connections are still open on it.
        pub(crate) async fn drop_database(self) {
            let mut admin = sqlx::postgres::PgConnection::connect(&self.base)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }

    /// Runs `body` on a fresh SQLite store, then on a fresh PostgreSQL one (dropped
    /// afterwards, also when `body` panics); a failure says which database it was on.
    pub(crate) async fn on_sqlite_and_postgres<F, Fut>(body: F)
    where
        F: Fn(MetadataStore) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (_dir, sqlite) = test_store().await;
        if let Err(panic) = AssertUnwindSafe(body(sqlite)).catch_unwind().await {
            eprintln!("the test failed on SQLite");
            std::panic::resume_unwind(panic);
        }
        let database = PostgresDatabase::create().await;
        let postgres = MetadataStore::open(database.url.as_str()).await.unwrap();
        let outcome = AssertUnwindSafe(body(postgres)).catch_unwind().await;
        database.drop_database().await;
        if let Err(panic) = outcome {
            eprintln!("the test failed on PostgreSQL");
            std::panic::resume_unwind(panic);
        }
    }

    /// Two users in different groups and an admin: `ann` (group `desc`), `bob` (group
    /// `lsst`), `root` (admin, no group).
    pub(crate) async fn add_people(store: &MetadataStore) -> (User, User, User) {
        let ann = store
            .add_user("ann", false, &["desc".into()])
            .await
            .unwrap();
        let bob = store
            .add_user("bob", false, &["lsst".into()])
            .await
            .unwrap();
        let root = store.add_user("root", true, &[]).await.unwrap();
        (ann, bob, root)
    }
}
