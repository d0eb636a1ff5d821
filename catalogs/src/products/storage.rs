//! Where the bytes of products live: an [`ObjectStore`] (by default the `products/`
//! directory of the data directory), written through a staging area so that nothing a
//! reader can name is ever partly written.
//!
//! An upload streams into `staging/<upload>/…`, hashing as it goes; only once it is whole
//! and checked is it renamed to `files/<internal name>/<file name>` and recorded in the
//! metadata database. A process killed before the rename leaves staging debris, removed
//! the next time the store opens; one killed between the rename and the record leaves an
//! orphan, which `pz product check` lists and removes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use sha2::{Digest, Sha256};
use url::Url;

use crate::store::StoreError;

/// Top folder of committed files.
pub const FILES: &str = "files";
/// Top folder of uploads in progress.
pub const STAGING: &str = "staging";
/// Staging debris older than this is a dead upload's (a live one writes continuously).
pub const STAGING_MAX_IDLE: Duration = Duration::from_secs(3600);

/// The product store's object store and the URL DataFusion reads it by.
#[derive(Debug, Clone)]
pub struct ProductStorage {
    store: Arc<dyn ObjectStore>,
    /// `file:///…/products/` for the default; ends with `/`.
    base_url: Url,
}

/// A file written to staging, whole, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    pub key: String,
    pub size_bytes: u64,
    pub sha256: String,
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(format!("{what}: {e}"))
}

impl ProductStorage {
    /// The default: a directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| storage_error(&format!("cannot create {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| storage_error(&format!("cannot resolve {}", dir.display()), e))?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| storage_error(&format!("cannot open {}", dir.display()), e))?;
        let mut base_url = Url::from_directory_path(&dir).map_err(|_| {
            StoreError::Storage(format!("{} is not an absolute path", dir.display()))
        })?;
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(ProductStorage {
            store: Arc::new(store),
            base_url,
        })
    }

    /// Any object store, read by DataFusion at `base_url` (which the session's runtime must
    /// know the store by).
    pub fn new(store: Arc<dyn ObjectStore>, base_url: Url) -> Self {
        ProductStorage { store, base_url }
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL of `key`, as a listing table reads it.
    pub fn url_of(&self, key: &str) -> Result<Url, StoreError> {
        self.base_url
            .join(key)
            .map_err(|e| storage_error(&format!("key '{key}'"), e))
    }

    /// The URL the store is known by (scheme and authority) and the path prefix of keys.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Where the committed file `file_name` of product `internal_name` goes.
    pub fn file_key(internal_name: &str, file_name: &str) -> String {
        format!("{FILES}/{internal_name}/{file_name}")
    }

    /// A fresh staging folder for one upload.
    pub fn staging_folder() -> Result<String, StoreError> {
        let mut raw = [0u8; 12];
        getrandom::fill(&mut raw).map_err(|e| storage_error("no randomness", e))?;
        Ok(format!("{STAGING}/{}", hex::encode(raw)))
    }

    /// Starts writing `key` (in staging).
    pub async fn writer(&self, key: &str) -> Result<StagingWriter, StoreError> {
        let path = StorePath::from(key);
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| storage_error(&format!("cannot write {key}"), e))?;
        Ok(StagingWriter {
            key: key.to_string(),
            inner: Some(WriteMultipart::new(upload)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Moves a staged file to where it is read from, refusing to replace a file.
    pub async fn commit(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.store
            .rename_if_not_exists(&StorePath::from(from), &StorePath::from(to))
            .await
            .map_err(|e| storage_error(&format!("cannot move {from} to {to}"), e))
    }

    /// Removes `key`; a key already gone is not an error (removal is retried after crashes).
    pub async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(&format!("cannot remove {key}"), e)),
        }
    }

    /// Removes every object under `prefix`.
    pub async fn remove_all(&self, prefix: &str) -> Result<u64, StoreError> {
        let keys: Vec<String> = self
            .list(prefix)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        for k in &keys {
            self.remove(k).await?;
        }
        Ok(keys.len() as u64)
    }

    /// The bytes of `key`, streamed.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let got = self
            .store
            .get(&StorePath::from(key))
            .await
            .map_err(|e| storage_error(&format!("cannot read {key}"), e))?;
        let key = key.to_string();
        Ok(got
            .into_stream()
            .map_err(move |e| storage_error(&format!("cannot read {key}"), e))
            .boxed())
    }

    /// Size and SHA-256 of `key`, read through.
    pub async fn digest(&self, key: &str) -> Result<(u64, String), StoreError> {
        let mut stream = self.read(key).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Every object under `prefix`, with its size and age.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let path = StorePath::from(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| storage_error(&format!("cannot list {prefix}"), e))?;
        Ok(metas
            .into_iter()
            .map(|m| StoredObject {
                key: m.location.to_string(),
                size_bytes: m.size,
                idle: (chrono_now() - m.last_modified.timestamp()).max(0) as u64,
            })
            .collect())
    }

    /// Removes staging debris of dead uploads (idle longer than [`STAGING_MAX_IDLE`]),
    /// returning how many objects went.
    pub async fn clean_staging(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        for o in self.list(STAGING).await? {
            if o.idle >= STAGING_MAX_IDLE.as_secs() {
                self.remove(&o.key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A stored Parquet file as the Parquet reader reads it: ranges fetched from the object
/// store as the reader asks for them, so no file is read whole into memory.
pub struct StoredParquet {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    size: u64,
}

impl ProductStorage {
    /// `key` opened for the Parquet reader.
    pub async fn parquet_reader(&self, key: &str) -> Result<StoredParquet, StoreError> {
        let path = StorePath::from(key);
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| storage_error(&format!("cannot read {key}"), e))?;
        Ok(StoredParquet {
            store: Arc::clone(&self.store),
            path,
            size: meta.size,
        })
    }

    /// A writer of `key` that the Parquet writer writes through, in parts.
    pub fn buffered_writer(&self, key: &str) -> object_store::buffered::BufWriter {
        object_store::buffered::BufWriter::new(Arc::clone(&self.store), StorePath::from(key))
    }
}

fn parquet_error(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoredParquet {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(parquet_error)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(parquet_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

fn chrono_now() -> i64 {
    crate::store::now_unix()
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size_bytes: u64,
    /// Seconds since it was last written.
    pub idle: u64,
}

/// Writes one staged file, hashing and counting what goes through.
pub struct StagingWriter {
    key: String,
    inner: Option<WriteMultipart>,
    hasher: Sha256,
    size: u64,
}

impl StagingWriter {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    /// Appends `data`, waiting while too many parts are in flight so memory stays flat.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(StoreError::Storage(format!(
                "{} is already finished",
                self.key
            )));
        };
        inner
            .wait_for_capacity(4)
            .await
            .map_err(|e| storage_error(&format!("cannot write {}", self.key), e))?;
        inner.write(data);
        self.hasher.update(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Completes the file.
    pub async fn finish(mut self) -> Result<StagedFile, StoreError> {
        let Some(inner) = self.inner.take() else {
            return Err(StoreError::Storage(format!(
                "{} is already finished",
                self.key
            )));
        };
        inner
            .finish()
            .await
            .map_err(|e| storage_error(&format!("cannot complete {}", self.key), e))?;
        Ok(StagedFile {
            key: self.key.clone(),
            size_bytes: self.size,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        })
    }

    /// Gives up the file (its parts are removed).
    pub async fn abort(mut self) {
        if let Some(inner) = self.inner.take() {
            let _ = inner.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn staged_files_are_hashed_committed_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = ProductStorage::local(&dir.path().join("products")).unwrap();
        let folder = ProductStorage::staging_folder().unwrap();
        let mut w = storage.writer(&format!("{folder}/a.csv")).await.unwrap();
        w.write(b"id,z\n").await.unwrap();
        w.write(b"1,0.5\n").await.unwrap();
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.size_bytes, 11);
        assert_eq!(staged.sha256, hex::encode(Sha256::digest(b"id,z\n1,0.5\n")));
        let key = ProductStorage::file_key("1_x", "a.csv");
        storage.commit(&staged.key, &key).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("products/files/1_x/a.csv")).unwrap(),
            b"id,z\n1,0.5\n"
        );
        assert_eq!(storage.digest(&key).await.unwrap(), (11, staged.sha256));
        // A second commit onto the same key is refused, not a silent replacement.
        let mut w = storage.writer(&format!("{folder}/b.csv")).await.unwrap();
        w.write(b"x").await.unwrap();
        let b = w.finish().await.unwrap();
        assert!(storage.commit(&b.key, &key).await.is_err());
        assert_eq!(storage.list(STAGING).await.unwrap().len(), 1);
        // Fresh staging is a live upload's and stays.
        assert_eq!(storage.clean_staging().await.unwrap(), 0);
        assert_eq!(storage.remove_all(STAGING).await.unwrap(), 1);
        storage.remove(&key).await.unwrap();
        storage.remove(&key).await.unwrap();
        assert!(storage.list(FILES).await.unwrap().is_empty());
        assert!(storage
            .url_of(&key)
            .unwrap()
            .as_str()
            .ends_with("/products/files/1_x/a.csv"));
    }
}
