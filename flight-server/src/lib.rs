//! Arrow Flight and Flight SQL for pz: the tables, views and models of a data directory,
//! served to the clients people install from PyPI (`adbc_driver_flightsql`, `pyarrow.flight`)
//! with no pz-specific code on their side.
//!
//! The parts, each testable alone:
//! - [`flight`]: the gRPC service clients talk to: authentication, one log line per request,
//!   plain Flight (SQL tickets, `ListFlights`, path descriptors), Flight SQL handed on;
//! - [`flight_sql`]: Flight SQL's commands, in and out;
//! - [`backend`]: planning and running statements for a caller, listing tables;
//! - [`policy`]: what a caller who is not an admin may run; [`limits`]: what one query may
//!   take;
//! - [`auth`]: credentials to principals ([`store_auth`]: users and tokens of the metadata
//!   database); [`handle`]: self-contained handles and tickets;
//! - [`executor`]: the runtime queries run on, apart from the one answering gRPC;
//!   [`running`]: the queries running now, for `CancelFlightInfo` and stopping;
//! - [`error`]: the one error type and its gRPC codes; [`server`]: binding, TLS, stopping.

pub mod auth;
pub mod backend;
pub mod error;
pub mod executor;
pub mod flight;
pub mod flight_sql;
pub mod handle;
pub mod limits;
pub mod log;
pub mod plan_cache;
pub mod policy;
pub mod running;
pub mod server;
pub mod store_auth;

pub use auth::{Authenticator, Principal};
pub use error::ServeError;
pub use limits::Limits;
pub use pz_engine::PZ_VERSION;
pub use server::{BoundServer, ServeConfig, TlsIdentity};
