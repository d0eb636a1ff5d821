//! The server's one error type, and the one place it becomes a gRPC status.

use datafusion::error::DataFusionError;
use tonic::{Code, Status};

/// What went wrong with a request, in the class its gRPC status code says.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request itself is wrong: SQL that does not parse or plan, a bad ticket.
    #[error("{0}")]
    InvalidArgument(String),
    /// A table, schema or catalog the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller is not known: no, a bad, a revoked or an expired token.
    #[error("{0}")]
    Unauthenticated(String),
    /// A limit was reached (memory, concurrent queries).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The query ran past its wall-time limit.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// What the request would make exists already (a table an ingest would create).
    #[error("{0}")]
    AlreadyExists(String),
    /// The query was cancelled by its client.
    #[error("{0}")]
    Cancelled(String),
    /// The server cannot take the request now (it is stopping).
    #[error("{0}")]
    Unavailable(String),
    /// Part of Flight or Flight SQL pz does not serve.
    #[error("{0}")]
    Unimplemented(String),
    /// pz's fault, not the caller's.
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    pub fn code(&self) -> Code {
        match self {
            ServeError::InvalidArgument(_) => Code::InvalidArgument,
            ServeError::NotFound(_) => Code::NotFound,
            ServeError::PermissionDenied(_) => Code::PermissionDenied,
            ServeError::Unauthenticated(_) => Code::Unauthenticated,
            ServeError::ResourceExhausted(_) => Code::ResourceExhausted,
            ServeError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ServeError::AlreadyExists(_) => Code::AlreadyExists,
            ServeError::Cancelled(_) => Code::Cancelled,
            ServeError::Unavailable(_) => Code::Unavailable,
            ServeError::Unimplemented(_) => Code::Unimplemented,
            ServeError::Internal(_) => Code::Internal,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        ServeError::InvalidArgument(msg.into())
    }

    fn of_code(code: Code, msg: String) -> Self {
        match code {
            Code::NotFound => ServeError::NotFound(msg),
            Code::PermissionDenied => ServeError::PermissionDenied(msg),
            Code::Unauthenticated => ServeError::Unauthenticated(msg),
            Code::ResourceExhausted => ServeError::ResourceExhausted(msg),
            Code::DeadlineExceeded => ServeError::DeadlineExceeded(msg),
            Code::AlreadyExists => ServeError::AlreadyExists(msg),
            Code::Cancelled => ServeError::Cancelled(msg),
            Code::Unavailable => ServeError::Unavailable(msg),
            Code::Unimplemented => ServeError::Unimplemented(msg),
            Code::Internal => ServeError::Internal(msg),
            _ => ServeError::InvalidArgument(msg),
        }
    }
}

impl From<ServeError> for Status {
    fn from(e: ServeError) -> Status {
        let code = e.code();
        Status::new(code, e.to_string())
    }
}

impl From<arrow::error::ArrowError> for ServeError {
    fn from(e: arrow::error::ArrowError) -> Self {
        ServeError::from(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<arrow_flight::error::FlightError> for ServeError {
    fn from(e: arrow_flight::error::FlightError) -> Self {
        use arrow_flight::error::FlightError;
        match e {
            FlightError::Arrow(a) => ServeError::from(a),
            FlightError::Tonic(status) => ServeError::Internal(status.message().to_string()),
            other => ServeError::Internal(other.to_string()),
        }
    }
}

impl From<pz_catalogs::store::StoreError> for ServeError {
    /// The metadata store's classes, as clients see them. A product or release the caller
    /// may not see is NotFound in the store already, with the words of one that does not
    /// exist.
    fn from(e: pz_catalogs::store::StoreError) -> Self {
        use pz_catalogs::store::StoreError as E;
        match e {
            E::Invalid(m) => ServeError::InvalidArgument(m),
            E::NotFound(m) => ServeError::NotFound(m),
            E::Exists(m) => ServeError::AlreadyExists(m),
            E::PermissionDenied(m) => ServeError::PermissionDenied(m),
            E::Unauthenticated(m) => ServeError::Unauthenticated(m),
            E::Quota(m) => ServeError::ResourceExhausted(m),
            other @ (E::Open { .. } | E::Migrate { .. } | E::Query(_) | E::Storage(_)) => {
                ServeError::Internal(other.to_string())
            }
        }
    }
}

impl From<DataFusionError> for ServeError {
    /// By the class of the innermost error; the message is the whole chain, as DataFusion
    /// prints it (context such as the file or column included).
    fn from(e: DataFusionError) -> Self {
        // A ServeError carried through a stream (a limit reached) keeps its class and words.
        if let Some(inner) = carried(&e) {
            return ServeError::of_code(inner.code(), inner.to_string());
        }
        let message = e.to_string();
        match class_of(&e) {
            Code::NotFound => ServeError::NotFound(message),
            Code::ResourceExhausted => ServeError::ResourceExhausted(message),
            Code::Unimplemented => ServeError::Unimplemented(message),
            Code::Internal => ServeError::Internal(message),
            _ => ServeError::InvalidArgument(message),
        }
    }
}

fn carried(e: &DataFusionError) -> Option<&ServeError> {
    match e {
        DataFusionError::External(inner) => inner.downcast_ref::<ServeError>(),
        DataFusionError::Context(_, inner) => carried(inner),
        DataFusionError::Shared(inner) => carried(inner),
        _ => None,
    }
}

fn class_of(e: &DataFusionError) -> Code {
    match e {
        DataFusionError::Context(_, inner) => class_of(inner),
        DataFusionError::Shared(inner) => class_of(inner),
        DataFusionError::Diagnostic(_, inner) => class_of(inner),
        DataFusionError::Collection(all) => all.first().map(class_of).unwrap_or(Code::Internal),
        DataFusionError::External(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(df) => class_of(df),
            None => Code::Internal,
        },
        DataFusionError::Plan(msg) if is_missing_table(msg) => Code::NotFound,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::Internal(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => Code::Internal,
        _ => Code::InvalidArgument,
    }
}

/// DataFusion's planner: "table 'datafusion.public.x' not found".
fn is_missing_table(msg: &str) -> bool {
    msg.starts_with("table '") && msg.ends_with("' not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::plan_datafusion_err;

    #[test]
    fn errors_map_to_the_codes_clients_see() {
        let missing = plan_datafusion_err!("table 'datafusion.public.nosuch' not found");
        assert_eq!(
            Status::from(ServeError::from(missing)).code(),
            Code::NotFound
        );
        let bad = plan_datafusion_err!("No field named x");
        assert_eq!(
            Status::from(ServeError::from(bad)).code(),
            Code::InvalidArgument
        );
        let wrapped = DataFusionError::Context(
            "reading objects".into(),
            Box::new(DataFusionError::ResourcesExhausted("memory".into())),
        );
        let s = Status::from(ServeError::from(wrapped));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("reading objects"), "{}", s.message());
    }

    #[test]
    fn store_errors_map_to_the_codes_clients_see() {
        use pz_catalogs::store::StoreError as E;
        for (e, code) in [
            (E::Invalid("bad".into()), Code::InvalidArgument),
            (E::NotFound("no product 7".into()), Code::NotFound),
            (E::Exists("taken".into()), Code::AlreadyExists),
            (
                E::PermissionDenied("not yours".into()),
                Code::PermissionDenied,
            ),
            (E::Unauthenticated("revoked".into()), Code::Unauthenticated),
            (E::Quota("over quota".into()), Code::ResourceExhausted),
        ] {
            let words = e.to_string();
            let s = Status::from(ServeError::from(e));
            assert_eq!(s.code(), code, "{words}");
            assert_eq!(s.message(), words);
        }
    }
}
