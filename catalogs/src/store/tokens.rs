//! The `pz_tokens` table: API tokens, of which only a SHA-256 is kept.
//!
//! A token reads `pz_<id>_<secret>`: `id` (12 hex digits) is what `pz token revoke` and the
//! logs name it by; the whole text is the credential.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{now_unix, sql, MetadataStore, StoreError, User};

/// A token just made: the only time its text is known.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub text: String,
    pub user: String,
    pub expires_unix: Option<i64>,
}

/// What is kept about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub created_unix: i64,
    pub expires_unix: Option<i64>,
    pub revoked_unix: Option<i64>,
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(buf))
}

/// The id part of `pz_<id>_<secret>`, or `s` itself when it is not a token's text.
fn id_of(s: &str) -> &str {
    s.strip_prefix("pz_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .unwrap_or(s)
}

fn info_of(row: &sqlx::any::AnyRow) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        created_unix: row.try_get(2)?,
        expires_unix: row.try_get(3)?,
        revoked_unix: row.try_get(4)?,
    })
}

impl MetadataStore {
    /// Makes a token for `user`, valid for `lifetime` (forever when `None`).
    pub async fn create_token(
        &self,
        user: &str,
        lifetime: Option<Duration>,
    ) -> Result<Token, StoreError> {
        if self.user(user).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "no user '{user}' (pz user add {user} first)"
            )));
        }
        let id = random_hex(6)?;
        let text = format!("pz_{id}_{}", random_hex(32)?);
        let now = now_unix();
        let expires = lifetime.map(|l| now.saturating_add(l.as_secs().min(i64::MAX as u64) as i64));
        sqlx::query(sql::INSERT_TOKEN)
            .bind(id.clone())
            .bind(sha256_hex(&text))
            .bind(user.to_string())
            .bind(now)
            .bind(expires)
            .execute(self.pool())
            .await?;
        Ok(Token {
            id,
            text,
            user: user.to_string(),
            expires_unix: expires,
        })
    }

    /// The user a token stands for; unknown, revoked and expired tokens are refused, each
    /// with its reason.
    pub async fn authenticate(&self, token: &str) -> Result<User, StoreError> {
        let row = sqlx::query(sql::SELECT_TOKEN_BY_HASH)
            .bind(sha256_hex(token))
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Err(StoreError::Unauthenticated("unknown token".into()));
        };
        let id: String = row.try_get(0)?;
        let user: String = row.try_get(1)?;
        let expires: Option<i64> = row.try_get(2)?;
        let revoked: Option<i64> = row.try_get(3)?;
        if revoked.is_some() {
            return Err(StoreError::Unauthenticated(format!(
                "token {id} was revoked"
            )));
        }
        if let Some(e) = expires {
            if now_unix() >= e {
                return Err(StoreError::Unauthenticated(format!(
                    "token {id} has expired"
                )));
            }
        }
        self.user(&user)
            .await?
            .ok_or_else(|| StoreError::Unauthenticated(format!("token {id} belongs to no user")))
    }

    /// Revokes a token, named by its id or its whole text.
    pub async fn revoke_token(&self, id_or_text: &str) -> Result<TokenInfo, StoreError> {
        let id = id_of(id_or_text.trim());
        let Some(row) = sqlx::query(sql::SELECT_TOKEN_BY_ID)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
        else {
            return Err(StoreError::NotFound(format!("no token {id}")));
        };
        let info = info_of(&row)?;
        if info.revoked_unix.is_some() {
            return Ok(info);
        }
        let now = now_unix();
        sqlx::query(sql::REVOKE_TOKEN)
            .bind(id.to_string())
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(TokenInfo {
            revoked_unix: Some(now),
            ..info
        })
    }

    /// Every token of `user`, oldest first.
    pub async fn tokens_of(&self, user: &str) -> Result<Vec<TokenInfo>, StoreError> {
        sqlx::query(sql::SELECT_TOKENS_OF_USER)
            .bind(user.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(info_of)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_store;
    use super::super::testing::PostgresDatabase;
    use super::*;

    /// Users and tokens end to end on `store` (a fresh database).
    pub(crate) async fn users_and_tokens(store: &MetadataStore) {
        store
            .add_user("ann", false, &["desc".into()])
            .await
            .unwrap();
        let t = store.create_token("ann", None).await.unwrap();
        assert!(t.text.starts_with(&format!("pz_{}_", t.id)), "{}", t.text);
        let ann = store.authenticate(&t.text).await.unwrap();
        assert_eq!((ann.name.as_str(), ann.admin), ("ann", false));
        assert_eq!(ann.groups, vec!["desc".to_string()]);

        let e = store
            .authenticate("pz_000000000000_beef")
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown token");
        let revoked = store.revoke_token(&t.text).await.unwrap();
        assert!(revoked.revoked_unix.is_some());
        let e = store.authenticate(&t.text).await.unwrap_err();
        assert_eq!(e.to_string(), format!("token {} was revoked", t.id));

        let short = store
            .create_token("ann", Some(Duration::from_secs(0)))
            .await
            .unwrap();
        let e = store.authenticate(&short.text).await.unwrap_err();
        assert_eq!(e.to_string(), format!("token {} has expired", short.id));
        let long = store
            .create_token("ann", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        assert!(store.authenticate(&long.text).await.is_ok());
        assert_eq!(store.tokens_of("ann").await.unwrap().len(), 3);

        let e = store.create_token("bob", None).await.unwrap_err();
        assert!(e.to_string().contains("no user 'bob'"), "{e}");
        let e = store.revoke_token("ffffffffffff").await.unwrap_err();
        assert_eq!(e.to_string(), "no token ffffffffffff");
        store.add_user("root", true, &[]).await.unwrap();
        let root = store.create_token("root", None).await.unwrap();
        assert!(store.authenticate(&root.text).await.unwrap().admin);
    }

    #[tokio::test]
    async fn tokens_authenticate_until_revoked_or_expired() {
        let (dir, store) = test_store().await;
        users_and_tokens(&store).await;
        // Only hashes are stored: no token's secret is in the database file.
        let t = store.create_token("ann", None).await.unwrap();
        let bytes = std::fs::read(dir.path().join("pz.sqlite")).unwrap();
        let secret = t.text.rsplit('_').next().unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    /// The same on a real PostgreSQL (see [`PostgresDatabase`]), in a database of its own,
    /// dropped afterwards.
    #[tokio::test]
    async fn tokens_on_postgresql() {
        let database = PostgresDatabase::create().await;
        let url = database.url.clone();
        let store = MetadataStore::open(url.as_str()).await.unwrap();
        if let Some(password) = url.password() {
            assert!(!store.url.contains(password), "{}", store.url);
        }
        users_and_tokens(&store).await;
        // Opening again applies no migration twice.
        let again = MetadataStore::open(url.as_str()).await.unwrap();
        assert_eq!(again.users().await.unwrap().len(), 2);
        drop(store);
        drop(again);
        database.drop_database().await;
    }

    #[tokio::test]
    async fn the_database_outlives_the_process_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = super::super::default_url(dir.path());
        let a = MetadataStore::open(&url).await.unwrap();
        a.add_user("ann", true, &[]).await.unwrap();
        let t = a.create_token("ann", None).await.unwrap();
        drop(a);
        let b = MetadataStore::open(&url).await.unwrap();
        assert!(b.authenticate(&t.text).await.unwrap().admin);
    }
}
