//! [`Authenticator`] over pz's metadata database: users and their API tokens.

use pz_catalogs::store::MetadataStore;

use crate::auth::{Authenticator, Principal};
use crate::error::ServeError;

/// Tokens from `pz token create`; anonymous callers only when `allow_anonymous`.
pub struct StoreAuthenticator {
    store: MetadataStore,
    allow_anonymous: bool,
}

impl StoreAuthenticator {
    pub fn new(store: MetadataStore, allow_anonymous: bool) -> Self {
        StoreAuthenticator {
            store,
            allow_anonymous,
        }
    }
}

#[tonic::async_trait]
impl Authenticator for StoreAuthenticator {
    async fn login(&self, user: &str, secret: &str) -> Result<(Principal, String), ServeError> {
        // Basic credentials are a user name and one of that user's tokens; the token is
        // then the bearer credential of later calls.
        let owner = self
            .store
            .authenticate(secret)
            .await
            .map_err(ServeError::from)?;
        if owner.name != user {
            return Err(ServeError::Unauthenticated(format!(
                "the token given is not one of user '{user}'"
            )));
        }
        Ok((
            Principal {
                user: owner.name,
                admin: owner.admin,
            },
            secret.to_string(),
        ))
    }

    async fn bearer(&self, token: &str) -> Result<Principal, ServeError> {
        let owner = self
            .store
            .authenticate(token)
            .await
            .map_err(ServeError::from)?;
        Ok(Principal {
            user: owner.name,
            admin: owner.admin,
        })
    }

    fn anonymous(&self) -> Result<Principal, ServeError> {
        if self.allow_anonymous {
            Ok(Principal::anonymous())
        } else {
            Err(ServeError::Unauthenticated(
                "no credentials: send 'authorization: Bearer <token>' (pz token create) or a Basic handshake with user and token; this server does not serve anonymous callers".into(),
            ))
        }
    }
}
