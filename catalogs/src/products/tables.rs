//! Published products as SQL tables, for one caller: `products."<internal_name>"` (the rows
//! as uploaded) and `products_std."<internal_name>"` (the same rows, the associated columns
//! under their standard names: `id`, `ra`, `dec`, `z`, `z_err`, `z_flag`, `survey`, or the
//! uploader's alias), so one query reads redshift catalogs of different surveys.
//!
//! The schemas are made per query from what the caller may see (the store's one visibility
//! rule), and put in front of the session's catalogs for that query only: a product the
//! caller may not see is not in them, exactly as one that does not exist.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemorySchemaProvider, SchemaProvider, Session,
};
use datafusion::common::{DataFusionError, Result as DfResult, TableReference};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{provider_as_source, TableProvider, ViewTable};
use datafusion::logical_expr::{ident, Expr, LogicalPlanBuilder};

use super::{table_key, ProductStore};
use crate::store::{
    FileRole, Product, ProductColumn, ProductFilter, ProductQuery, Status, StoreError,
};

/// The schema of products as uploaded.
pub const PRODUCTS_SCHEMA: &str = "products";
/// The schema of products with standard column names.
pub const PRODUCTS_STD_SCHEMA: &str = "products_std";

/// A published product SQL can read.
#[derive(Debug, Clone)]
pub struct ProductTable {
    pub product: Product,
    pub table_key: String,
    pub columns: Vec<ProductColumn>,
}

/// The two schemas of one caller's products.
pub struct CallerProducts {
    pub products: Arc<dyn SchemaProvider>,
    pub products_std: Arc<dyn SchemaProvider>,
}

impl ProductStore {
    /// The table of one product, if it is published, a table, and the caller may see it.
    async fn product_table(
        &self,
        caller: &str,
        product: Product,
    ) -> Result<Option<ProductTable>, StoreError> {
        if product.status != Status::Published {
            return Ok(None);
        }
        let files = self.meta.product_files(caller, product.id).await?;
        let Some(main) = files.iter().find(|f| f.role == FileRole::Main) else {
            return Ok(None);
        };
        let Some(key) = table_key(&product, main) else {
            return Ok(None);
        };
        let columns = self.meta.product_columns(caller, product.id).await?;
        Ok(Some(ProductTable {
            product,
            table_key: key,
            columns,
        }))
    }

    /// The tables of the published products `caller` may see: those named in `only`
    /// (internal names), or all of them.
    pub async fn tables_for(
        &self,
        caller: &str,
        only: Option<&[String]>,
    ) -> Result<Vec<ProductTable>, StoreError> {
        let mut out = Vec::new();
        match only {
            Some(names) => {
                let mut seen = HashSet::new();
                for n in names {
                    if !seen.insert(n.as_str()) {
                        continue;
                    }
                    match self.meta.product_by_internal_name(caller, n).await {
                        Ok(p) => out.extend(self.product_table(caller, p).await?),
                        Err(StoreError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                let mut query = ProductQuery {
                    filter: ProductFilter {
                        status: Some(Status::Published),
                        ..ProductFilter::default()
                    },
                    limit: ProductQuery::MAX_LIMIT,
                    ..ProductQuery::default()
                };
                loop {
                    let page = self.meta.products(caller, &query).await?;
                    let n = page.products.len() as i64;
                    for p in page.products {
                        out.extend(self.product_table(caller, p).await?);
                    }
                    query.offset += n;
                    if n == 0 || query.offset >= page.total {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The `products` and `products_std` schemas of `caller`, holding the tables named in
    /// `only` (or all the caller may see).
    pub async fn schemas_for(
        &self,
        session: &dyn Session,
        caller: &str,
        only: Option<&[String]>,
    ) -> DfResult<CallerProducts> {
        let tables = self
            .tables_for(caller, only)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let products = MemorySchemaProvider::new();
        let products_std = MemorySchemaProvider::new();
        for t in tables {
            let raw = self.listing_table(session, &t).await?;
            let std = standard_view(&t, Arc::clone(&raw))?;
            products.register_table(t.product.internal_name.clone(), raw)?;
            products_std.register_table(t.product.internal_name.clone(), std)?;
        }
        Ok(CallerProducts {
            products: Arc::new(products),
            products_std: Arc::new(products_std),
        })
    }

    async fn listing_table(
        &self,
        session: &dyn Session,
        t: &ProductTable,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let url = self
            .storage
            .url_of(&t.table_key)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let url = ListingTableUrl::parse(url.as_str())?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .infer_schema(session)
            .await?;
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}

/// The names a product's columns have in `products_std`: associated columns under their
/// standard name (or alias), then the others under their own names unless one of those is
/// taken (the column is then only in `products`).
pub fn standard_names(columns: &[ProductColumn]) -> Vec<(String, String)> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for c in columns {
        if let Some(a) = &c.association {
            let name = a
                .standard_column()
                .map(str::to_string)
                .unwrap_or_else(|| a.name().to_string());
            if taken.insert(name.clone()) {
                out.push((c.column_name.clone(), name));
            }
        }
    }
    for c in columns.iter().filter(|c| c.association.is_none()) {
        if taken.insert(c.column_name.clone()) {
            out.push((c.column_name.clone(), c.column_name.clone()));
        }
    }
    out
}

fn standard_view(
    t: &ProductTable,
    raw: Arc<dyn TableProvider>,
) -> DfResult<Arc<dyn TableProvider>> {
    let present: HashSet<String> = raw
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let exprs: Vec<Expr> = standard_names(&t.columns)
        .into_iter()
        .filter(|(from, _)| present.contains(from))
        .map(|(from, to)| ident(from).alias(to))
        .collect();
    let reference = TableReference::partial(PRODUCTS_SCHEMA, t.product.internal_name.as_str());
    let plan = LogicalPlanBuilder::scan(reference, provider_as_source(raw), None)?
        .project(exprs)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Whether a table reference names one of the product schemas of `default_catalog`.
pub fn names_product_schema(r: &TableReference, default_catalog: &str) -> bool {
    let schema_is = |s: &str| s == PRODUCTS_SCHEMA || s == PRODUCTS_STD_SCHEMA;
    match r {
        TableReference::Bare { .. } => false,
        TableReference::Partial { schema, .. } => schema_is(schema),
        TableReference::Full {
            catalog, schema, ..
        } => catalog.as_ref() == default_catalog && schema_is(schema),
    }
}

/// `base` with `products` and `products_std` added to its catalog `default_catalog`.
pub fn with_caller_products(
    base: Arc<dyn CatalogProviderList>,
    default_catalog: &str,
    products: CallerProducts,
) -> Arc<dyn CatalogProviderList> {
    Arc::new(ProductCatalogList {
        base,
        default_catalog: default_catalog.to_string(),
        products: Arc::new(products),
    })
}

#[derive(Debug)]
struct ProductCatalogList {
    base: Arc<dyn CatalogProviderList>,
    default_catalog: String,
    products: Arc<CallerProducts>,
}

impl std::fmt::Debug for CallerProducts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerProducts")
            .field("products", &self.products.table_names())
            .finish()
    }
}

impl CatalogProviderList for ProductCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.base.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.base.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let c = self.base.catalog(name)?;
        if name == self.default_catalog {
            Some(Arc::new(ProductCatalog {
                base: c,
                products: Arc::clone(&self.products),
            }))
        } else {
            Some(c)
        }
    }
}

#[derive(Debug)]
struct ProductCatalog {
    base: Arc<dyn CatalogProvider>,
    products: Arc<CallerProducts>,
}

impl CatalogProvider for ProductCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.base.schema_names();
        for s in [PRODUCTS_SCHEMA, PRODUCTS_STD_SCHEMA] {
            if !names.iter().any(|n| n == s) {
                names.push(s.to_string());
            }
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            PRODUCTS_SCHEMA => Some(Arc::clone(&self.products.products)),
            PRODUCTS_STD_SCHEMA => Some(Arc::clone(&self.products.products_std)),
            _ => self.base.schema(name),
        }
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        if name == PRODUCTS_SCHEMA || name == PRODUCTS_STD_SCHEMA {
            return datafusion::common::plan_err!(
                "schema '{name}' holds the product store's tables; it cannot be replaced"
            );
        }
        self.base.register_schema(name, schema)
    }
}
