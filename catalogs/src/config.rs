//! pz's session settings, as a DataFusion config extension under the `pz.` prefix:
//! `SET pz.crossmatch_max_radius_arcsec = 300`. Being part of the session's `ConfigOptions`,
//! they are listed by `SHOW ALL` and travel with the session's settings to Ballista's
//! scheduler and executors.

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{config_err, plan_err, Result};

/// Environment variable that gives `pz.crossmatch_max_radius_arcsec` its default.
pub const MAX_RADIUS_ENV: &str = "PZ_CROSSMATCH_MAX_RADIUS_ARCSEC";

/// Largest cross-match radius (arcsec) when neither the setting nor the variable says.
pub const DEFAULT_MAX_RADIUS_ARCSEC: f64 = 60.0;

const MAX_RADIUS_KEY: &str = "crossmatch_max_radius_arcsec";

/// The `pz.*` settings of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct PzOptions {
    /// Largest `radius_arcsec` `crossmatch` accepts.
    pub crossmatch_max_radius_arcsec: f64,
    /// A `PZ_CROSSMATCH_MAX_RADIUS_ARCSEC` that is not a radius, kept so the first
    /// cross-match that relies on the default says so instead of quietly using 60″.
    pub max_radius_env_error: Option<String>,
}

impl Default for PzOptions {
    /// The defaults, `PZ_CROSSMATCH_MAX_RADIUS_ARCSEC` included, read now.
    fn default() -> Self {
        Self::from_env_value(std::env::var(MAX_RADIUS_ENV).ok().as_deref())
    }
}

impl PzOptions {
    /// The defaults given the variable's value (`None`: unset). Pure, for tests.
    pub fn from_env_value(value: Option<&str>) -> Self {
        let mut out = PzOptions {
            crossmatch_max_radius_arcsec: DEFAULT_MAX_RADIUS_ARCSEC,
            max_radius_env_error: None,
        };
        if let Some(v) = value {
            match parse_radius(v) {
                Some(r) => out.crossmatch_max_radius_arcsec = r,
                None => {
                    out.max_radius_env_error = Some(format!(
                        "{MAX_RADIUS_ENV}='{v}' is not a radius in arcsec (a finite number > 0)"
                    ))
                }
            }
        }
        out
    }

    /// The maximum radius, or the error a bad environment default left behind.
    pub fn max_radius_arcsec(&self) -> Result<f64> {
        match &self.max_radius_env_error {
            Some(e) => plan_err!("{e}; fix it, or SET pz.{MAX_RADIUS_KEY}"),
            None => Ok(self.crossmatch_max_radius_arcsec),
        }
    }
}

fn parse_radius(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
}

impl ConfigExtension for PzOptions {
    const PREFIX: &'static str = "pz";
}

impl ExtensionOptions for PzOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            MAX_RADIUS_KEY => {
                let Some(r) = parse_radius(value) else {
                    return config_err!(
                        "pz.{MAX_RADIUS_KEY} must be a radius in arcsec (a finite number > 0), got '{value}'"
                    );
                };
                self.crossmatch_max_radius_arcsec = r;
                // An explicit value replaces the environment's, good or bad.
                self.max_radius_env_error = None;
                Ok(())
            }
            _ => config_err!("unknown pz setting 'pz.{key}' (known: pz.{MAX_RADIUS_KEY})"),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.{MAX_RADIUS_KEY}", Self::PREFIX),
            value: Some(self.crossmatch_max_radius_arcsec.to_string()),
            description: "Largest radius_arcsec crossmatch() accepts; defaults to \
                          $PZ_CROSSMATCH_MAX_RADIUS_ARCSEC, else 60",
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionConfig;

    #[test]
    fn env_value_is_the_default() {
        assert_eq!(
            PzOptions::from_env_value(None).max_radius_arcsec().unwrap(),
            60.0
        );
        assert_eq!(
            PzOptions::from_env_value(Some(" 300 "))
                .max_radius_arcsec()
                .unwrap(),
            300.0
        );
        for bad in ["abc", "0", "-5", "NaN", "inf", ""] {
            let e = PzOptions::from_env_value(Some(bad))
                .max_radius_arcsec()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(MAX_RADIUS_ENV) && e.contains(&format!("'{bad}'")),
                "{e}"
            );
        }
    }

    #[test]
    fn set_validates_and_overrides_a_bad_env() {
        let mut o = PzOptions::from_env_value(Some("abc"));
        let e = o.set(MAX_RADIUS_KEY, "-1").unwrap_err().to_string();
        assert!(
            e.contains("pz.crossmatch_max_radius_arcsec") && e.contains("'-1'"),
            "{e}"
        );
        o.set(MAX_RADIUS_KEY, "120").unwrap();
        assert_eq!(o.max_radius_arcsec().unwrap(), 120.0);
        let e = o.set("nope", "1").unwrap_err().to_string();
        assert!(e.contains("pz.nope"), "{e}");
    }

    #[test]
    fn settings_round_trip_through_key_values() {
        // What Ballista does: the client's entries, set one by one on the other side's config.
        let mut a = SessionConfig::new().with_option_extension(PzOptions::from_env_value(None));
        a.options_mut()
            .set("pz.crossmatch_max_radius_arcsec", "300")
            .unwrap();
        let mut b = SessionConfig::new().with_option_extension(PzOptions::from_env_value(None));
        for e in a.options().entries() {
            if let Some(v) = e.value {
                if e.key.starts_with("pz.") {
                    b.options_mut().set(&e.key, &v).unwrap();
                }
            }
        }
        let got = b.options().extensions.get::<PzOptions>().unwrap();
        assert_eq!(got.crossmatch_max_radius_arcsec, 300.0);
    }
}
