//! The `pz_products` table: what a product is, who sees it, who may change it, and its
//! status lifecycle.
//!
//! Every operation names its caller by user name. What the caller may not see
//! (`sql::product_visible`) is `NotFound` in the same words as what does not exist; what they
//! see but may not change is `PermissionDenied`; a rule of the model broken is `Invalid`,
//! naming the field.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::product_contents::Association;
use super::product_files::{FileRole, ProductFile};
use super::product_types::ProductType;
use super::{now_unix, sql, MetadataStore, StoreError, User};

/// Where a product is in its life. The codes are pzserver_app's, and the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Uploaded by a user, files and columns being registered.
    Registering,
    /// Seen by whoever may see it, queryable.
    Published,
    /// Gone: its files are removed, its record stays.
    Deleted,
    /// Being made by a pipeline of the server.
    Processing,
    /// A pipeline's product whose run failed.
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Registering,
        Status::Published,
        Status::Deleted,
        Status::Processing,
        Status::Failed,
    ];

    pub fn code(self) -> i64 {
        match self {
            Status::Registering => 0,
            Status::Published => 1,
            Status::Deleted => 2,
            Status::Processing => 3,
            Status::Failed => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Registering => "REGISTERING",
            Status::Published => "PUBLISHED",
            Status::Deleted => "DELETED",
            Status::Processing => "PROCESSING",
            Status::Failed => "FAILED",
        }
    }

    pub fn from_code(code: i64) -> Result<Status, StoreError> {
        Status::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown product status code {code} (one of: {})",
                    Status::valid()
                ))
            })
    }

    /// The lifecycle: an upload is REGISTERING → PUBLISHED; a pipeline's product is
    /// PROCESSING → PUBLISHED or FAILED; anything not yet DELETED may be deleted.
    pub fn may_become(self, next: Status) -> bool {
        match (self, next) {
            (Status::Registering, Status::Published)
            | (Status::Processing, Status::Published)
            | (Status::Processing, Status::Failed) => true,
            (from, Status::Deleted) => from != Status::Deleted,
            _ => false,
        }
    }

    fn valid() -> String {
        Status::ALL
            .iter()
            .map(|s| format!("{}={}", s.name(), s.code()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Status {
    type Err = StoreError;

    /// A status by name (any case) or by code, as filters carry it.
    fn from_str(s: &str) -> Result<Status, StoreError> {
        let t = s.trim();
        if let Ok(code) = t.parse::<i64>() {
            return Status::from_code(code);
        }
        Status::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown product status '{s}' (one of: {})",
                    Status::valid()
                ))
            })
    }
}

/// A product's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    /// `<id>_<slug of display_name>`, fixed at creation: the product's table name.
    pub internal_name: String,
    pub display_name: String,
    pub product_type: ProductType,
    pub release: Option<String>,
    pub official_product: bool,
    pub pz_code: Option<String>,
    /// Markdown.
    pub description: String,
    pub uploaded_by: String,
    pub created_unix: i64,
    pub updated_unix: i64,
    pub status: Status,
}

/// What a new product is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub display_name: String,
    pub product_type: ProductType,
    pub release: Option<String>,
    /// Only an admin may set it.
    pub official_product: bool,
    pub pz_code: Option<String>,
    pub description: String,
    /// REGISTERING for an upload, PROCESSING for a pipeline's output.
    pub status: Status,
}

impl NewProduct {
    /// An upload of `product_type` called `display_name`, with nothing else set.
    pub fn new(display_name: &str, product_type: ProductType) -> Self {
        NewProduct {
            display_name: display_name.to_string(),
            product_type,
            release: None,
            official_product: false,
            pz_code: None,
            description: String::new(),
            status: Status::Registering,
        }
    }
}

/// The fields a product's owner (or an admin) may change; `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductUpdate {
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Only an admin may change it.
    pub official_product: Option<bool>,
}

/// Which products a list keeps; `None` keeps all. Without a `status`, DELETED products are
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub product_type: Option<ProductType>,
    pub release: Option<String>,
    pub official_product: Option<bool>,
    pub status: Option<Status>,
    pub uploaded_by: Option<String>,
    /// Words looked for, ignoring case, in display name, description and internal name.
    pub search: Option<String>,
}

impl ProductFilter {
    /// The filter names, as [`ProductFilter::set`] takes them.
    pub const FIELDS: [&'static str; 6] = [
        "product_type",
        "release",
        "official_product",
        "status",
        "uploaded_by",
        "search",
    ];

    /// Sets filter `field` from text, as the protocol and the CLI carry filters. An
    /// unknown field, or a value the field cannot take, is an error naming it.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), StoreError> {
        match field {
            "product_type" => self.product_type = Some(value.parse()?),
            "release" => self.release = Some(value.to_string()),
            "official_product" => {
                self.official_product = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => {
                        return Err(StoreError::Invalid(format!(
                            "filter official_product takes true or false, not '{value}'"
                        )))
                    }
                })
            }
            "status" => self.status = Some(value.parse()?),
            "uploaded_by" => self.uploaded_by = Some(value.to_string()),
            "search" => self.search = Some(value.to_string()),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "unknown product filter '{field}' (one of: {})",
                    ProductFilter::FIELDS.join(", ")
                )))
            }
        }
        Ok(())
    }
}

/// What a product list may be ordered by, in pzserver's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductOrderField {
    Id,
    InternalName,
    DisplayName,
    ProductType,
    Release,
    OfficialProduct,
    Status,
    UploadedBy,
    CreatedAt,
    UpdatedAt,
}

impl ProductOrderField {
    pub const ALL: [ProductOrderField; 10] = [
        ProductOrderField::Id,
        ProductOrderField::InternalName,
        ProductOrderField::DisplayName,
        ProductOrderField::ProductType,
        ProductOrderField::Release,
        ProductOrderField::OfficialProduct,
        ProductOrderField::Status,
        ProductOrderField::UploadedBy,
        ProductOrderField::CreatedAt,
        ProductOrderField::UpdatedAt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProductOrderField::Id => "id",
            ProductOrderField::InternalName => "internal_name",
            ProductOrderField::DisplayName => "display_name",
            ProductOrderField::ProductType => "product_type",
            ProductOrderField::Release => "release",
            ProductOrderField::OfficialProduct => "official_product",
            ProductOrderField::Status => "status",
            ProductOrderField::UploadedBy => "uploaded_by",
            ProductOrderField::CreatedAt => "created_at",
            ProductOrderField::UpdatedAt => "updated_at",
        }
    }
}

impl FromStr for ProductOrderField {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        ProductOrderField::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown product order field '{s}' (one of: {})",
                    ProductOrderField::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// A product list's order: a field, ascending unless `descending`; ties go by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductOrder {
    pub field: ProductOrderField,
    pub descending: bool,
}

impl Default for ProductOrder {
    fn default() -> Self {
        ProductOrder {
            field: ProductOrderField::Id,
            descending: false,
        }
    }
}

impl FromStr for ProductOrder {
    type Err = StoreError;

    /// `field` or `-field` (descending), as Django REST's `ordering` that pzserver uses.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let t = s.trim();
        let (descending, name) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        Ok(ProductOrder {
            field: name.parse()?,
            descending,
        })
    }
}

/// A page of a product list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    pub filter: ProductFilter,
    pub order: ProductOrder,
    /// Products skipped before the page.
    pub offset: i64,
    /// Products on the page, at most [`ProductQuery::MAX_LIMIT`].
    pub limit: i64,
}

impl ProductQuery {
    /// The largest page: enough for any screen or script, small enough to answer quickly.
    pub const MAX_LIMIT: i64 = 10_000;
}

impl Default for ProductQuery {
    fn default() -> Self {
        ProductQuery {
            filter: ProductFilter::default(),
            order: ProductOrder::default(),
            offset: 0,
            limit: 100,
        }
    }
}

/// One page of products and how many the whole list holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPage {
    pub total: i64,
    pub products: Vec<Product>,
}

/// The slug of a display name, for internal names (which are also table names, so only
/// lower-case ASCII letters, digits and single `_`): spaces, `-`, `.` and `_` separate
/// words, other characters are dropped (as pzserver_app drops them).
pub fn slug(display_name: &str) -> String {
    let mut out = String::new();
    for c in display_name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c.is_whitespace() || matches!(c, '-' | '.' | '_'))
            && !out.is_empty()
            && !out.ends_with('_')
        {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The internal name of product `id`: `<id>_<slug>`, with the type's name as the slug of
/// a display name that has no ASCII letter or digit, so it still says what it is.
fn internal_name(id: i64, display_name: &str, product_type: ProductType) -> String {
    let s = slug(display_name);
    if s.is_empty() {
        format!("{id}_{}", product_type.name())
    } else {
        format!("{id}_{s}")
    }
}

fn check_display_name(name: &str) -> Result<String, StoreError> {
    let t = name.trim();
    if t.is_empty() || t.chars().count() > 255 || t.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "display_name '{name}' must be 1-255 characters, none of them control characters"
        )));
    }
    Ok(t.to_string())
}

/// `pz_code` as stored: empty is none.
fn normalized_pz_code(pz_code: &Option<String>) -> Result<Option<String>, StoreError> {
    match pz_code.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(code) if code.chars().count() > 55 || code.chars().any(char::is_control) => Err(
            StoreError::Invalid(format!("pz_code '{code}' must be at most 55 characters")),
        ),
        Some(code) => Ok(Some(code.to_string())),
    }
}

/// `text` as a LIKE pattern matching it anywhere, lower-cased as `LOWER()` in the
/// statement lower-cases the columns, with LIKE's own characters escaped (`\` is the
/// statement's ESCAPE).
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(super) fn product_of_row(row: &AnyRow) -> Result<Product, StoreError> {
    let product_type: String = row.try_get(3)?;
    Ok(Product {
        id: row.try_get(0)?,
        internal_name: row.try_get(1)?,
        display_name: row.try_get(2)?,
        product_type: product_type.parse()?,
        release: row.try_get(4)?,
        official_product: row.try_get::<i64, _>(5)? != 0,
        pz_code: row.try_get(6)?,
        description: row.try_get(7)?,
        uploaded_by: row.try_get(8)?,
        created_unix: row.try_get(9)?,
        updated_unix: row.try_get(10)?,
        status: Status::from_code(row.try_get(11)?)?,
    })
}

fn association_names<'a>(list: impl Iterator<Item = &'a Association>) -> String {
    list.map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// The words for a product id that is not there for the caller, whether it does not exist
/// or they may not see it: one message, so neither hints at the other.
pub(super) fn no_product(id: i64) -> StoreError {
    StoreError::NotFound(format!("no product {id}"))
}

/// Product `id` if the caller may see it.
pub(super) async fn visible_product(
    conn: &mut AnyConnection,
    caller: &str,
    id: i64,
) -> Result<Product, StoreError> {
    let row = sqlx::query(sql::SELECT_VISIBLE_PRODUCT_BY_ID)
        .bind(caller.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => product_of_row(&row),
        None => Err(no_product(id)),
    }
}

/// Product `id` for `caller` to change what `what` says ("publish it", "change its
/// description"): it must be visible to them (else `NotFound`), theirs or they an admin
/// (else `PermissionDenied`), and not deleted.
pub(super) async fn product_to_change(
    conn: &mut AnyConnection,
    caller: &User,
    id: i64,
    what: &str,
) -> Result<Product, StoreError> {
    let product = visible_product(conn, &caller.name, id).await?;
    if product.uploaded_by != caller.name && !caller.admin {
        return Err(StoreError::PermissionDenied(format!(
            "only the owner of product {id} ({}) or an admin may {what}",
            product.uploaded_by
        )));
    }
    if product.status == Status::Deleted {
        return Err(StoreError::Invalid(format!(
            "product {id} is DELETED: nobody may {what}"
        )));
    }
    Ok(product)
}

/// Whether the lifecycle lets `product` become `next`, in words that say how it goes.
fn check_transition(product: &Product, next: Status) -> Result<(), StoreError> {
    if product.status.may_become(next) {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "product {} is {}: it cannot become {next} (a product goes REGISTERING → PUBLISHED, \
         PROCESSING → PUBLISHED or FAILED, and anything not DELETED → DELETED)",
        product.id, product.status
    )))
}

/// Moves `product` to `next` if the lifecycle allows it, only from the status it was read
/// with (so of two changes at once only one applies).
async fn set_status(
    conn: &mut AnyConnection,
    product: &Product,
    next: Status,
) -> Result<Product, StoreError> {
    check_transition(product, next)?;
    let now = now_unix();
    let done = sqlx::query(sql::UPDATE_PRODUCT_STATUS)
        .bind(product.id)
        .bind(product.status.code())
        .bind(next.code())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Invalid(format!(
            "product {} changed status while it was being made {next}; look at it again",
            product.id
        )));
    }
    Ok(Product {
        status: next,
        updated_unix: now,
        ..product.clone()
    })
}

impl MetadataStore {
    /// The user behind a caller who asks for a change: only users of this server make
    /// products (an anonymous caller only reads).
    pub(super) async fn acting_user(&self, caller: &str) -> Result<User, StoreError> {
        self.user(caller).await?.ok_or_else(|| {
            StoreError::PermissionDenied(format!(
                "'{caller}' is not a user of this server: only users may change products"
            ))
        })
    }

    /// Creates a product for `caller`, with the id the database hands out and the
    /// internal name made from it.
    pub async fn create_product(
        &self,
        caller: &str,
        new: &NewProduct,
    ) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let display_name = check_display_name(&new.display_name)?;
        let product_type = new.product_type;
        let release = new
            .release
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if release.is_some() && !product_type.takes_release() {
            return Err(StoreError::Invalid(format!(
                "release must be empty for a {product_type} product"
            )));
        }
        let pz_code = normalized_pz_code(&new.pz_code)?;
        if pz_code.is_some() && !product_type.takes_pz_code() {
            return Err(StoreError::Invalid(format!(
                "pz_code must be empty for a {product_type} product"
            )));
        }
        if new.official_product && !user.admin {
            return Err(StoreError::PermissionDenied(
                "only an admin may set official_product".into(),
            ));
        }
        if !matches!(new.status, Status::Registering | Status::Processing) {
            return Err(StoreError::Invalid(format!(
                "a new product is REGISTERING (an upload) or PROCESSING (a pipeline's), not {}",
                new.status
            )));
        }
        let mut tx = self.pool().begin().await?;
        // The id first: the transaction writes at once, so SQLite takes its write lock
        // before any read (a read-then-write transaction may find the lock taken).
        let id: i64 = sqlx::query(sql::NEXT_PRODUCT_ID)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if let Some(r) = release {
            // A release the caller may not see does not exist for them.
            sqlx::query(sql::SELECT_VISIBLE_RELEASE)
                .bind(caller.to_string())
                .bind(r.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no release '{r}'")))?;
        }
        let now = now_unix();
        let product = Product {
            id,
            internal_name: internal_name(id, &display_name, product_type),
            display_name,
            product_type,
            release: release.map(str::to_string),
            official_product: new.official_product,
            pz_code,
            description: new.description.clone(),
            uploaded_by: user.name,
            created_unix: now,
            updated_unix: now,
            status: new.status,
        };
        sqlx::query(sql::INSERT_PRODUCT)
            .bind(product.id)
            .bind(product.internal_name.clone())
            .bind(product.display_name.clone())
            .bind(product.product_type.name().to_string())
            .bind(product.release.clone())
            .bind(product.official_product as i64)
            .bind(product.pz_code.clone())
            .bind(product.description.clone())
            .bind(product.uploaded_by.clone())
            .bind(product.created_unix)
            .bind(product.updated_unix)
            .bind(product.status.code())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Product `id` if the caller may change it (`what` says how, for the refusal): the
    /// check an operation makes before work that comes before its record, such as
    /// streaming an upload.
    pub async fn product_for_change(
        &self,
        caller: &str,
        id: i64,
        what: &str,
    ) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut conn = self.pool().acquire().await?;
        product_to_change(&mut conn, &user, id, what).await
    }

    /// Whether `caller` is an admin of this server.
    pub async fn is_admin(&self, caller: &str) -> Result<bool, StoreError> {
        Ok(self.user(caller).await?.is_some_and(|u| u.admin))
    }

    /// Product `id`, if the caller may see it (deleted ones too: the record stays).
    pub async fn product(&self, caller: &str, id: i64) -> Result<Product, StoreError> {
        let mut conn = self.pool().acquire().await?;
        visible_product(&mut conn, caller, id).await
    }

    /// The product with this internal name, if the caller may see it.
    pub async fn product_by_internal_name(
        &self,
        caller: &str,
        internal_name: &str,
    ) -> Result<Product, StoreError> {
        let row = sqlx::query(sql::SELECT_VISIBLE_PRODUCT_BY_INTERNAL_NAME)
            .bind(caller.to_string())
            .bind(internal_name.to_string())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => product_of_row(&row),
            None => Err(StoreError::NotFound(format!(
                "no product '{internal_name}'"
            ))),
        }
    }

    /// A product named by its id or its internal name, as users name them (an internal
    /// name always has a `_` after the id, so digits alone are an id).
    pub async fn product_named(
        &self,
        caller: &str,
        id_or_internal_name: &str,
    ) -> Result<Product, StoreError> {
        let t = id_or_internal_name.trim();
        match t.parse::<i64>() {
            Ok(id) => self.product(caller, id).await,
            Err(_) => self.product_by_internal_name(caller, t).await,
        }
    }

    /// One page of the products the caller may see, filtered and ordered, with the number
    /// of products the whole list holds.
    pub async fn products(
        &self,
        caller: &str,
        query: &ProductQuery,
    ) -> Result<ProductPage, StoreError> {
        if query.offset < 0 {
            return Err(StoreError::Invalid(format!(
                "offset must be 0 or more, not {}",
                query.offset
            )));
        }
        if !(1..=ProductQuery::MAX_LIMIT).contains(&query.limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be 1 to {}, not {}",
                ProductQuery::MAX_LIMIT,
                query.limit
            )));
        }
        let f = &query.filter;
        let search = f
            .search
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(like_pattern);
        // The same binds, in the same order, for the count and the page.
        macro_rules! bind_filters {
            ($q:expr) => {
                $q.bind(caller.to_string())
                    .bind(f.product_type.map(|t| t.name().to_string()))
                    .bind(f.release.clone())
                    .bind(f.official_product.map(|o| o as i64))
                    .bind(f.status.map(Status::code))
                    .bind(f.uploaded_by.clone())
                    .bind(search.clone())
            };
        }
        let mut conn = self.pool().acquire().await?;
        let total: i64 = bind_filters!(sqlx::query(sql::COUNT_PRODUCTS))
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let page = sql::select_products_page(
            sql::product_order_column(query.order.field),
            query.order.descending,
        );
        let products = bind_filters!(sqlx::query(sqlx::AssertSqlSafe(page)))
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(product_of_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProductPage { total, products })
    }

    /// Changes a product's display name, description or (admins only) official flag. The
    /// internal name stays: it names the product's table, which must not move under
    /// queries.
    pub async fn update_product(
        &self,
        caller: &str,
        id: i64,
        update: &ProductUpdate,
    ) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut tx = self.pool().begin().await?;
        let fields = [
            update.display_name.as_ref().map(|_| "display_name"),
            update.description.as_ref().map(|_| "description"),
            update.official_product.map(|_| "official_product"),
        ];
        let named: Vec<&str> = fields.iter().flatten().copied().collect();
        let what = if named.is_empty() {
            "change it".to_string()
        } else {
            format!("change its {}", named.join(", "))
        };
        let mut product = product_to_change(&mut tx, &user, id, &what).await?;
        if let Some(name) = &update.display_name {
            product.display_name = check_display_name(name)?;
        }
        if let Some(description) = &update.description {
            product.description = description.clone();
        }
        if let Some(official) = update.official_product {
            if official != product.official_product && !user.admin {
                return Err(StoreError::PermissionDenied(
                    "only an admin may set official_product".into(),
                ));
            }
            product.official_product = official;
        }
        product.updated_unix = now_unix();
        sqlx::query(sql::UPDATE_PRODUCT_TEXT)
            .bind(id)
            .bind(product.display_name.clone())
            .bind(product.description.clone())
            .bind(product.official_product as i64)
            .bind(product.updated_unix)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Publishes a product: it must have a main file and the column associations its type
    /// needs (the error names every one missing).
    pub async fn publish_product(&self, caller: &str, id: i64) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "publish it").await?;
        // The lifecycle's words first, before any about files or columns.
        check_transition(&product, Status::Published)?;
        let files = super::product_files::files_of(&mut tx, id).await?;
        if !files.iter().any(|f| f.role == FileRole::Main) {
            return Err(StoreError::Invalid(format!(
                "cannot publish product {id}: it has no main file"
            )));
        }
        let columns = super::product_contents::columns_of(&mut tx, id).await?;
        let required = product.product_type.required_associations();
        let missing: Vec<&Association> = required
            .iter()
            .filter(|a| !columns.iter().any(|c| c.association.as_ref() == Some(*a)))
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::Invalid(format!(
                "cannot publish product {id} ({}): it needs columns associated with {}; \
                 missing: {}",
                product.product_type,
                association_names(required.iter()),
                association_names(missing.into_iter())
            )));
        }
        let published = set_status(&mut tx, &product, Status::Published).await?;
        tx.commit().await?;
        Ok(published)
    }

    /// Marks a pipeline's product (PROCESSING) as FAILED.
    pub async fn fail_product(&self, caller: &str, id: i64) -> Result<Product, StoreError> {
        let user = self.acting_user(caller).await?;
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "mark it failed").await?;
        let failed = set_status(&mut tx, &product, Status::Failed).await?;
        tx.commit().await?;
        Ok(failed)
    }

    /// Deletes a product softly: its record stays, DELETED, and so do its columns; its
    /// file records go, and are returned so the caller removes their bytes (bytes left by
    /// a crash in between are orphans, which the store's check finds).
    pub async fn delete_product(
        &self,
        caller: &str,
        id: i64,
    ) -> Result<(Product, Vec<ProductFile>), StoreError> {
        let user = self.acting_user(caller).await?;
        let mut tx = self.pool().begin().await?;
        let product = product_to_change(&mut tx, &user, id, "delete it").await?;
        let files = super::product_files::files_of(&mut tx, id).await?;
        sqlx::query(sql::DELETE_PRODUCT_FILES)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = set_status(&mut tx, &product, Status::Deleted).await?;
        tx.commit().await?;
        Ok((deleted, files))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_people, on_sqlite_and_postgres};
    use super::super::{NewColumn, NewProductFile, NewRelease};
    use super::*;

    fn file(role: FileRole, name: &str) -> NewProductFile {
        NewProductFile {
            role,
            name: name.to_string(),
            size_bytes: 10,
            n_rows: Some(2),
            media_type: "application/vnd.apache.parquet".into(),
            sha256: "ab".repeat(32),
            storage_key: format!("products/{name}"),
        }
    }

    fn columns(names: &[&str]) -> Vec<NewColumn> {
        names
            .iter()
            .map(|n| NewColumn {
                name: n.to_string(),
                column_type: "Float64".into(),
            })
            .collect()
    }

    fn ids(page: &ProductPage) -> Vec<i64> {
        page.products.iter().map(|p| p.id).collect()
    }

    #[test]
    fn slugs_and_statuses() {
        assert_eq!(
            slug("  My Spec-z   DR1.v2 (final)! "),
            "my_spec_z_dr1_v2_final"
        );
        assert_eq!(slug("Ünïcode"), "ncode");
        assert_eq!(slug("***"), "");
        assert_eq!(internal_name(7, "***", ProductType::Other), "7_other");
        assert_eq!(
            internal_name(7, "Redshifts 2", ProductType::Other),
            "7_redshifts_2"
        );
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()).unwrap(), s);
            assert_eq!(s.name().parse::<Status>().unwrap(), s);
            assert_eq!(s.code().to_string().parse::<Status>().unwrap(), s);
        }
        assert_eq!("published".parse::<Status>().unwrap(), Status::Published);
        assert_eq!(Status::Failed.code(), 9);
        let e = "GONE".parse::<Status>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown product status 'GONE' (one of: REGISTERING=0, PUBLISHED=1, DELETED=2, \
             PROCESSING=3, FAILED=9)"
        );
        assert!(Status::Registering.may_become(Status::Published));
        assert!(!Status::Registering.may_become(Status::Failed));
        assert!(Status::Processing.may_become(Status::Failed));
        assert!(!Status::Published.may_become(Status::Published));
        assert!(Status::Failed.may_become(Status::Deleted));
        assert!(!Status::Deleted.may_become(Status::Deleted));
        assert_eq!(like_pattern(" 50%_A\\b "), "%50\\%\\_a\\\\b%");
    }

    #[tokio::test]
    async fn creation_rules_and_internal_names() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let a = store
                .create_product(
                    "ann",
                    &NewProduct::new("Spec-z DR1", ProductType::RedshiftCatalog),
                )
                .await
                .unwrap();
            assert_eq!(a.internal_name, format!("{}_spec_z_dr1", a.id));
            assert_eq!(
                (a.status, a.uploaded_by.as_str()),
                (Status::Registering, "ann")
            );
            let b = store
                .create_product(
                    "bob",
                    &NewProduct::new("Spec-z DR1", ProductType::RedshiftCatalog),
                )
                .await
                .unwrap();
            assert_eq!(b.id, a.id + 1);
            assert_eq!(b.internal_name, format!("{}_spec_z_dr1", b.id));
            assert_eq!(store.product("ann", a.id).await.unwrap(), a);
            assert_eq!(
                store
                    .product_by_internal_name("ann", &a.internal_name)
                    .await
                    .unwrap(),
                a
            );
            assert_eq!(
                store.product_named("ann", &a.id.to_string()).await.unwrap(),
                a
            );
            assert_eq!(
                store.product_named("ann", &b.internal_name).await.unwrap(),
                b
            );

            store
                .create_release(
                    "root",
                    &NewRelease {
                        is_public: true,
                        ..NewRelease::new("dp1", "Data Preview 1")
                    },
                )
                .await
                .unwrap();
            let mut catalog = NewProduct::new("x", ProductType::RedshiftCatalog);
            catalog.release = Some("dp1".into());
            let e = store.create_product("ann", &catalog).await.unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert_eq!(
                e.to_string(),
                "release must be empty for a redshift_catalog product"
            );
            for t in [
                ProductType::TrainingSet,
                ProductType::TrainingResults,
                ProductType::RedshiftCatalog,
            ] {
                let mut p = NewProduct::new("x", t);
                p.pz_code = Some("bpz".into());
                let e = store.create_product("ann", &p).await.unwrap_err();
                assert!(matches!(e, StoreError::Invalid(_)), "{e}");
                assert_eq!(
                    e.to_string(),
                    format!("pz_code must be empty for a {t} product")
                );
                // Empty is no pz_code at all.
                p.pz_code = Some("  ".into());
                assert_eq!(store.create_product("ann", &p).await.unwrap().pz_code, None);
            }
            let mut estimates = NewProduct::new("BPZ on DP1", ProductType::PhotozEstimates);
            estimates.pz_code = Some("bpz".into());
            estimates.release = Some("dp1".into());
            let p = store.create_product("ann", &estimates).await.unwrap();
            assert_eq!(
                (p.pz_code.as_deref(), p.release.as_deref()),
                (Some("bpz"), Some("dp1"))
            );

            let mut official = NewProduct::new("Rubin's own", ProductType::TrainingSet);
            official.official_product = true;
            let e = store.create_product("ann", &official).await.unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(e.to_string(), "only an admin may set official_product");
            assert!(
                store
                    .create_product("root", &official)
                    .await
                    .unwrap()
                    .official_product
            );

            let mut no_release = NewProduct::new("x", ProductType::TrainingSet);
            no_release.release = Some("dr9".into());
            let e = store.create_product("ann", &no_release).await.unwrap_err();
            assert_eq!(e.to_string(), "no release 'dr9'");
            let mut published = NewProduct::new("x", ProductType::Other);
            published.status = Status::Published;
            let e = store.create_product("ann", &published).await.unwrap_err();
            assert!(e.to_string().contains("not PUBLISHED"), "{e}");
            let e = store
                .create_product("", &NewProduct::new("  ", ProductType::Other))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            let e = store
                .create_product("ann", &NewProduct::new("  ", ProductType::Other))
                .await
                .unwrap_err();
            assert!(
                e.to_string().starts_with("display_name '  ' must be"),
                "{e}"
            );
        })
        .await;
    }

    /// ann (group desc) and bob (group lsst) with products in a public release, a private
    /// release of group desc, and none; root is an admin.
    #[tokio::test]
    async fn each_caller_sees_exactly_what_they_may() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            store
                .create_release(
                    "root",
                    &NewRelease {
                        is_public: true,
                        ..NewRelease::new("dp1", "Data Preview 1")
                    },
                )
                .await
                .unwrap();
            store
                .create_release(
                    "root",
                    &NewRelease {
                        access_groups: vec!["desc".into()],
                        ..NewRelease::new("desc_dc2", "DESC DC2 (private)")
                    },
                )
                .await
                .unwrap();
            let make = |who: &'static str, name: &'static str, release: Option<&'static str>| {
                let store = store.clone();
                async move {
                    let mut p = NewProduct::new(name, ProductType::TrainingSet);
                    p.release = release.map(str::to_string);
                    store.create_product(who, &p).await.unwrap()
                }
            };
            let ann_free = make("ann", "ann free", None).await;
            let ann_public = make("ann", "ann public", Some("dp1")).await;
            let ann_private = make("ann", "ann private", Some("desc_dc2")).await;
            let bob_free = make("bob", "bob free", None).await;
            // An admin puts a product in the private release; bob cannot see it.
            let root_private = make("root", "root private", Some("desc_dc2")).await;
            let all = vec![
                ann_free.id,
                ann_public.id,
                ann_private.id,
                bob_free.id,
                root_private.id,
            ];
            let list = |who: &'static str| {
                let store = store.clone();
                async move { store.products(who, &ProductQuery::default()).await.unwrap() }
            };
            assert_eq!(ids(&list("ann").await), all);
            assert_eq!(ids(&list("root").await), all);
            let bob_sees = vec![ann_free.id, ann_public.id, bob_free.id];
            assert_eq!(ids(&list("bob").await), bob_sees);
            assert_eq!(list("bob").await.total, 3);
            // An anonymous caller (no user) sees what has no release or a public one.
            assert_eq!(ids(&list("anonymous").await), bob_sees);

            // Hidden and nonexistent are the same to bob, by id and by internal name.
            let hidden = store.product("bob", ann_private.id).await.unwrap_err();
            let absent = store.product("bob", 999_999).await.unwrap_err();
            assert!(matches!(hidden, StoreError::NotFound(_)), "{hidden}");
            assert_eq!(hidden.to_string(), format!("no product {}", ann_private.id));
            assert_eq!(absent.to_string(), "no product 999999");
            let hidden = store
                .product_by_internal_name("bob", &ann_private.internal_name)
                .await
                .unwrap_err();
            assert_eq!(
                hidden.to_string(),
                format!("no product '{}'", ann_private.internal_name)
            );
            assert!(matches!(hidden, StoreError::NotFound(_)));
            // Nor may bob act on it: not found, not "permission denied".
            for e in [
                store
                    .publish_product("bob", ann_private.id)
                    .await
                    .unwrap_err(),
                store
                    .delete_product("bob", ann_private.id)
                    .await
                    .unwrap_err(),
                store
                    .update_product("bob", ann_private.id, &ProductUpdate::default())
                    .await
                    .unwrap_err(),
            ] {
                assert!(matches!(e, StoreError::NotFound(_)), "{e}");
                assert_eq!(e.to_string(), format!("no product {}", ann_private.id));
            }
            assert_eq!(
                store.product("root", ann_private.id).await.unwrap(),
                ann_private
            );

            // Once bob joins desc (a group of the release), he sees the private products.
            sqlx::query(sql::INSERT_USER_GROUP)
                .bind("bob".to_string())
                .bind("desc".to_string())
                .execute(store.pool())
                .await
                .unwrap();
            assert_eq!(ids(&list("bob").await), all);
            // And when the release's groups change, he no longer does.
            store
                .set_release_groups("root", "desc_dc2", &["rubin".into()])
                .await
                .unwrap();
            assert_eq!(ids(&list("bob").await), bob_sees);
            // ann still sees her own product in it, but not root's.
            assert_eq!(
                ids(&list("ann").await),
                vec![ann_free.id, ann_public.id, ann_private.id, bob_free.id]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn only_the_owner_or_an_admin_changes_a_product() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let p = store
                .create_product("ann", &NewProduct::new("Mine", ProductType::Other))
                .await
                .unwrap();
            let rename = ProductUpdate {
                display_name: Some("Renamed".into()),
                ..Default::default()
            };
            let e = store
                .update_product("bob", p.id, &rename)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "only the owner of product {} (ann) or an admin may change its display_name",
                    p.id
                )
            );
            let e = store
                .update_product(
                    "bob",
                    p.id,
                    &ProductUpdate {
                        description: Some("mine now".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(e.to_string().ends_with("may change its description"), "{e}");
            for e in [
                store.publish_product("bob", p.id).await.unwrap_err(),
                store.delete_product("bob", p.id).await.unwrap_err(),
            ] {
                assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            }
            let e = store.delete_product("bob", p.id).await.unwrap_err();
            assert!(e.to_string().ends_with("or an admin may delete it"), "{e}");

            let renamed = store.update_product("ann", p.id, &rename).await.unwrap();
            assert_eq!(renamed.display_name, "Renamed");
            // The internal name is the table's name: it stays.
            assert_eq!(renamed.internal_name, p.internal_name);
            let described = store
                .update_product(
                    "root",
                    p.id,
                    &ProductUpdate {
                        description: Some("# Notes\n\nBy *root*.".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(described.display_name, "Renamed");
            assert_eq!(
                store.product("bob", p.id).await.unwrap().description,
                "# Notes\n\nBy *root*."
            );
            let official = ProductUpdate {
                official_product: Some(true),
                ..Default::default()
            };
            let e = store
                .update_product("ann", p.id, &official)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(e.to_string(), "only an admin may set official_product");
            assert!(!store.product("ann", p.id).await.unwrap().official_product);
            assert!(
                store
                    .update_product("root", p.id, &official)
                    .await
                    .unwrap()
                    .official_product
            );
            let e = store
                .update_product(
                    "ann",
                    p.id,
                    &ProductUpdate {
                        display_name: Some("".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(e.to_string().starts_with("display_name '' must be"), "{e}");
        })
        .await;
    }

    #[tokio::test]
    async fn the_lifecycle_and_what_a_publish_needs() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let cat = store
                .create_product(
                    "ann",
                    &NewProduct::new("specz", ProductType::RedshiftCatalog),
                )
                .await
                .unwrap();
            let e = store.publish_product("ann", cat.id).await.unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!("cannot publish product {}: it has no main file", cat.id)
            );
            store
                .add_product_file("ann", cat.id, &file(FileRole::Main, "specz.parquet"))
                .await
                .unwrap();
            store
                .set_product_columns("ann", cat.id, &columns(&["ra_deg", "dec_deg", "zspec"]))
                .await
                .unwrap();
            let e = store.publish_product("ann", cat.id).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "cannot publish product {} (redshift_catalog): it needs columns associated \
                     with RA, Dec, z; missing: RA, Dec, z",
                    cat.id
                )
            );
            store
                .set_column_association("ann", cat.id, "ra_deg", Some(Association::Ra))
                .await
                .unwrap();
            let e = store.publish_product("ann", cat.id).await.unwrap_err();
            assert!(e.to_string().ends_with("missing: Dec, z"), "{e}");
            store
                .set_column_association("ann", cat.id, "dec_deg", Some(Association::Dec))
                .await
                .unwrap();
            store
                .set_column_association("ann", cat.id, "zspec", Some(Association::Z))
                .await
                .unwrap();
            let published = store.publish_product("ann", cat.id).await.unwrap();
            assert_eq!(published.status, Status::Published);
            assert_eq!(
                store.product("bob", cat.id).await.unwrap().status,
                Status::Published
            );
            let e = store.publish_product("ann", cat.id).await.unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "product {} is PUBLISHED: it cannot become PUBLISHED",
                    cat.id
                )),
                "{e}"
            );
            let e = store.fail_product("ann", cat.id).await.unwrap_err();
            assert!(
                e.to_string()
                    .contains("is PUBLISHED: it cannot become FAILED"),
                "{e}"
            );

            // Object catalogs need RA and Dec; training sets z; other types nothing.
            let obj = store
                .create_product(
                    "ann",
                    &NewProduct::new("objects", ProductType::ObjectCatalog),
                )
                .await
                .unwrap();
            store
                .add_product_file("ann", obj.id, &file(FileRole::Main, "objects.parquet"))
                .await
                .unwrap();
            store
                .set_product_columns("ann", obj.id, &columns(&["ra", "z"]))
                .await
                .unwrap();
            store
                .set_column_association("ann", obj.id, "ra", Some(Association::Ra))
                .await
                .unwrap();
            let e = store.publish_product("ann", obj.id).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "cannot publish product {} (object_catalog): it needs columns associated \
                     with RA, Dec; missing: Dec",
                    obj.id
                )
            );
            let ts = store
                .create_product(
                    "ann",
                    &NewProduct::new("training", ProductType::TrainingSet),
                )
                .await
                .unwrap();
            store
                .add_product_file("ann", ts.id, &file(FileRole::Main, "training.parquet"))
                .await
                .unwrap();
            let e = store.publish_product("ann", ts.id).await.unwrap_err();
            assert!(e.to_string().ends_with("missing: z"), "{e}");
            let other = store
                .create_product("ann", &NewProduct::new("notes", ProductType::Other))
                .await
                .unwrap();
            store
                .add_product_file("ann", other.id, &file(FileRole::Main, "notes.pdf"))
                .await
                .unwrap();
            // An admin may publish someone else's product.
            assert_eq!(
                store
                    .publish_product("root", other.id)
                    .await
                    .unwrap()
                    .status,
                Status::Published
            );

            // A pipeline's product: PROCESSING → FAILED, never REGISTERING's way back.
            let mut run = NewProduct::new("tsm output", ProductType::Other);
            run.status = Status::Processing;
            let run = store.create_product("ann", &run).await.unwrap();
            assert_eq!(run.status, Status::Processing);
            let failed = store.fail_product("ann", run.id).await.unwrap();
            assert_eq!(failed.status, Status::Failed);
            let e = store.publish_product("ann", run.id).await.unwrap_err();
            assert!(
                e.to_string()
                    .contains("is FAILED: it cannot become PUBLISHED"),
                "{e}"
            );
            let e = store.fail_product("ann", ts.id).await.unwrap_err();
            assert!(
                e.to_string()
                    .contains("is REGISTERING: it cannot become FAILED"),
                "{e}"
            );
            let mut run2 = NewProduct::new("combine output", ProductType::Other);
            run2.status = Status::Processing;
            let run2 = store.create_product("ann", &run2).await.unwrap();
            store
                .add_product_file("ann", run2.id, &file(FileRole::Main, "combined.parquet"))
                .await
                .unwrap();
            assert_eq!(
                store.publish_product("ann", run2.id).await.unwrap().status,
                Status::Published
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_soft_delete_keeps_the_record_and_returns_the_files() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let p = store
                .create_product("ann", &NewProduct::new("gone soon", ProductType::Other))
                .await
                .unwrap();
            store
                .add_product_file("ann", p.id, &file(FileRole::Main, "main.csv"))
                .await
                .unwrap();
            store
                .add_product_file("ann", p.id, &file(FileRole::Auxiliary, "readme.txt"))
                .await
                .unwrap();
            store
                .set_product_columns("ann", p.id, &columns(&["a", "b"]))
                .await
                .unwrap();
            let keep = store
                .create_product("ann", &NewProduct::new("kept", ProductType::Other))
                .await
                .unwrap();
            let (deleted, files) = store.delete_product("ann", p.id).await.unwrap();
            assert_eq!(deleted.status, Status::Deleted);
            assert_eq!(
                files
                    .iter()
                    .map(|f| f.storage_key.as_str())
                    .collect::<Vec<_>>(),
                vec!["products/main.csv", "products/readme.txt"]
            );
            // The record stays, the file records go, the columns stay.
            let again = store.product("ann", p.id).await.unwrap();
            assert_eq!(again.status, Status::Deleted);
            assert_eq!(again.internal_name, p.internal_name);
            assert!(store.product_files("ann", p.id).await.unwrap().is_empty());
            assert_eq!(store.product_columns("ann", p.id).await.unwrap().len(), 2);
            // Not listed unless asked for.
            let page = store
                .products("ann", &ProductQuery::default())
                .await
                .unwrap();
            assert_eq!((ids(&page), page.total), (vec![keep.id], 1));
            let mut q = ProductQuery::default();
            q.filter.set("status", "DELETED").unwrap();
            assert_eq!(ids(&store.products("ann", &q).await.unwrap()), vec![p.id]);
            // Nothing more may happen to it.
            let e = store.delete_product("ann", p.id).await.unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert_eq!(
                e.to_string(),
                format!("product {} is DELETED: nobody may delete it", p.id)
            );
            let e = store.publish_product("root", p.id).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("product {} is DELETED: nobody may publish it", p.id)
            );
            let e = store
                .set_column_association("ann", p.id, "a", Some(Association::Id))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("is DELETED"), "{e}");
            // A published product may be deleted too.
            store
                .add_product_file("ann", keep.id, &file(FileRole::Main, "kept.csv"))
                .await
                .unwrap();
            store.publish_product("ann", keep.id).await.unwrap();
            assert_eq!(
                store
                    .delete_product("root", keep.id)
                    .await
                    .unwrap()
                    .0
                    .status,
                Status::Deleted
            );
        })
        .await;
    }

    #[tokio::test]
    async fn lists_filter_order_and_page_with_a_total() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            store
                .create_release(
                    "root",
                    &NewRelease {
                        is_public: true,
                        ..NewRelease::new("dp1", "Data Preview 1")
                    },
                )
                .await
                .unwrap();
            let mut made = Vec::new();
            for i in 0..12 {
                let who = if i % 3 == 0 { "bob" } else { "ann" };
                let t = if i % 2 == 0 {
                    ProductType::TrainingSet
                } else {
                    ProductType::PhotozEstimates
                };
                let mut p = NewProduct::new(&format!("product {i:02}"), t);
                if i % 4 == 0 {
                    p.release = Some("dp1".into());
                }
                if i == 5 {
                    p.description = "Estimates from *FlexZBoost* on 100% of DP1".into();
                }
                made.push(store.create_product(who, &p).await.unwrap());
            }
            let id_of = |i: usize| made[i].id;
            let mut q = ProductQuery {
                limit: 5,
                ..Default::default()
            };
            let page = store.products("bob", &q).await.unwrap();
            assert_eq!(page.total, 12);
            assert_eq!(ids(&page), (0..5).map(id_of).collect::<Vec<_>>());
            q.offset = 10;
            let page = store.products("bob", &q).await.unwrap();
            assert_eq!((page.total, ids(&page)), (12, vec![id_of(10), id_of(11)]));

            let mut q = ProductQuery::default();
            q.filter.set("product_type", "training_set").unwrap();
            q.filter.set("uploaded_by", "ann").unwrap();
            let page = store.products("bob", &q).await.unwrap();
            assert_eq!(ids(&page), vec![id_of(2), id_of(4), id_of(8), id_of(10)]);
            assert_eq!(page.total, 4);
            q.filter.set("release", "dp1").unwrap();
            assert_eq!(
                ids(&store.products("bob", &q).await.unwrap()),
                vec![id_of(4), id_of(8)]
            );

            let mut q = ProductQuery::default();
            q.filter.set("search", "flexzboost").unwrap();
            assert_eq!(
                ids(&store.products("ann", &q).await.unwrap()),
                vec![id_of(5)]
            );
            // LIKE's own characters are searched for as themselves.
            q.filter.set("search", "100%").unwrap();
            assert_eq!(
                ids(&store.products("ann", &q).await.unwrap()),
                vec![id_of(5)]
            );
            q.filter.set("search", "o_u").unwrap();
            assert!(store.products("ann", &q).await.unwrap().products.is_empty());
            // The internal name is searched too.
            q.filter
                .set("search", &made[7].internal_name.to_uppercase())
                .unwrap();
            assert_eq!(
                ids(&store.products("ann", &q).await.unwrap()),
                vec![id_of(7)]
            );

            let mut q = ProductQuery::default();
            q.filter.set("official_product", "true").unwrap();
            assert_eq!(store.products("ann", &q).await.unwrap().total, 0);
            q.filter.set("official_product", "false").unwrap();
            assert_eq!(store.products("ann", &q).await.unwrap().total, 12);
            let mut q = ProductQuery::default();
            q.filter.set("status", "1").unwrap();
            assert_eq!(store.products("ann", &q).await.unwrap().total, 0);
            q.filter.set("status", "registering").unwrap();
            assert_eq!(store.products("ann", &q).await.unwrap().total, 12);

            // Ordering, both ways, by a field with ties (broken by id) and one without.
            let mut q = ProductQuery {
                order: "-display_name".parse().unwrap(),
                ..Default::default()
            };
            let names: Vec<i64> = (0..12).rev().map(id_of).collect();
            assert_eq!(ids(&store.products("ann", &q).await.unwrap()), names);
            q.order = "uploaded_by".parse().unwrap();
            let by_owner: Vec<i64> = [1, 2, 4, 5, 7, 8, 10, 11, 0, 3, 6, 9]
                .into_iter()
                .map(id_of)
                .collect();
            assert_eq!(ids(&store.products("ann", &q).await.unwrap()), by_owner);
            q.order = "release".parse().unwrap();
            let page = store.products("ann", &q).await.unwrap();
            assert_eq!(&ids(&page)[9..], &[id_of(0), id_of(4), id_of(8)]);
            for field in ProductOrderField::ALL {
                for dir in ["", "-"] {
                    q.order = format!("{dir}{}", field.name()).parse().unwrap();
                    assert_eq!(
                        store.products("root", &q).await.unwrap().total,
                        12,
                        "{dir}{field:?}"
                    );
                }
            }

            // Unknown names are errors naming them and what is valid.
            let e = ProductFilter::default().set("owner", "ann").unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)));
            assert_eq!(
                e.to_string(),
                "unknown product filter 'owner' (one of: product_type, release, \
                 official_product, status, uploaded_by, search)"
            );
            let e = "-size".parse::<ProductOrder>().unwrap_err();
            assert_eq!(
                e.to_string(),
                "unknown product order field 'size' (one of: id, internal_name, display_name, \
                 product_type, release, official_product, status, uploaded_by, created_at, \
                 updated_at)"
            );
            let e = ProductFilter::default()
                .set("product_type", "specz")
                .unwrap_err();
            assert!(
                e.to_string().starts_with("unknown product type 'specz'"),
                "{e}"
            );
            let e = ProductFilter::default()
                .set("official_product", "maybe")
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "filter official_product takes true or false, not 'maybe'"
            );
            for (offset, limit, words) in [
                (-1, 10, "offset must be 0 or more, not -1"),
                (0, 0, "limit must be 1 to 10000, not 0"),
                (0, 10_001, "limit must be 1 to 10000, not 10001"),
            ] {
                let q = ProductQuery {
                    offset,
                    limit,
                    ..Default::default()
                };
                assert_eq!(
                    store.products("ann", &q).await.unwrap_err().to_string(),
                    words
                );
            }
        })
        .await;
    }
}
