//! The `pz_releases` and `pz_release_groups` tables: data releases (e.g. Rubin's `dp1`)
//! and who may see a private one. Admins make releases and set their groups; everyone
//! sees the releases they may see (`sql::release_visible`), the others do not exist for
//! them.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::users::check_name;
use super::{now_unix, sql, MetadataStore, StoreError};

/// A data release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub display_name: String,
    /// Markdown.
    pub description: String,
    /// Seen by everyone when true; otherwise by members of `access_groups` (and admins).
    pub is_public: bool,
    pub access_groups: Vec<String>,
    pub created_unix: i64,
}

/// What a new release is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub is_public: bool,
    pub access_groups: Vec<String>,
}

impl NewRelease {
    /// A private release with no access group (so only admins see it until groups are set).
    pub fn new(name: &str, display_name: &str) -> Self {
        NewRelease {
            name: name.to_string(),
            display_name: display_name.to_string(),
            description: String::new(),
            is_public: false,
            access_groups: Vec::new(),
        }
    }
}

/// `groups` checked, sorted and without repeats.
fn checked_groups(groups: &[String]) -> Result<Vec<String>, StoreError> {
    for g in groups {
        check_name("group", g)?;
    }
    let mut out = groups.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

async fn release_of_row(conn: &mut AnyConnection, row: &AnyRow) -> Result<Release, StoreError> {
    let name: String = row.try_get(0)?;
    let access_groups = sqlx::query(sql::SELECT_RELEASE_GROUPS)
        .bind(name.clone())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Release {
        name,
        display_name: row.try_get(1)?,
        description: row.try_get(2)?,
        is_public: row.try_get::<i64, _>(3)? != 0,
        access_groups,
        created_unix: row.try_get(4)?,
    })
}

async fn insert_groups(
    conn: &mut AnyConnection,
    release: &str,
    groups: &[String],
) -> Result<(), StoreError> {
    for g in groups {
        sqlx::query(sql::INSERT_RELEASE_GROUP)
            .bind(release.to_string())
            .bind(g.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl MetadataStore {
    /// Refuses a caller who is not an admin, for what only admins do.
    async fn require_admin(&self, caller: &str, what: &str) -> Result<(), StoreError> {
        match self.user(caller).await? {
            Some(u) if u.admin => Ok(()),
            _ => Err(StoreError::PermissionDenied(format!(
                "only an admin may {what}"
            ))),
        }
    }

    /// Creates a release (admins only).
    pub async fn create_release(
        &self,
        caller: &str,
        new: &NewRelease,
    ) -> Result<Release, StoreError> {
        self.require_admin(caller, "create releases").await?;
        check_name("release", &new.name)?;
        let display_name = new.display_name.trim();
        if display_name.is_empty() || display_name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "display_name '{}' of release '{}' must not be empty or hold control characters",
                new.display_name, new.name
            )));
        }
        let access_groups = checked_groups(&new.access_groups)?;
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query(sql::SELECT_RELEASE_NAME)
            .bind(new.name.clone())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::Exists(format!(
                "release '{}' already exists",
                new.name
            )));
        }
        let release = Release {
            name: new.name.clone(),
            display_name: display_name.to_string(),
            description: new.description.clone(),
            is_public: new.is_public,
            access_groups,
            created_unix: now_unix(),
        };
        sqlx::query(sql::INSERT_RELEASE)
            .bind(release.name.clone())
            .bind(release.display_name.clone())
            .bind(release.description.clone())
            .bind(release.is_public as i64)
            .bind(release.created_unix)
            .execute(&mut *tx)
            .await?;
        insert_groups(&mut tx, &release.name, &release.access_groups).await?;
        tx.commit().await?;
        Ok(release)
    }

    /// The releases the caller may see, by name.
    pub async fn releases(&self, caller: &str) -> Result<Vec<Release>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(sql::SELECT_VISIBLE_RELEASES)
            .bind(caller.to_string())
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(release_of_row(&mut conn, row).await?);
        }
        Ok(out)
    }

    /// Release `name`, if the caller may see it.
    pub async fn release(&self, caller: &str, name: &str) -> Result<Release, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(sql::SELECT_VISIBLE_RELEASE)
            .bind(caller.to_string())
            .bind(name.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no release '{name}'")))?;
        release_of_row(&mut conn, &row).await
    }

    /// Replaces the access groups of a release (admins only).
    pub async fn set_release_groups(
        &self,
        caller: &str,
        name: &str,
        groups: &[String],
    ) -> Result<Release, StoreError> {
        self.require_admin(caller, "set the access groups of a release")
            .await?;
        let groups = checked_groups(groups)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(sql::SELECT_VISIBLE_RELEASE)
            .bind(caller.to_string())
            .bind(name.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no release '{name}'")))?;
        sqlx::query(sql::DELETE_RELEASE_GROUPS)
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        insert_groups(&mut tx, name, &groups).await?;
        let release = release_of_row(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(release)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_people, on_sqlite_and_postgres};
    use super::*;

    fn names(releases: &[Release]) -> Vec<&str> {
        releases.iter().map(|r| r.name.as_str()).collect()
    }

    #[tokio::test]
    async fn admins_make_releases_and_each_caller_sees_theirs() {
        on_sqlite_and_postgres(|store| async move {
            add_people(&store).await;
            let dp1 = store
                .create_release(
                    "root",
                    &NewRelease {
                        description: "Rubin's *first* look".into(),
                        is_public: true,
                        ..NewRelease::new("dp1", "Data Preview 1")
                    },
                )
                .await
                .unwrap();
            assert!(dp1.is_public && dp1.access_groups.is_empty());
            let dc2 = store
                .create_release(
                    "root",
                    &NewRelease {
                        access_groups: vec!["desc".into(), "rubin".into(), "desc".into()],
                        ..NewRelease::new("dc2", "DESC DC2")
                    },
                )
                .await
                .unwrap();
            assert_eq!(
                dc2.access_groups,
                vec!["desc".to_string(), "rubin".to_string()]
            );
            store
                .create_release("root", &NewRelease::new("staging", "Not yet shared"))
                .await
                .unwrap();

            assert_eq!(
                names(&store.releases("root").await.unwrap()),
                vec!["dc2", "dp1", "staging"]
            );
            assert_eq!(
                names(&store.releases("ann").await.unwrap()),
                vec!["dc2", "dp1"]
            );
            assert_eq!(names(&store.releases("bob").await.unwrap()), vec!["dp1"]);
            assert_eq!(
                names(&store.releases("anonymous").await.unwrap()),
                vec!["dp1"]
            );
            assert_eq!(store.release("ann", "dc2").await.unwrap(), dc2);
            assert_eq!(store.release("bob", "dp1").await.unwrap(), dp1);
            // Hidden and nonexistent read the same.
            let hidden = store.release("bob", "dc2").await.unwrap_err();
            let absent = store.release("bob", "dr9").await.unwrap_err();
            assert!(matches!(hidden, StoreError::NotFound(_)));
            assert_eq!(hidden.to_string(), "no release 'dc2'");
            assert_eq!(absent.to_string(), "no release 'dr9'");

            // Only admins create releases or change their groups.
            let e = store
                .create_release("ann", &NewRelease::new("mine", "Mine"))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::PermissionDenied(_)), "{e}");
            assert_eq!(e.to_string(), "only an admin may create releases");
            let e = store
                .set_release_groups("ann", "dc2", &["lsst".into()])
                .await
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "only an admin may set the access groups of a release"
            );
            let changed = store
                .set_release_groups("root", "staging", &["lsst".into()])
                .await
                .unwrap();
            assert_eq!(changed.access_groups, vec!["lsst".to_string()]);
            assert_eq!(
                names(&store.releases("bob").await.unwrap()),
                vec!["dp1", "staging"]
            );
            assert_eq!(
                names(&store.releases("ann").await.unwrap()),
                vec!["dc2", "dp1"]
            );
            let e = store
                .set_release_groups("root", "dr9", &[])
                .await
                .unwrap_err();
            assert_eq!(e.to_string(), "no release 'dr9'");

            // One name once; names and groups as user names are.
            let e = store
                .create_release("root", &NewRelease::new("dp1", "Again"))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Exists(_)), "{e}");
            assert_eq!(e.to_string(), "release 'dp1' already exists");
            let e = store
                .create_release("root", &NewRelease::new("dp 2", "x"))
                .await
                .unwrap_err();
            assert!(
                e.to_string().starts_with("release name 'dp 2' must be"),
                "{e}"
            );
            let e = store
                .create_release(
                    "root",
                    &NewRelease {
                        access_groups: vec!["a;b".into()],
                        ..NewRelease::new("dp2", "x")
                    },
                )
                .await
                .unwrap_err();
            assert!(e.to_string().starts_with("group name 'a;b' must be"), "{e}");
            let e = store
                .create_release("root", &NewRelease::new("dp2", " "))
                .await
                .unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("display_name ' ' of release 'dp2'"),
                "{e}"
            );
        })
        .await;
    }
}
