//! The `pz_users` and `pz_user_groups` tables.

use sqlx::Row;

use super::{now_unix, sql, MetadataStore, StoreError};

/// A user of a pz server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub admin: bool,
    pub groups: Vec<String>,
    pub created_unix: i64,
}

/// A user or group name: what shell scripts and headers can carry without quoting.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} name '{name}' must be 1-64 characters of letters, digits, '_', '-', '.', '@'"
        )))
    }
}

impl MetadataStore {
    /// Adds a user (an error if the name is taken).
    pub async fn add_user(
        &self,
        name: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<User, StoreError> {
        check_name("user", name)?;
        for g in groups {
            check_name("group", g)?;
        }
        if self.user(name).await?.is_some() {
            return Err(StoreError::Exists(format!("user '{name}' already exists")));
        }
        let created = now_unix();
        let mut tx = self.pool().begin().await?;
        sqlx::query(sql::INSERT_USER)
            .bind(name.to_string())
            .bind(admin as i64)
            .bind(created)
            .execute(&mut *tx)
            .await?;
        let mut groups: Vec<String> = groups.to_vec();
        groups.sort();
        groups.dedup();
        for g in &groups {
            sqlx::query(sql::INSERT_USER_GROUP)
                .bind(name.to_string())
                .bind(g.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(User {
            name: name.to_string(),
            admin,
            groups,
            created_unix: created,
        })
    }

    /// The user called `name`, if there is one.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let Some(row) = sqlx::query(sql::SELECT_USER)
            .bind(name.to_string())
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.user_of_row(&row).await?))
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sql::SELECT_USERS)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.user_of_row(row).await?);
        }
        Ok(out)
    }

    async fn user_of_row(&self, row: &sqlx::any::AnyRow) -> Result<User, StoreError> {
        let name: String = row.try_get(0)?;
        let groups = sqlx::query(sql::SELECT_USER_GROUPS)
            .bind(name.clone())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(User {
            name,
            admin: row.try_get::<i64, _>(1)? != 0,
            groups,
            created_unix: row.try_get(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_store;
    use super::*;

    #[tokio::test]
    async fn users_are_added_once_and_listed_with_their_groups() {
        let (_d, store) = test_store().await;
        let ann = store
            .add_user("ann", false, &["desc".into(), "lsst".into(), "desc".into()])
            .await
            .unwrap();
        assert_eq!(ann.groups, vec!["desc".to_string(), "lsst".to_string()]);
        store.add_user("root", true, &[]).await.unwrap();
        let e = store
            .add_user("ann", true, &[])
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "user 'ann' already exists");
        let all = store.users().await.unwrap();
        assert_eq!(
            all.iter()
                .map(|u| (u.name.as_str(), u.admin))
                .collect::<Vec<_>>(),
            vec![("ann", false), ("root", true)]
        );
        assert_eq!(store.user("ann").await.unwrap().unwrap(), ann);
        assert!(store.user("bob").await.unwrap().is_none());
        for bad in ["", "a b", "x'; DROP TABLE pz_users; --", &"n".repeat(65)] {
            let e = store.add_user(bad, false, &[]).await.unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{bad}: {e}");
        }
        let e = store
            .add_user("bob", false, &["a b".into()])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("group name 'a b'"), "{e}");
    }
}
