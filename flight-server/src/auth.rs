//! Who is calling: the `authorization` header of a request, or the Basic credentials of a
//! Handshake, made into a [`Principal`] by an [`Authenticator`].
//!
//! The protocol side (`crate::flight`) only reads headers and asks; where users and tokens
//! live is the authenticator's business, so a test can drive either alone.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::ServeError;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    /// May change what is served (DDL, COPY, CREATE MODEL, ingest); others only read.
    pub admin: bool,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            user: "anonymous".into(),
            admin: false,
        }
    }
}

/// Makes principals of credentials.
#[tonic::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Basic `user:secret` from a Handshake: the principal and the bearer token it uses on
    /// later calls.
    async fn login(&self, user: &str, secret: &str) -> Result<(Principal, String), ServeError>;

    /// The principal a bearer token stands for.
    async fn bearer(&self, token: &str) -> Result<Principal, ServeError>;

    /// The principal of a call with no `authorization` header.
    fn anonymous(&self) -> Result<Principal, ServeError>;
}

/// Credentials an `authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, secret: String },
    Bearer(String),
}

/// Go's Flight client (ADBC) sends Basic credentials unpadded, pyarrow padded: both decode.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads an `authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Credentials, ServeError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(ServeError::Unauthenticated(
                "the authorization header has an empty bearer token".into(),
            ));
        }
        return Ok(Credentials::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let bytes = BASIC.decode(rest).map_err(|_| {
            ServeError::Unauthenticated("Basic credentials that are not base64".into())
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            ServeError::Unauthenticated("Basic credentials that are not UTF-8".into())
        })?;
        let Some((user, secret)) = text.split_once(':') else {
            return Err(ServeError::Unauthenticated(
                "Basic credentials need the form user:token".into(),
            ));
        };
        return Ok(Credentials::Basic {
            user: user.to_string(),
            secret: secret.to_string(),
        });
    }
    Err(ServeError::Unauthenticated(format!(
        "authorization scheme '{scheme}' is not one pz accepts (Basic for a handshake, Bearer otherwise)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_padded_or_not() {
        // "ab:c" is 4 bytes: padded "YWI6Yw==", as Go's RawStdEncoding sends it "YWI6Yw".
        for header in ["Basic YWI6Yw==", "Basic YWI6Yw", "basic  YWI6Yw "] {
            assert_eq!(
                parse_authorization(header).unwrap(),
                Credentials::Basic {
                    user: "ab".into(),
                    secret: "c".into()
                },
                "{header}"
            );
        }
        assert_eq!(
            parse_authorization("Bearer tok").unwrap(),
            Credentials::Bearer("tok".into())
        );
        for bad in ["Bearer ", "Basic !!!", "Basic YWJj", "Token x", ""] {
            let e = parse_authorization(bad).unwrap_err();
            assert!(matches!(e, ServeError::Unauthenticated(_)), "{bad}: {e}");
        }
    }
}
