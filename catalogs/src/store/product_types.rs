//! The kinds of product, with pzserver_app's internal names, display names and descriptions,
//! so PZ Server users find the types they know. A fixed list, not a table: the rules of the
//! store (which types take a release or a `pz_code`, which columns a publish needs) are
//! written against it.

use std::fmt;
use std::str::FromStr;

use super::product_contents::Association;
use super::StoreError;

/// A product type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductType {
    RedshiftCatalog,
    TrainingSet,
    ValidationResults,
    PhotozEstimates,
    TrainingResults,
    ObjectCatalog,
    Other,
}

impl ProductType {
    /// Every type, in pzserver_app's display order.
    pub const ALL: [ProductType; 7] = [
        ProductType::RedshiftCatalog,
        ProductType::TrainingSet,
        ProductType::TrainingResults,
        ProductType::ValidationResults,
        ProductType::PhotozEstimates,
        ProductType::ObjectCatalog,
        ProductType::Other,
    ];

    /// The internal name: what the database, the protocol and filters use.
    pub fn name(self) -> &'static str {
        match self {
            ProductType::RedshiftCatalog => "redshift_catalog",
            ProductType::TrainingSet => "training_set",
            ProductType::ValidationResults => "validation_results",
            ProductType::PhotozEstimates => "photoz_estimates",
            ProductType::TrainingResults => "training_results",
            ProductType::ObjectCatalog => "object_catalog",
            ProductType::Other => "other",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProductType::RedshiftCatalog => "Reference Redshift Catalog",
            ProductType::TrainingSet => "Training Set",
            ProductType::ValidationResults => "Validation Results",
            ProductType::PhotozEstimates => "Photo-z Estimates",
            ProductType::TrainingResults => "Training Results",
            ProductType::ObjectCatalog => "Objects Catalog",
            ProductType::Other => "Other",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ProductType::RedshiftCatalog => {
                "Catalog of reference redshifts and positions of galaxies (usually spectroscopic \
                 redshifts and equatorial coordinates)."
            }
            ProductType::TrainingSet => {
                "Training set for photo-z algorithms (tabular data). It usually contains \
                 magnitudes, errors, and reference redshifts."
            }
            ProductType::ValidationResults => {
                "Results of a photo-z validation procedure (free format). Usually contains photo-z \
                 estimates (single estimates and/or pdf) of a validation set and photo-z \
                 validation metrics."
            }
            ProductType::PhotozEstimates => {
                "Results of a photo-z estimation procedure (usually the output of RAIL's estimate \
                 stage)."
            }
            ProductType::TrainingResults => {
                "Any file(s) resulting from the training of machine learning algorithms (free \
                 format), e.g. the output of a RAIL inform stage."
            }
            ProductType::ObjectCatalog => "Catalog of objects.",
            ProductType::Other => "Any file(s).",
        }
    }

    /// Whether a product of this type may belong to a release: a reference redshift
    /// catalog gathers redshifts from surveys, it is not part of one data release.
    pub fn takes_release(self) -> bool {
        self != ProductType::RedshiftCatalog
    }

    /// Whether a product of this type may name the photo-z code that made it: these types
    /// are inputs of a photo-z code, not its output.
    pub fn takes_pz_code(self) -> bool {
        !matches!(
            self,
            ProductType::TrainingSet | ProductType::TrainingResults | ProductType::RedshiftCatalog
        )
    }

    /// The column associations a product of this type needs before it is published: what
    /// `products_std` and the pipelines read it by.
    pub fn required_associations(self) -> &'static [Association] {
        match self {
            ProductType::RedshiftCatalog => &[Association::Ra, Association::Dec, Association::Z],
            ProductType::ObjectCatalog => &[Association::Ra, Association::Dec],
            ProductType::TrainingSet => &[Association::Z],
            _ => &[],
        }
    }

    fn valid_names() -> String {
        ProductType::ALL
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ProductType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProductType {
    type Err = StoreError;

    /// The type with internal name `s`; an unknown name is an error naming it and the
    /// valid ones.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        ProductType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown product type '{s}' (one of: {})",
                    ProductType::valid_names()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_by_internal_name_and_unknown_ones_are_named() {
        for t in ProductType::ALL {
            assert_eq!(t.name().parse::<ProductType>().unwrap(), t);
            assert_eq!(t.to_string(), t.name());
            assert!(!t.display_name().is_empty() && !t.description().is_empty());
        }
        let e = "specz_catalog".parse::<ProductType>().unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)));
        assert_eq!(
            e.to_string(),
            "unknown product type 'specz_catalog' (one of: redshift_catalog, training_set, \
             training_results, validation_results, photoz_estimates, object_catalog, other)"
        );
        assert_eq!(
            ProductType::RedshiftCatalog.display_name(),
            "Reference Redshift Catalog"
        );
        assert!(!ProductType::RedshiftCatalog.takes_release());
        assert!(ProductType::TrainingSet.takes_release());
        for t in [
            ProductType::TrainingSet,
            ProductType::TrainingResults,
            ProductType::RedshiftCatalog,
        ] {
            assert!(!t.takes_pz_code(), "{t}");
        }
        assert!(ProductType::PhotozEstimates.takes_pz_code());
        assert_eq!(
            ProductType::ObjectCatalog.required_associations(),
            &[Association::Ra, Association::Dec]
        );
        assert!(ProductType::Other.required_associations().is_empty());
    }
}
