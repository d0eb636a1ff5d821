//! Every SQL statement the metadata store runs, in one place. `$n` placeholders work on
//! both SQLite and PostgreSQL.

pub const INSERT_USER: &str =
    "INSERT INTO pz_users (name, is_admin, created_unix) VALUES ($1, $2, $3)";
pub const SELECT_USER: &str = "SELECT name, is_admin, created_unix FROM pz_users WHERE name = $1";
pub const SELECT_USERS: &str = "SELECT name, is_admin, created_unix FROM pz_users ORDER BY name";
pub const INSERT_USER_GROUP: &str =
    "INSERT INTO pz_user_groups (user_name, group_name) VALUES ($1, $2)";
pub const SELECT_USER_GROUPS: &str =
    "SELECT group_name FROM pz_user_groups WHERE user_name = $1 ORDER BY group_name";

pub const INSERT_TOKEN: &str = "INSERT INTO pz_tokens (token_id, token_sha256, user_name, created_unix, expires_unix, revoked_unix) VALUES ($1, $2, $3, $4, $5, NULL)";
pub const SELECT_TOKEN_BY_HASH: &str =
    "SELECT token_id, user_name, expires_unix, revoked_unix FROM pz_tokens WHERE token_sha256 = $1";
pub const SELECT_TOKENS_OF_USER: &str = "SELECT token_id, user_name, created_unix, expires_unix, revoked_unix FROM pz_tokens WHERE user_name = $1 ORDER BY created_unix, token_id";
pub const REVOKE_TOKEN: &str =
    "UPDATE pz_tokens SET revoked_unix = $2 WHERE token_id = $1 AND revoked_unix IS NULL";
pub const SELECT_TOKEN_BY_ID: &str = "SELECT token_id, user_name, created_unix, expires_unix, revoked_unix FROM pz_tokens WHERE token_id = $1";

// --- The product store -------------------------------------------------------------------
//
// Who sees what, in one place. Every statement that reads products or releases for a caller
// binds the caller's user name as $1 and keeps only what `product_visible` (or
// `release_visible`) allows: an admin sees everything; anyone sees their own products,
// products without a release, and products of a release that is public or shares an access
// group with them (groups as in pz_user_groups). A product outside that is absent from the
// answer, exactly as one that does not exist. The fragments are macros so that `concat!`
// makes every statement a `&'static str`; release rows are aliased `r`, product rows `p`.

/// Whether the caller ($1) is an admin.
macro_rules! caller_is_admin {
    () => {
        "EXISTS (SELECT 1 FROM pz_users adm WHERE adm.name = $1 AND adm.is_admin = 1)"
    };
}

/// Whether the release row aliased `$r` is open to the caller ($1) without being an admin:
/// public, or sharing an access group with them.
macro_rules! release_open_to_caller {
    ($r:literal) => {
        concat!(
            "(",
            $r,
            ".is_public = 1 OR EXISTS (SELECT 1 FROM pz_release_groups rg \
             JOIN pz_user_groups ug ON ug.group_name = rg.group_name \
             WHERE rg.release_name = ",
            $r,
            ".name AND ug.user_name = $1))"
        )
    };
}

/// Whether the caller ($1) may see the release row aliased `r`.
macro_rules! release_visible {
    () => {
        concat!(
            "(",
            caller_is_admin!(),
            " OR ",
            release_open_to_caller!("r"),
            ")"
        )
    };
}

/// Whether the caller ($1) may see the product row aliased `p`: the one rule of who sees
/// which product.
macro_rules! product_visible {
    () => {
        concat!(
            "(",
            caller_is_admin!(),
            " OR p.uploaded_by = $1 OR p.release_name IS NULL \
             OR EXISTS (SELECT 1 FROM pz_releases vr WHERE vr.name = p.release_name AND ",
            release_open_to_caller!("vr"),
            "))"
        )
    };
}

macro_rules! release_columns {
    () => {
        "r.name, r.display_name, r.description, r.is_public, r.created_unix"
    };
}

macro_rules! product_columns {
    () => {
        "p.id, p.internal_name, p.display_name, p.product_type, p.release_name, \
         p.official_product, p.pz_code, p.description, p.uploaded_by, p.created_unix, \
         p.updated_unix, p.status"
    };
}

/// The filters of a product list, after visibility: $2 product type, $3 release, $4
/// official (0/1), $5 status (when NULL, every status but DELETED=2), $6 uploaded_by, $7 a
/// lower-case LIKE pattern matched against display name, description and internal name.
/// `$n IS NULL OR …` makes an absent filter keep everything with one statement for all
/// combinations; the binds carry their types, so PostgreSQL knows each $n's type.
macro_rules! product_list_where {
    () => {
        concat!(
            product_visible!(),
            " AND ($2 IS NULL OR p.product_type = $2)",
            " AND ($3 IS NULL OR p.release_name = $3)",
            " AND ($4 IS NULL OR p.official_product = $4)",
            " AND (($5 IS NULL AND p.status <> 2) OR p.status = $5)",
            " AND ($6 IS NULL OR p.uploaded_by = $6)",
            " AND ($7 IS NULL OR LOWER(p.display_name) LIKE $7 ESCAPE '\\'",
            " OR LOWER(p.description) LIKE $7 ESCAPE '\\'",
            " OR LOWER(p.internal_name) LIKE $7 ESCAPE '\\')"
        )
    };
}

pub const INSERT_RELEASE: &str = "INSERT INTO pz_releases (name, display_name, description, is_public, created_unix) VALUES ($1, $2, $3, $4, $5)";
/// Whether a release exists at all: for admins creating one, who see every release anyway.
pub const SELECT_RELEASE_NAME: &str = "SELECT name FROM pz_releases WHERE name = $1";
pub const SELECT_VISIBLE_RELEASE: &str = concat!(
    "SELECT ",
    release_columns!(),
    " FROM pz_releases r WHERE r.name = $2 AND ",
    release_visible!()
);
pub const SELECT_VISIBLE_RELEASES: &str = concat!(
    "SELECT ",
    release_columns!(),
    " FROM pz_releases r WHERE ",
    release_visible!(),
    " ORDER BY r.name"
);
pub const INSERT_RELEASE_GROUP: &str =
    "INSERT INTO pz_release_groups (release_name, group_name) VALUES ($1, $2)";
pub const DELETE_RELEASE_GROUPS: &str = "DELETE FROM pz_release_groups WHERE release_name = $1";
pub const SELECT_RELEASE_GROUPS: &str =
    "SELECT group_name FROM pz_release_groups WHERE release_name = $1 ORDER BY group_name";

/// The next product id (see `pz_counters` in the migration for why a counter).
pub const NEXT_PRODUCT_ID: &str = "UPDATE pz_counters SET last_issued = last_issued + 1 WHERE name = 'pz_products' RETURNING last_issued";
pub const INSERT_PRODUCT: &str = "INSERT INTO pz_products (id, internal_name, display_name, product_type, release_name, official_product, pz_code, description, uploaded_by, created_unix, updated_unix, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub const SELECT_VISIBLE_PRODUCT_BY_ID: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM pz_products p WHERE p.id = $2 AND ",
    product_visible!()
);
pub const SELECT_VISIBLE_PRODUCT_BY_INTERNAL_NAME: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM pz_products p WHERE p.internal_name = $2 AND ",
    product_visible!()
);
pub const COUNT_PRODUCTS: &str = concat!(
    "SELECT COUNT(*) FROM pz_products p WHERE ",
    product_list_where!()
);
pub const UPDATE_PRODUCT_TEXT: &str = "UPDATE pz_products SET display_name = $2, description = $3, official_product = $4, updated_unix = $5 WHERE id = $1";
/// A status change only from the status read ($2), so two changes at once cannot both
/// apply: the second updates no row.
pub const UPDATE_PRODUCT_STATUS: &str =
    "UPDATE pz_products SET status = $3, updated_unix = $4 WHERE id = $1 AND status = $2";
pub const TOUCH_PRODUCT: &str = "UPDATE pz_products SET updated_unix = $2 WHERE id = $1";

/// One page of the products the caller may see, with the filters of [`COUNT_PRODUCTS`],
/// ordered by `order_column` (one of [`product_order_column`]'s, never caller text), then
/// by id; $8 is the page size and $9 the offset.
pub fn select_products_page(order_column: &'static str, descending: bool) -> String {
    let direction = if descending { "DESC" } else { "ASC" };
    format!(
        "SELECT {} FROM pz_products p WHERE {} ORDER BY {order_column} {direction}, p.id {direction} LIMIT $8 OFFSET $9",
        product_columns!(),
        product_list_where!()
    )
}

/// The column a product list is ordered by. The release is compared as '' when there is
/// none, because SQLite puts NULLs first and PostgreSQL last.
pub fn product_order_column(field: super::products::ProductOrderField) -> &'static str {
    use super::products::ProductOrderField as F;
    match field {
        F::Id => "p.id",
        F::InternalName => "p.internal_name",
        F::DisplayName => "p.display_name",
        F::ProductType => "p.product_type",
        F::Release => "COALESCE(p.release_name, '')",
        F::OfficialProduct => "p.official_product",
        F::Status => "p.status",
        F::UploadedBy => "p.uploaded_by",
        F::CreatedAt => "p.created_unix",
        F::UpdatedAt => "p.updated_unix",
    }
}

pub const INSERT_PRODUCT_FILE: &str = "INSERT INTO pz_product_files (product_id, role, name, size_bytes, n_rows, media_type, sha256, storage_key, created_unix) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// A product's files, the main file first.
pub const SELECT_PRODUCT_FILES: &str = "SELECT product_id, role, name, size_bytes, n_rows, media_type, sha256, storage_key, created_unix FROM pz_product_files WHERE product_id = $1 ORDER BY CASE role WHEN 'main' THEN 0 WHEN 'description' THEN 1 ELSE 2 END, name";
pub const SELECT_STORAGE_KEY: &str =
    "SELECT product_id FROM pz_product_files WHERE storage_key = $1";
pub const DELETE_PRODUCT_FILE: &str =
    "DELETE FROM pz_product_files WHERE product_id = $1 AND name = $2";
pub const DELETE_PRODUCT_FILES: &str = "DELETE FROM pz_product_files WHERE product_id = $1";

pub const INSERT_PRODUCT_CONTENT: &str = "INSERT INTO pz_product_contents (product_id, column_name, column_type, column_order, association, ucd) VALUES ($1, $2, $3, $4, NULL, NULL)";
pub const DELETE_PRODUCT_CONTENTS: &str = "DELETE FROM pz_product_contents WHERE product_id = $1";
pub const SELECT_PRODUCT_CONTENTS: &str = "SELECT product_id, column_name, column_type, column_order, association, ucd FROM pz_product_contents WHERE product_id = $1 ORDER BY column_order";
/// Takes association $2 from whichever column of product $1 has it, but column $3.
pub const CLEAR_ASSOCIATION: &str = "UPDATE pz_product_contents SET association = NULL, ucd = NULL WHERE product_id = $1 AND association = $2 AND column_name <> $3";
pub const SET_ASSOCIATION: &str = "UPDATE pz_product_contents SET association = $3, ucd = $4 WHERE product_id = $1 AND column_name = $2";
pub const SELECT_STORAGE_USED_BY: &str = "SELECT CAST(COALESCE(SUM(f.size_bytes), 0) AS BIGINT) FROM pz_product_files f JOIN pz_products p ON p.id = f.product_id WHERE p.uploaded_by = $1";
pub const SELECT_ALL_PRODUCT_FILES: &str = "SELECT f.product_id, f.role, f.name, f.size_bytes, f.n_rows, f.media_type, f.sha256, f.storage_key, f.created_unix, p.internal_name FROM pz_product_files f JOIN pz_products p ON p.id = f.product_id ORDER BY f.product_id, f.name";
