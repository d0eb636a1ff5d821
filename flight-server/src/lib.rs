//! Arrow Flight + Flight SQL service for pz (Python/Jupyter clients through pyarrow and ADBC,
//! Rubin Science Platform federation). Not written yet: the crate fixes its place in the
//! dependency graph (flight-server → engine) and its arrow-flight version.

pub use pz_engine::PZ_VERSION;
