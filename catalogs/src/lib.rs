//! Catalog storage for pz: HATS (HiPSCat) partitioned catalogs as DataFusion tables, and the
//! writer that produces them.

pub mod hats;
pub mod xmatch;

pub use hats::catalog::HatsCatalog;
pub use hats::factory::{HatsInfoFunction, HatsTableFactory, HatsTableFunction};
pub use hats::table::{HatsScanExec, HatsTable};
pub use hats::writer::{write_hats, HatsWriteOptions, HatsWriteSummary};
