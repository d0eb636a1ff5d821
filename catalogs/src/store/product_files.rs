//! The `pz_product_files` table: what is known of each file of a product (the bytes are
//! elsewhere, at `storage_key`), so a download can be checked and `pz product check` can
//! compare records with files.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::product_contents::{check_new_columns, replace_columns, NewColumn};
use super::products::{product_to_change, visible_product, Product, Status};
use super::{now_unix, sql, MetadataStore, StoreError};

/// What a file is to its product, as pzserver_app's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileRole {
    /// The data: the table, or the one file of a free-format product. At most one.
    Main,
    /// A document describing the product.
    Description,
    /// Anything else that goes with it.
    Auxiliary,
}

impl FileRole {
    pub const ALL: [FileRole; 3] = [FileRole::Main, FileRole::Description, FileRole::Auxiliary];

    pub fn name(self) -> &'static str {
        match self {
            FileRole::Main => "main",
            FileRole::Description => "description",
            FileRole::Auxiliary => "auxiliary",
        }
    }
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FileRole {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        FileRole::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown file role '{s}' (one of: main, description, auxiliary)"
                ))
            })
    }
}

/// A file of a product, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFile {
    pub product_id: i64,
    pub role: FileRole,
    /// The file's name as the uploader gave it (and a download gives it back).
    pub name: String,
    pub size_bytes: i64,
    /// Rows, for a table.
    pub n_rows: Option<i64>,
    pub media_type: String,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Where the bytes are: a path under the data directory or an object-store key.
    pub storage_key: String,
    pub created_unix: i64,
}

/// What a file is recorded from, once its bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProductFile {
    pub role: FileRole,
    pub name: String,
    pub size_bytes: i64,
    pub n_rows: Option<i64>,
    pub media_type: String,
    pub sha256: String,
    pub storage_key: String,
}

/// A file name as a download can give it back: no directories, nothing a shell or a file
/// system reads specially.
fn check_file_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "file name '{name}' must be 1-255 characters, without '/', '\\' or control characters"
        )))
    }
}

fn check_new_file(file: &NewProductFile) -> Result<(), StoreError> {
    check_file_name(&file.name)?;
    if file.size_bytes < 0 {
        return Err(StoreError::Invalid(format!(
            "size_bytes of '{}' must be 0 or more, not {}",
            file.name, file.size_bytes
        )));
    }
    if let Some(rows) = file.n_rows.filter(|r| *r < 0) {
        return Err(StoreError::Invalid(format!(
            "n_rows of '{}' must be 0 or more, not {rows}",
            file.name
        )));
    }
    let sha_ok = file.sha256.len() == 64
        && file
            .sha256
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    if !sha_ok {
        return Err(StoreError::Invalid(format!(
            "sha256 of '{}' must be 64 lower-case hex digits, not '{}'",
            file.name, file.sha256
        )));
    }
    if file.media_type.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "media_type of '{}' must not be empty",
            file.name
        )));
    }
    if file.storage_key.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "storage_key of '{}' must not be empty",
            file.name
        )));
    }
    Ok(())
}

/// Whether a file `name` of `role` may be added to `product`, which has `existing` files:
/// only before it is published, under a new name, and one main file.
fn check_addable(
    product: &Product,
    existing: &[ProductFile],
    role: FileRole,
    name: &str,
) -> Result<(), StoreError> {
    let id = product.id;
    if !matches!(product.status, Status::Registering | Status::Processing) {
        return Err(StoreError::Invalid(format!(
            "product {id} is {}: files are added only while it is REGISTERING or PROCESSING",
            product.status
        )));
    }
    if existing.iter().any(|f| f.name == name) {
        return Err(StoreError::Exists(format!(
            "product {id} already has a file '{name}'"
        )));
    }
    if role == FileRole::Main {
        if let Some(main) = existing.iter().find(|f| f.role == FileRole::Main) {
            return Err(StoreError::Exists(format!(
                "product {id} already has a main file ('{}'); remove it first",
                main.name
            )));
        }
    }
    Ok(())
}

fn file_of_row(row: &AnyRow) -> Result<ProductFile, StoreError> {
    let role: String = row.try_get(1)?;
    Ok(ProductFile {
        product_id: row.try_get(0)?,
        role: role.parse()?,
        name: row.try_get(2)?,
        size_bytes: row.try_get(3)?,
        n_rows: row.try_get(4)?,
        media_type: row.try_get(5)?,
        sha256: row.try_get(6)?,
        storage_key: row.try_get(7)?,
        created_unix: row.try_get(8)?,
    })
}

/// The files of product `id`, the main file first (no visibility check: callers have
/// made it).
pub(super) async fn files_of(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Vec<ProductFile>, StoreError> {
    sqlx::query(sql::SELECT_PRODUCT_FILES)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(file_of_row)
        .collect()
}

impl MetadataStore {
    /// Records a file of product `id`, whose bytes are already at `storage_key`. Only the
    /// owner or an admin, and only before the product is published: a published product's
    /// data does not change under its readers.
    pub async fn add_product_file(
        &self,
        caller: &str,
        id: i64,
        file: &NewProductFile,
    ) -> Result<ProductFile, StoreError> {
        self.add_product_file_with_columns(caller, id, file, None)
            .await
    }

    /// Records a file of product `id` and, for a main file that is a table, its columns
    /// (replacing those recorded before), in one transaction: both or neither.
    pub async fn add_product_file_with_columns(
        &self,
        caller: &str,
        id: i64,
        file: &NewProductFile,
        columns: Option<&[NewColumn]>,
    ) -> Result<ProductFile, StoreError> {
        let user = self.acting_user(caller).await?;
        check_new_file(file)?;
        if let Some(columns) = columns {
            check_new_columns(columns)?;
        }
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "add files to it").await?;
        let existing = files_of(&mut tx, id).await?;
        check_addable(&product, &existing, file.role, &file.name)?;
        let key_taken = sqlx::query(sql::SELECT_STORAGE_KEY)
            .bind(file.storage_key.clone())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if key_taken {
            return Err(StoreError::Exists(format!(
                "storage_key '{}' is another file's",
                file.storage_key
            )));
        }
        let recorded = ProductFile {
            product_id: id,
            role: file.role,
            name: file.name.clone(),
            size_bytes: file.size_bytes,
            n_rows: file.n_rows,
            media_type: file.media_type.clone(),
            sha256: file.sha256.clone(),
            storage_key: file.storage_key.clone(),
            created_unix: now_unix(),
        };
        sqlx::query(sql::INSERT_PRODUCT_FILE)
            .bind(recorded.product_id)
            .bind(recorded.role.name().to_string())
            .bind(recorded.name.clone())
            .bind(recorded.size_bytes)
            .bind(recorded.n_rows)
            .bind(recorded.media_type.clone())
            .bind(recorded.sha256.clone())
            .bind(recorded.storage_key.clone())
            .bind(recorded.created_unix)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::TOUCH_PRODUCT)
            .bind(id)
            .bind(recorded.created_unix)
            .execute(&mut *tx)
            .await?;
        if let Some(columns) = columns {
            replace_columns(&mut tx, id, columns).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Product `id` if `caller` may add file `name` of `role` to it now: the check an
    /// upload makes before its bytes flow (made again when the file is recorded).
    pub async fn product_for_new_file(
        &self,
        caller: &str,
        id: i64,
        role: FileRole,
        name: &str,
    ) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut conn = self.pool().acquire().await?;
        let product = product_to_change(&mut conn, &user, id, "add files to it").await?;
        let existing = files_of(&mut conn, id).await?;
        check_addable(&product, &existing, role, name)?;
        Ok(product)
    }

    /// The size of every file of the products `user` uploaded (for the storage quota).
    pub async fn storage_used_by(&self, user: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(sql::SELECT_STORAGE_USED_BY)
            .bind(user.to_string())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every file record with its product's internal name, for the store's check (an
    /// operator's view: no caller, nothing hidden).
    pub async fn all_product_files(&self) -> Result<Vec<(String, ProductFile)>, StoreError> {
        let rows = sqlx::query(sql::SELECT_ALL_PRODUCT_FILES)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(9)?, file_of_row(row)?)))
            .collect()
    }

    /// The files of product `id`, the main file first, if the caller may see it.
    pub async fn product_files(
        &self,
        caller: &str,
        id: i64,
    ) -> Result<Vec<ProductFile>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        visible_product(&mut conn, caller, id).await?;
        files_of(&mut conn, id).await
    }

    /// Forgets file `name` of product `id` (before it is published, as adding), returning
    /// its record so the caller removes its bytes.
    pub async fn remove_product_file(
        &self,
        caller: &str,
        id: i64,
        name: &str,
    ) -> Result<ProductFile, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "remove its files").await?;
        if !matches!(product.status, Status::Registering | Status::Processing) {
            return Err(StoreError::Invalid(format!(
                "product {id} is {}: files are removed only while it is REGISTERING or PROCESSING",
                product.status
            )));
        }
        let file = files_of(&mut tx, id)
            .await?
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("product {id} has no file '{name}'")))?;
        sqlx::query(sql::DELETE_PRODUCT_FILE)
            .bind(id)
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::TOUCH_PRODUCT)
            .bind(id)
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_people, on_sqlite_and_postgres};
    use super::super::{NewProduct, ProductType};
    use super::*;

    fn file(role: FileRole, name: &str) -> NewProductFile {
        NewProductFile {
            role,
            name: name.to_string(),
            size_bytes: 1234,
            n_rows: None,
            media_type: "text/csv".into(),
            sha256: "0123456789abcdef".repeat(4),
            storage_key: format!("products/7_x/{name}"),
        }
    }

    #[tokio::test]
    async fn files_are_recorded_checked_and_seen_as_their_product() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let p = store
                .create_product("ann", &NewProduct::new("Files", ProductType::Other))
                .await
                .unwrap();
            let mut main = file(FileRole::Main, "objects.csv");
            main.n_rows = Some(1_000_000);
            let recorded = store.add_product_file("ann", p.id, &main).await.unwrap();
            assert_eq!(
                (recorded.role, recorded.n_rows, recorded.size_bytes),
                (FileRole::Main, Some(1_000_000), 1234)
            );
            store
                .add_product_file("root", p.id, &file(FileRole::Auxiliary, "a.txt"))
                .await
                .unwrap();
            store
                .add_product_file("ann", p.id, &file(FileRole::Description, "about.pdf"))
                .await
                .unwrap();
            let names = |files: Vec<ProductFile>| {
                files
                    .into_iter()
                    .map(|f| (f.role, f.name))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                names(store.product_files("bob", p.id).await.unwrap()),
                vec![
                    (FileRole::Main, "objects.csv".to_string()),
                    (FileRole::Description, "about.pdf".to_string()),
                    (FileRole::Auxiliary, "a.txt".to_string()),
                ]
            );

            // Only the owner or an admin; one main file; one name; one storage key.
            let e = store
                .add_product_file("bob", p.id, &file(FileRole::Auxiliary, "b.txt"))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "only the owner of product {} (ann) or an admin may add files to it",
                    p.id
                )
            );
            let e = store
                .add_product_file("ann", p.id, &file(FileRole::Main, "other.csv"))
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "product {} already has a main file ('objects.csv'); remove it first",
                    p.id
                )
            );
            let e = store
                .add_product_file("ann", p.id, &file(FileRole::Auxiliary, "a.txt"))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Exists(_)), "{e}");
            let mut same_key = file(FileRole::Auxiliary, "c.txt");
            same_key.storage_key = "products/7_x/a.txt".into();
            let e = store
                .add_product_file("ann", p.id, &same_key)
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "storage_key 'products/7_x/a.txt' is another file's"
            );

            // Bad records are refused, naming the field.
            let mut bad = file(FileRole::Auxiliary, "../etc/passwd");
            let e = store.add_product_file("ann", p.id, &bad).await.unwrap_err();
            assert!(
                e.to_string().starts_with("file name '../etc/passwd'"),
                "{e}"
            );
            bad = file(FileRole::Auxiliary, "x");
            bad.sha256 = "ABC".into();
            let e = store.add_product_file("ann", p.id, &bad).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                "sha256 of 'x' must be 64 lower-case hex digits, not 'ABC'"
            );
            bad = file(FileRole::Auxiliary, "x");
            bad.size_bytes = -1;
            let e = store.add_product_file("ann", p.id, &bad).await.unwrap_err();
            assert_eq!(e.to_string(), "size_bytes of 'x' must be 0 or more, not -1");
            bad = file(FileRole::Auxiliary, "x");
            bad.n_rows = Some(-5);
            let e = store.add_product_file("ann", p.id, &bad).await.unwrap_err();
            assert_eq!(e.to_string(), "n_rows of 'x' must be 0 or more, not -5");
            let e = "readme".parse::<FileRole>().unwrap_err();
            assert_eq!(
                e.to_string(),
                "unknown file role 'readme' (one of: main, description, auxiliary)"
            );

            // Removing gives the record back; the main file may then be replaced.
            let removed = store
                .remove_product_file("ann", p.id, "objects.csv")
                .await
                .unwrap();
            assert_eq!(removed.storage_key, "products/7_x/objects.csv");
            let e = store
                .remove_product_file("ann", p.id, "objects.csv")
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("product {} has no file 'objects.csv'", p.id)
            );
            store
                .add_product_file("ann", p.id, &file(FileRole::Main, "objects.parquet"))
                .await
                .unwrap();

            // A published product's files stay as they are.
            store.publish_product("ann", p.id).await.unwrap();
            let e = store
                .add_product_file("ann", p.id, &file(FileRole::Auxiliary, "late.txt"))
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "product {} is PUBLISHED: files are added only while it is REGISTERING or \
                     PROCESSING",
                    p.id
                )
            );
            assert!(store
                .remove_product_file("ann", p.id, "a.txt")
                .await
                .is_err());

            // The files of a product one may not see are not there either.
            store
                .create_release(
                    "root",
                    &super::super::NewRelease {
                        access_groups: vec!["desc".into()],
                        ..super::super::NewRelease::new("priv", "Private")
                    },
                )
                .await
                .unwrap();
            let mut hidden = NewProduct::new("Hidden", ProductType::Other);
            hidden.release = Some("priv".into());
            let hidden = store.create_product("ann", &hidden).await.unwrap();
            let e = store.product_files("bob", hidden.id).await.unwrap_err();
            assert_eq!(e.to_string(), format!("no product {}", hidden.id));
            let e = store
                .add_product_file("bob", hidden.id, &file(FileRole::Main, "m.csv"))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        })
        .await;
    }
}
