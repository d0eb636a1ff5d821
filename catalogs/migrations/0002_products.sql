-- The product store: releases and who may see them, products, their files and their columns.
-- Portable SQL, as 0001: the same file runs on SQLite and PostgreSQL; numbers and flags are
-- BIGINT so both drivers read them as 64-bit integers; times are unix seconds.

-- A data release (e.g. `dp1`). Its products are seen by everyone when `is_public`, otherwise
-- only by members of one of its access groups (and by admins and each product's owner).
CREATE TABLE pz_releases (
    name          TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    is_public     BIGINT NOT NULL DEFAULT 0,
    created_unix  BIGINT NOT NULL
);

-- The groups (as in pz_user_groups) whose members may see a private release.
CREATE TABLE pz_release_groups (
    release_name  TEXT NOT NULL REFERENCES pz_releases (name) ON DELETE CASCADE,
    group_name    TEXT NOT NULL,
    PRIMARY KEY (release_name, group_name)
);

CREATE INDEX pz_release_groups_group ON pz_release_groups (group_name);

-- Numbers the database hands out. Product ids come from here, not from the column type:
-- SQLite numbers `INTEGER PRIMARY KEY` rows itself but PostgreSQL needs `BIGSERIAL` or
-- `GENERATED ... AS IDENTITY`, which SQLite does not parse, so no one column declaration
-- numbers rows on both. `UPDATE pz_counters SET last_issued = last_issued + 1 WHERE ...
-- RETURNING last_issued` runs on both, inside the transaction that inserts the product:
-- the row lock (PostgreSQL) or the write lock (SQLite) serialises concurrent creations,
-- and an id a product got is never handed out again (not even after the product is gone).
CREATE TABLE pz_counters (
    name         TEXT PRIMARY KEY,
    last_issued  BIGINT NOT NULL
);

INSERT INTO pz_counters (name, last_issued) VALUES ('pz_products', 0);

-- A product. `internal_name` is `<id>_<slug of display_name>`, fixed at creation (it names
-- the product's table). The release column is `release_name` because RELEASE is an SQL
-- keyword (RELEASE SAVEPOINT). `status`: REGISTERING=0, PUBLISHED=1, DELETED=2,
-- PROCESSING=3, FAILED=9, the codes of pzserver_app. A deleted product keeps its record.
CREATE TABLE pz_products (
    id                BIGINT PRIMARY KEY,
    internal_name     TEXT NOT NULL UNIQUE,
    display_name      TEXT NOT NULL,
    product_type      TEXT NOT NULL,
    release_name      TEXT REFERENCES pz_releases (name),
    official_product  BIGINT NOT NULL DEFAULT 0,
    pz_code           TEXT,
    description       TEXT NOT NULL DEFAULT '',
    uploaded_by       TEXT NOT NULL REFERENCES pz_users (name),
    created_unix      BIGINT NOT NULL,
    updated_unix      BIGINT NOT NULL,
    status            BIGINT NOT NULL CHECK (status IN (0, 1, 2, 3, 9))
);

CREATE INDEX pz_products_release ON pz_products (release_name);
CREATE INDEX pz_products_uploaded_by ON pz_products (uploaded_by);
CREATE INDEX pz_products_status ON pz_products (status);

-- The files of a product. `storage_key` is where the bytes are (a path under the data
-- directory, or an object-store key); `n_rows` is for tables only.
CREATE TABLE pz_product_files (
    product_id    BIGINT NOT NULL REFERENCES pz_products (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('main', 'description', 'auxiliary')),
    name          TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    n_rows        BIGINT,
    media_type    TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    storage_key   TEXT NOT NULL UNIQUE,
    created_unix  BIGINT NOT NULL,
    PRIMARY KEY (product_id, name)
);

-- At most one main file per product (a partial index: both databases have them).
CREATE UNIQUE INDEX pz_product_files_one_main ON pz_product_files (product_id) WHERE role = 'main';

-- The columns of a product's main file. `association` is `ID`, `RA`, `Dec`, `z`, `z_err`,
-- `z_flag`, `survey` or a free alias, and names at most one column of a product (NULLs, the
-- unassociated columns, are distinct in a UNIQUE constraint on both databases); `ucd` is
-- the association's UCD.
CREATE TABLE pz_product_contents (
    product_id    BIGINT NOT NULL REFERENCES pz_products (id) ON DELETE CASCADE,
    column_name   TEXT NOT NULL,
    column_type   TEXT NOT NULL,
    column_order  BIGINT NOT NULL,
    association   TEXT,
    ucd           TEXT,
    PRIMARY KEY (product_id, column_name),
    UNIQUE (product_id, column_order),
    UNIQUE (product_id, association)
);
