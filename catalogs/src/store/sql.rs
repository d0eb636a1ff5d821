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
