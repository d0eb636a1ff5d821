//! Catalog storage for pz: HATS (HiPSCat) partitioned catalogs as DataFusion tables, the
//! writer that produces them, and the metadata database (users, tokens, and the product
//! store's releases, products, files and columns).

// Test code may use std's maths to make data; what pz computes uses `pz_udfs::math`.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod config;
pub mod hats;
pub mod products;
pub mod resolve;
pub mod store;
pub mod xmatch;

pub use config::PzOptions;
pub use hats::catalog::HatsCatalog;
pub use hats::factory::{HatsInfoFunction, HatsTableFactory, HatsTableFunction};
pub use hats::table::{HatsScanExec, HatsTable};
pub use hats::writer::{write_hats, HatsWriteOptions, HatsWriteSummary};
