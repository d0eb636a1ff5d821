//! The `pz_product_contents` table: the columns of a product's main file (name, type,
//! order) and what each one is, its association: one of the standard ones, which carry a
//! UCD and a standard column name (what `products_std` renames the column to), or a free
//! alias.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::products::{product_to_change, visible_product, Status};
use super::{now_unix, sql, MetadataStore, StoreError};

/// What a column is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Association {
    Id,
    Ra,
    Dec,
    Z,
    ZErr,
    ZFlag,
    Survey,
    /// A name of the uploader's choosing, with no UCD.
    Alias(String),
}

impl Association {
    /// The standard associations, in pzserver's order.
    pub const STANDARD: [Association; 7] = [
        Association::Id,
        Association::Ra,
        Association::Dec,
        Association::Z,
        Association::ZErr,
        Association::ZFlag,
        Association::Survey,
    ];

    /// The association's name, as pzserver writes it (`ID`, `RA`, `Dec`, `z`, …) or the
    /// alias itself.
    pub fn name(&self) -> &str {
        match self {
            Association::Id => "ID",
            Association::Ra => "RA",
            Association::Dec => "Dec",
            Association::Z => "z",
            Association::ZErr => "z_err",
            Association::ZFlag => "z_flag",
            Association::Survey => "survey",
            Association::Alias(alias) => alias,
        }
    }

    /// The IVOA UCD of a standard association.
    pub fn ucd(&self) -> Option<&'static str> {
        match self {
            Association::Id => Some("meta.id;meta.main"),
            Association::Ra => Some("pos.eq.ra;meta.main"),
            Association::Dec => Some("pos.eq.dec;meta.main"),
            Association::Z => Some("src.redshift"),
            Association::ZErr => Some("stat.error;src.redshift"),
            Association::ZFlag => Some("stat.rank"),
            Association::Survey => Some("meta.curation"),
            Association::Alias(_) => None,
        }
    }

    /// The name a standard association's column has in `products_std`, the same for every
    /// product, so one query reads redshift catalogs of different surveys.
    pub fn standard_column(&self) -> Option<&'static str> {
        match self {
            Association::Id => Some("id"),
            Association::Ra => Some("ra"),
            Association::Dec => Some("dec"),
            Association::Z => Some("z"),
            Association::ZErr => Some("z_err"),
            Association::ZFlag => Some("z_flag"),
            Association::Survey => Some("survey"),
            Association::Alias(_) => None,
        }
    }
}

impl fmt::Display for Association {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Association {
    type Err = StoreError;

    /// A standard association by its name or its standard column name, in any case (so
    /// `ra`, `RA` and `Ra` are all RA, and no alias looks like a standard name); anything
    /// else is an alias, which must be 1-64 letters, digits or `_`, as a column name.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let t = s.trim();
        if let Some(a) = Association::STANDARD
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(t))
        {
            return Ok(a);
        }
        let alias_ok = !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if alias_ok {
            Ok(Association::Alias(t.to_string()))
        } else {
            Err(StoreError::Invalid(format!(
                "association '{s}' is none of ID, RA, Dec, z, z_err, z_flag, survey, and a free \
                 alias must be 1-64 letters, digits or '_'"
            )))
        }
    }
}

/// A column of a product's main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductColumn {
    pub product_id: i64,
    pub column_name: String,
    /// The column's type as the registry read it (an Arrow type, e.g. `Float64`).
    pub column_type: String,
    /// 0 for the first column of the file.
    pub column_order: i64,
    pub association: Option<Association>,
    /// The association's UCD, if it has one.
    pub ucd: Option<String>,
}

/// A column as the registry reads it from the main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewColumn {
    pub name: String,
    pub column_type: String,
}

fn column_of_row(row: &AnyRow) -> Result<ProductColumn, StoreError> {
    let association: Option<String> = row.try_get(4)?;
    Ok(ProductColumn {
        product_id: row.try_get(0)?,
        column_name: row.try_get(1)?,
        column_type: row.try_get(2)?,
        column_order: row.try_get(3)?,
        association: association.map(|a| a.parse()).transpose()?,
        ucd: row.try_get(5)?,
    })
}

/// The columns of product `id`, in file order (no visibility check: callers have made it).
pub(super) async fn columns_of(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Vec<ProductColumn>, StoreError> {
    sqlx::query(sql::SELECT_PRODUCT_CONTENTS)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(column_of_row)
        .collect()
}

/// Refuses a column list the registry cannot record, naming the column.
pub(super) fn check_new_columns(columns: &[NewColumn]) -> Result<(), StoreError> {
    for (i, c) in columns.iter().enumerate() {
        if c.name.is_empty() || c.name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "column {i} has an empty name or one with control characters"
            )));
        }
        if columns[..i].iter().any(|d| d.name == c.name) {
            return Err(StoreError::Invalid(format!(
                "column name '{}' appears twice",
                c.name
            )));
        }
        if c.column_type.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "column '{}' has no column_type",
                c.name
            )));
        }
    }
    Ok(())
}

/// Replaces the recorded columns of product `id` (and their associations) by `columns`.
pub(super) async fn replace_columns(
    conn: &mut AnyConnection,
    id: i64,
    columns: &[NewColumn],
) -> Result<(), StoreError> {
    sqlx::query(sql::DELETE_PRODUCT_CONTENTS)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (order, c) in columns.iter().enumerate() {
        sqlx::query(sql::INSERT_PRODUCT_CONTENT)
            .bind(id)
            .bind(c.name.clone())
            .bind(c.column_type.clone())
            .bind(order as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl MetadataStore {
    /// Records the columns of product `id`'s main file, in file order, replacing any
    /// recorded before (and their associations): the registry, run on each upload of the
    /// main file. Only the owner or an admin, and only before the product is published.
    pub async fn set_product_columns(
        &self,
        caller: &str,
        id: i64,
        columns: &[NewColumn],
    ) -> Result<Vec<ProductColumn>, StoreError> {
        let user = self.acting_user(caller).await?;
        check_new_columns(columns)?;
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "register its columns").await?;
        if !matches!(product.status, Status::Registering | Status::Processing) {
            return Err(StoreError::Invalid(format!(
                "product {id} is {}: its columns are registered only while it is REGISTERING or \
                 PROCESSING",
                product.status
            )));
        }
        replace_columns(&mut tx, id, columns).await?;
        sqlx::query(sql::TOUCH_PRODUCT)
            .bind(id)
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        let out = columns_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The columns of product `id`, in file order, if the caller may see it.
    pub async fn product_columns(
        &self,
        caller: &str,
        id: i64,
    ) -> Result<Vec<ProductColumn>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        visible_product(&mut conn, caller, id).await?;
        columns_of(&mut conn, id).await
    }

    /// Sets (or, with `None`, clears) the association of one column; see
    /// [`MetadataStore::set_column_associations`].
    pub async fn set_column_association(
        &self,
        caller: &str,
        id: i64,
        column: &str,
        association: Option<Association>,
    ) -> Result<ProductColumn, StoreError> {
        let columns = self
            .set_column_associations(caller, id, &[(column.to_string(), association)])
            .await?;
        columns
            .into_iter()
            .find(|c| c.column_name == column)
            .ok_or_else(|| StoreError::NotFound(format!("product {id} has no column '{column}'")))
    }

    /// Sets the associations of some columns of product `id` at once, returning every
    /// column. Only the owner or an admin. An association names one column of a product,
    /// so setting it on a column takes it from the column that had it. A published
    /// product keeps the associations its type needs: a change that would drop one is
    /// refused, naming it.
    pub async fn set_column_associations(
        &self,
        caller: &str,
        id: i64,
        associations: &[(String, Option<Association>)],
    ) -> Result<Vec<ProductColumn>, StoreError> {
        let user = self.acting_user(caller).await?;
        for (i, (column, association)) in associations.iter().enumerate() {
            if let Some(a) = association {
                if let Some((other, _)) = associations[..i]
                    .iter()
                    .find(|(_, b)| b.as_ref() == Some(a))
                {
                    return Err(StoreError::Invalid(format!(
                        "association {a} is given to both '{other}' and '{column}'"
                    )));
                }
            }
        }
        let mut tx = self.pool().begin().await?;
        let product =
            product_to_change(&mut tx, &user, id, "change its column associations").await?;
        let before = columns_of(&mut tx, id).await?;
        for (column, association) in associations {
            if !before.iter().any(|c| &c.column_name == column) {
                return Err(StoreError::NotFound(format!(
                    "product {id} has no column '{column}'"
                )));
            }
            if let Some(a) = association {
                sqlx::query(sql::CLEAR_ASSOCIATION)
                    .bind(id)
                    .bind(a.name().to_string())
                    .bind(column.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(sql::SET_ASSOCIATION)
                .bind(id)
                .bind(column.clone())
                .bind(association.as_ref().map(|a| a.name().to_string()))
                .bind(
                    association
                        .as_ref()
                        .and_then(|a| a.ucd())
                        .map(str::to_string),
                )
                .execute(&mut *tx)
                .await?;
        }
        let after = columns_of(&mut tx, id).await?;
        if product.status == Status::Published {
            let missing: Vec<&str> = product
                .product_type
                .required_associations()
                .iter()
                .filter(|a| !after.iter().any(|c| c.association.as_ref() == Some(*a)))
                .map(|a| a.name())
                .collect();
            if !missing.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "product {id} is published as a {}, which needs columns associated with {}: \
                     this change would leave none for {}",
                    product.product_type,
                    product
                        .product_type
                        .required_associations()
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    missing.join(", ")
                )));
            }
        }
        sqlx::query(sql::TOUCH_PRODUCT)
            .bind(id)
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_people, on_sqlite_and_postgres};
    use super::super::{FileRole, NewProduct, NewProductFile, ProductType};
    use super::*;

    #[test]
    fn associations_have_their_ucds_and_standard_names() {
        let expected = [
            ("ID", "meta.id;meta.main", "id"),
            ("RA", "pos.eq.ra;meta.main", "ra"),
            ("Dec", "pos.eq.dec;meta.main", "dec"),
            ("z", "src.redshift", "z"),
            ("z_err", "stat.error;src.redshift", "z_err"),
            ("z_flag", "stat.rank", "z_flag"),
            ("survey", "meta.curation", "survey"),
        ];
        for (a, (name, ucd, column)) in Association::STANDARD.iter().zip(expected) {
            assert_eq!(
                (a.name(), a.ucd(), a.standard_column()),
                (name, Some(ucd), Some(column))
            );
            assert_eq!(&name.parse::<Association>().unwrap(), a);
            assert_eq!(&name.to_uppercase().parse::<Association>().unwrap(), a);
            assert_eq!(&column.parse::<Association>().unwrap(), a);
        }
        let alias: Association = "mag_g".parse().unwrap();
        assert_eq!(alias, Association::Alias("mag_g".into()));
        assert_eq!((alias.ucd(), alias.standard_column()), (None, None));
        assert_eq!(alias.to_string(), "mag_g");
        let e = "mag g!".parse::<Association>().unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)));
        assert_eq!(
            e.to_string(),
            "association 'mag g!' is none of ID, RA, Dec, z, z_err, z_flag, survey, and a free \
             alias must be 1-64 letters, digits or '_'"
        );
    }

    fn cols(names: &[&str]) -> Vec<NewColumn> {
        names
            .iter()
            .map(|n| NewColumn {
                name: n.to_string(),
                column_type: "Float64".into(),
            })
            .collect()
    }

    fn assoc(columns: &[ProductColumn]) -> Vec<(String, Option<String>, Option<String>)> {
        columns
            .iter()
            .map(|c| {
                (
                    c.column_name.clone(),
                    c.association.as_ref().map(|a| a.to_string()),
                    c.ucd.clone(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn columns_are_registered_and_associated_by_the_owner_or_an_admin() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let p = store
                .create_product(
                    "ann",
                    &NewProduct::new("specz", ProductType::RedshiftCatalog),
                )
                .await
                .unwrap();
            let registered = store
                .set_product_columns(
                    "ann",
                    p.id,
                    &cols(&["objid", "ra_j2000", "dec_j2000", "zspec", "mag_g"]),
                )
                .await
                .unwrap();
            assert_eq!(
                registered
                    .iter()
                    .map(|c| (c.column_order, c.column_name.as_str()))
                    .collect::<Vec<_>>(),
                vec![
                    (0, "objid"),
                    (1, "ra_j2000"),
                    (2, "dec_j2000"),
                    (3, "zspec"),
                    (4, "mag_g")
                ]
            );
            assert!(registered
                .iter()
                .all(|c| c.association.is_none() && c.ucd.is_none()));

            let c = store
                .set_column_association("ann", p.id, "ra_j2000", Some(Association::Ra))
                .await
                .unwrap();
            assert_eq!(c.ucd.as_deref(), Some("pos.eq.ra;meta.main"));
            let all = store
                .set_column_associations(
                    "root",
                    p.id,
                    &[
                        ("dec_j2000".into(), Some(Association::Dec)),
                        ("zspec".into(), Some("z".parse().unwrap())),
                        ("mag_g".into(), Some("g".parse().unwrap())),
                        ("objid".into(), Some(Association::Id)),
                    ],
                )
                .await
                .unwrap();
            let s = |x: &str| Some(x.to_string());
            assert_eq!(
                assoc(&all),
                vec![
                    ("objid".into(), s("ID"), s("meta.id;meta.main")),
                    ("ra_j2000".into(), s("RA"), s("pos.eq.ra;meta.main")),
                    ("dec_j2000".into(), s("Dec"), s("pos.eq.dec;meta.main")),
                    ("zspec".into(), s("z"), s("src.redshift")),
                    ("mag_g".into(), s("g"), None),
                ]
            );
            assert_eq!(
                assoc(&store.product_columns("bob", p.id).await.unwrap()),
                assoc(&all)
            );

            // Others may not; a column that is not there is named.
            let e = store
                .set_column_association("bob", p.id, "zspec", None)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "only the owner of product {} (ann) or an admin may change its column \
                     associations",
                    p.id
                )
            );
            let e = store
                .set_column_association("ann", p.id, "zphot", Some(Association::Z))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::NotFound(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!("product {} has no column 'zphot'", p.id)
            );
            let e = store
                .set_column_associations(
                    "ann",
                    p.id,
                    &[
                        ("zspec".into(), Some(Association::Z)),
                        ("mag_g".into(), Some(Association::Z)),
                    ],
                )
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "association z is given to both 'zspec' and 'mag_g'"
            );

            // An association moves: RA on dec_j2000 takes it from ra_j2000. Swaps work.
            let all = store
                .set_column_associations(
                    "ann",
                    p.id,
                    &[
                        ("ra_j2000".into(), Some(Association::Dec)),
                        ("dec_j2000".into(), Some(Association::Ra)),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(all[1].association, Some(Association::Dec));
            assert_eq!(all[2].association, Some(Association::Ra));
            let moved = store
                .set_column_association("ann", p.id, "mag_g", Some(Association::Ra))
                .await
                .unwrap();
            assert_eq!(moved.association, Some(Association::Ra));
            let all = store.product_columns("ann", p.id).await.unwrap();
            assert_eq!(
                (all[2].association.clone(), all[2].ucd.clone()),
                (None, None)
            );

            // Published: the required ones stay; others may still change.
            store
                .set_column_associations(
                    "ann",
                    p.id,
                    &[
                        ("dec_j2000".into(), Some(Association::Dec)),
                        ("ra_j2000".into(), Some(Association::Ra)),
                        ("mag_g".into(), Some("mag_g".parse().unwrap())),
                    ],
                )
                .await
                .unwrap();
            store
                .add_product_file(
                    "ann",
                    p.id,
                    &NewProductFile {
                        role: FileRole::Main,
                        name: "specz.parquet".into(),
                        size_bytes: 1,
                        n_rows: Some(1),
                        media_type: "application/vnd.apache.parquet".into(),
                        sha256: "f".repeat(64),
                        storage_key: "k/specz.parquet".into(),
                    },
                )
                .await
                .unwrap();
            store.publish_product("ann", p.id).await.unwrap();
            let e = store
                .set_column_association("ann", p.id, "zspec", None)
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "product {} is published as a redshift_catalog, which needs columns \
                     associated with RA, Dec, z: this change would leave none for z",
                    p.id
                )
            );
            assert_eq!(
                store.product_columns("ann", p.id).await.unwrap()[3].association,
                Some(Association::Z)
            );
            store
                .set_column_association("ann", p.id, "objid", None)
                .await
                .unwrap();
            let e = store
                .set_product_columns("ann", p.id, &cols(&["a"]))
                .await
                .unwrap_err();
            assert!(
                e.to_string()
                    .contains("is PUBLISHED: its columns are registered only"),
                "{e}"
            );

            // Registering again replaces the columns; bad column lists are refused.
            let q = store
                .create_product("ann", &NewProduct::new("again", ProductType::Other))
                .await
                .unwrap();
            store
                .set_product_columns("ann", q.id, &cols(&["a", "b"]))
                .await
                .unwrap();
            store
                .set_column_association("ann", q.id, "a", Some(Association::Survey))
                .await
                .unwrap();
            let again = store
                .set_product_columns("ann", q.id, &cols(&["b", "c", "a"]))
                .await
                .unwrap();
            assert_eq!(
                assoc(&again),
                vec![
                    ("b".into(), None, None),
                    ("c".into(), None, None),
                    ("a".into(), None, None)
                ]
            );
            let e = store
                .set_product_columns("ann", q.id, &cols(&["a", "a"]))
                .await
                .unwrap_err();
            assert_eq!(e.to_string(), "column name 'a' appears twice");
            let e = store
                .set_product_columns("bob", q.id, &cols(&["x"]))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
        })
        .await;
    }
}
