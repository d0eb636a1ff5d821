//! The product store's data: the bytes of every product ([`storage`]), the formats they are
//! read in ([`formats`]), and the operations that keep bytes and records together
//! ([`ProductStore`]): uploads staged then committed, downloads, deletes, and the check
//! that compares every record with its bytes. [`tables`] makes published products SQL
//! tables for the caller who may see them.

pub mod check;
pub mod formats;
pub mod storage;
pub mod tables;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::store::{
    FileRole, MetadataStore, NewColumn, NewProductFile, Product, ProductColumn, ProductFile,
    Status, StoreError,
};
use formats::{Format, TableRead};
use storage::{ProductStorage, StagingWriter};

/// Records and bytes of products, kept together.
#[derive(Debug, Clone)]
pub struct ProductStore {
    pub meta: MetadataStore,
    pub storage: ProductStorage,
    /// Bytes of files one user's products may hold in all (no limit when `None`).
    pub quota_bytes: Option<u64>,
}

/// What an upload recorded.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub file: ProductFile,
    /// The columns registered, for a main file that is a table.
    pub columns: Vec<ProductColumn>,
}

/// The key SQL reads a product's table from, given its main file: the file itself when it
/// is Parquet, otherwise the Parquet copy made at upload.
pub fn table_key(product: &Product, main: &ProductFile) -> Option<String> {
    let format = Format::of_name(&main.name);
    if !format.is_table() || main.n_rows.is_none() {
        return None;
    }
    Some(match format {
        Format::Parquet => main.storage_key.clone(),
        _ => converted_table_key(&product.internal_name),
    })
}

/// Where the Parquet copy of a product whose main file is another format lives.
pub fn converted_table_key(internal_name: &str) -> String {
    format!("tables/{internal_name}.parquet")
}

impl ProductStore {
    /// The store over `meta` and `storage`, with staging debris of dead uploads removed.
    pub async fn open(meta: MetadataStore, storage: ProductStorage) -> Result<Self, StoreError> {
        storage.clean_staging().await?;
        Ok(ProductStore {
            meta,
            storage,
            quota_bytes: None,
        })
    }

    /// Streams `chunks` into file `name` of product `id`, for `caller`. The file becomes
    /// visible (recorded) only once it is whole and, for a main file in a table format,
    /// read as a table, whose columns are then registered. On any error nothing is
    /// recorded and the staged bytes are removed.
    pub async fn upload<S>(
        &self,
        caller: &str,
        id: i64,
        role: FileRole,
        name: &str,
        chunks: S,
    ) -> Result<Uploaded, StoreError>
    where
        S: Stream<Item = Result<Bytes, StoreError>> + Send + Unpin,
    {
        let product = self
            .meta
            .product_for_new_file(caller, id, role, name)
            .await?;
        let format = Format::of_name(name);
        let needs_table =
            role == FileRole::Main && !product.product_type.required_associations().is_empty();
        if needs_table && !format.is_table() {
            return Err(StoreError::Invalid(format!(
                "{name}: the main file of a {} must be a table (Parquet, CSV)",
                product.product_type
            )));
        }
        let allowance = match self.quota_bytes {
            Some(q) => {
                let used = self
                    .meta
                    .storage_used_by(&product.uploaded_by)
                    .await?
                    .max(0) as u64;
                Some((q, used))
            }
            None => None,
        };
        let folder = ProductStorage::staging_folder()?;
        let outcome = self
            .stage_and_commit(
                caller, &product, role, name, format, chunks, &folder, allowance,
            )
            .await;
        // Staging is emptied whatever happened: committed files have moved out of it.
        let _ = self.storage.remove_all(&folder).await;
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn stage_and_commit<S>(
        &self,
        caller: &str,
        product: &Product,
        role: FileRole,
        name: &str,
        format: Format,
        mut chunks: S,
        folder: &str,
        allowance: Option<(u64, u64)>,
    ) -> Result<Uploaded, StoreError>
    where
        S: Stream<Item = Result<Bytes, StoreError>> + Send + Unpin,
    {
        let staged_key = format!("{folder}/upload");
        let mut writer = self.storage.writer(&staged_key).await?;
        let streamed = stream_into(&mut writer, &mut chunks, allowance, name).await;
        if let Err(e) = streamed {
            writer.abort().await;
            return Err(e);
        }
        let staged = writer.finish().await?;
        let table: Option<TableRead> = if role == FileRole::Main && format.is_table() {
            Some(formats::read_table(&self.storage, &staged.key, name, format, folder).await?)
        } else {
            None
        };
        let final_key = ProductStorage::file_key(&product.internal_name, name);
        let converted_final = converted_table_key(&product.internal_name);
        self.storage.commit(&staged.key, &final_key).await?;
        if let Some(converted) = table.as_ref().and_then(|t| t.converted_key.as_ref()) {
            // A copy left by a main file removed earlier is replaced.
            self.storage.remove(&converted_final).await?;
            if let Err(e) = self.storage.commit(converted, &converted_final).await {
                let _ = self.storage.remove(&final_key).await;
                return Err(e);
            }
        }
        let columns: Option<Vec<NewColumn>> = table.as_ref().map(|t| {
            t.schema
                .fields()
                .iter()
                .map(|f| NewColumn {
                    name: f.name().clone(),
                    column_type: f.data_type().to_string(),
                })
                .collect()
        });
        let record = NewProductFile {
            role,
            name: name.to_string(),
            size_bytes: staged.size_bytes as i64,
            n_rows: table.as_ref().map(|t| t.n_rows as i64),
            media_type: format.media_type().to_string(),
            sha256: staged.sha256.clone(),
            storage_key: final_key.clone(),
        };
        let recorded = self
            .meta
            .add_product_file_with_columns(caller, product.id, &record, columns.as_deref())
            .await;
        match recorded {
            Ok(file) => {
                let columns = if columns.is_some() {
                    self.meta.product_columns(caller, product.id).await?
                } else {
                    Vec::new()
                };
                Ok(Uploaded { file, columns })
            }
            Err(e) => {
                let _ = self.storage.remove(&final_key).await;
                if table.as_ref().is_some_and(|t| t.converted_key.is_some()) {
                    let _ = self.storage.remove(&converted_final).await;
                }
                Err(e)
            }
        }
    }

    /// Removes file `name` of product `id` (before it is published), record then bytes.
    pub async fn remove_file(
        &self,
        caller: &str,
        id: i64,
        name: &str,
    ) -> Result<ProductFile, StoreError> {
        let product = self.meta.product(caller, id).await?;
        let file = self.meta.remove_product_file(caller, id, name).await?;
        self.storage.remove(&file.storage_key).await?;
        if file.role == FileRole::Main {
            self.storage
                .remove(&converted_table_key(&product.internal_name))
                .await?;
        }
        Ok(file)
    }

    /// Deletes product `id` softly: the record stays, DELETED; the bytes go.
    pub async fn delete(&self, caller: &str, id: i64) -> Result<Product, StoreError> {
        let (product, files) = self.meta.delete_product(caller, id).await?;
        for f in &files {
            self.storage.remove(&f.storage_key).await?;
        }
        self.storage
            .remove(&converted_table_key(&product.internal_name))
            .await?;
        Ok(product)
    }

    /// The file of product `id` a download gives (`name`, or the main file), if the caller
    /// may see the product; others' products only once published.
    pub async fn file_to_download(
        &self,
        caller: &str,
        id: i64,
        name: Option<&str>,
    ) -> Result<ProductFile, StoreError> {
        let product = self.meta.product(caller, id).await?;
        let mine = product.uploaded_by == caller || self.meta.is_admin(caller).await?;
        if product.status != Status::Published && !mine {
            return Err(StoreError::Invalid(format!(
                "product {id} is {}: only published products are downloaded by others than \
                 their owner",
                product.status
            )));
        }
        let files = self.meta.product_files(caller, id).await?;
        let file = match name {
            Some(n) => files.into_iter().find(|f| f.name == n),
            None => files.into_iter().find(|f| f.role == FileRole::Main),
        };
        file.ok_or_else(|| match name {
            Some(n) => StoreError::NotFound(format!("product {id} has no file '{n}'")),
            None => StoreError::NotFound(format!("product {id} has no main file")),
        })
    }
}

/// Copies `chunks` into `writer`, stopping at the quota.
async fn stream_into<S>(
    writer: &mut StagingWriter,
    chunks: &mut S,
    allowance: Option<(u64, u64)>,
    name: &str,
) -> Result<(), StoreError>
where
    S: Stream<Item = Result<Bytes, StoreError>> + Send + Unpin,
{
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if let Some((quota, used)) = allowance {
            if used + writer.bytes_written() + chunk.len() as u64 > quota {
                return Err(StoreError::Quota(format!(
                    "{name}: the upload would take this user's products past their storage \
                     quota of {quota} bytes ({used} used)"
                )));
            }
        }
        writer.write(&chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::add_people;
    use crate::store::{NewProduct, ProductType};

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, StoreError>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn uploads_are_read_recorded_checked_and_refused_whole() {
        let (dir, meta) = crate::store::test_store().await;
        add_people(&meta).await;
        let storage = ProductStorage::local(&dir.path().join("products")).unwrap();
        let store = ProductStore::open(meta.clone(), storage).await.unwrap();
        let p = meta
            .create_product(
                "ann",
                &NewProduct::new("Spec z", ProductType::RedshiftCatalog),
            )
            .await
            .unwrap();

        // A ragged row is refused naming its line; nothing is recorded or left behind.
        let e = store
            .upload(
                "ann",
                p.id,
                FileRole::Main,
                "z.csv",
                chunks(&[b"ra,dec,z\n1,2,0.5\n", b"3,4\n"]),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("z.csv: "), "{e}");
        assert!(e.to_string().contains("line"), "{e}");
        assert!(meta.product_files("ann", p.id).await.unwrap().is_empty());
        assert!(store.check(false).await.unwrap().is_clean());

        // Someone else's product takes no upload.
        let e = store
            .upload(
                "bob",
                p.id,
                FileRole::Main,
                "z.csv",
                chunks(&[b"ra,dec,z\n"]),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");

        // A CSV split anywhere, even mid-line, is one table; its columns are registered.
        let up = store
            .upload(
                "ann",
                p.id,
                FileRole::Main,
                "z.csv",
                chunks(&[
                    b"ra,dec,z\n10.5,-3.25,0.5\n11",
                    b".0,-4.0,1.25\n12.0,-5.0,2.0",
                ]),
            )
            .await
            .unwrap();
        assert_eq!(up.file.n_rows, Some(3));
        assert_eq!(up.file.size_bytes, 52);
        let names: Vec<_> = up.columns.iter().map(|c| c.column_name.as_str()).collect();
        assert_eq!(names, ["ra", "dec", "z"]);
        let report = store.check(false).await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.files_checked, 1);

        // A truncated Parquet file is refused.
        let q = meta
            .create_product(
                "ann",
                &NewProduct::new("Broken", ProductType::RedshiftCatalog),
            )
            .await
            .unwrap();
        let e = store
            .upload(
                "ann",
                q.id,
                FileRole::Main,
                "b.parquet",
                chunks(&[b"PAR1 not really"]),
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.parquet: not a readable Parquet file"),
            "{e}"
        );

        // Bytes no record names are orphans; the check finds and removes them.
        std::fs::write(dir.path().join("products/files/stray.bin"), b"x").unwrap();
        let report = store.check(true).await.unwrap();
        assert_eq!(report.orphans, ["files/stray.bin"]);
        assert_eq!(report.removed, 1);
        assert!(store.check(false).await.unwrap().is_clean());

        // A changed byte is a problem naming the product and file.
        let key = dir.path().join("products").join(&up.file.storage_key);
        let mut bytes = std::fs::read(&key).unwrap();
        bytes[0] = b'R';
        std::fs::write(&key, bytes).unwrap();
        let report = store.check(false).await.unwrap();
        assert_eq!(report.problems.len(), 1, "{report:?}");
        assert!(
            report.problems[0].contains("file 'z.csv': SHA-256"),
            "{report:?}"
        );

        // Deleting takes the bytes and the table copy.
        store.delete("ann", p.id).await.unwrap();
        assert!(store.storage.list("files").await.unwrap().is_empty());
        assert!(store.storage.list("tables").await.unwrap().is_empty());
    }
}
