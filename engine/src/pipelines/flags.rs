//! Homogenising redshift quality flags across surveys (Combine Redshift Catalogs).

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use serde::Deserialize;

/// The translation pz ships; `--translation` replaces it.
pub const DEFAULT_TRANSLATION: &str = include_str!("../../data/flag_translation.yaml");

#[derive(Debug, Deserialize)]
struct FileFormat {
    surveys: BTreeMap<String, SurveyRaw>,
}

#[derive(Debug, Deserialize)]
struct SurveyRaw {
    instrument_type: String,
    #[serde(default)]
    values: BTreeMap<String, i32>,
    #[serde(default)]
    rules: Vec<RuleRaw>,
}

#[derive(Debug, Deserialize)]
struct RuleRaw {
    when: String,
    value: i32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cond {
    Cmp(&'static str, f64),
    Between(f64, f64),
}

impl Cond {
    fn parse(s: &str) -> Option<Cond> {
        let t: Vec<&str> = s.split_whitespace().collect();
        match t.as_slice() {
            ["between", a, b] => Some(Cond::Between(a.parse().ok()?, b.parse().ok()?)),
            [op, v] => {
                let op = ["==", "!=", "<=", ">=", "<", ">"]
                    .into_iter()
                    .find(|o| o == op)?;
                Some(Cond::Cmp(op, v.parse().ok()?))
            }
            _ => None,
        }
    }

    fn holds(&self, x: f64) -> bool {
        match *self {
            Cond::Between(a, b) => x >= a && x <= b,
            Cond::Cmp(op, v) => match op {
                "==" => x == v,
                "!=" => x != v,
                "<=" => x <= v,
                ">=" => x >= v,
                "<" => x < v,
                _ => x > v,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct SurveyRule {
    pub name: String,
    pub instrument_type: char,
    values: Vec<(f64, i32)>,
    rules: Vec<(Cond, i32)>,
}

impl SurveyRule {
    /// The homogenized flag of a survey flag value.
    pub fn flag(&self, v: f64) -> Option<i32> {
        self.values
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, h)| *h)
            .or_else(|| self.rules.iter().find(|(c, _)| c.holds(v)).map(|(_, h)| *h))
    }
}

/// Translation rules by survey (keys lower-cased).
#[derive(Debug, Clone)]
pub struct Translation {
    pub source: String,
    surveys: BTreeMap<String, SurveyRule>,
}

pub const VALID_FLAGS: [i32; 6] = [0, 1, 2, 3, 4, 6];

impl Translation {
    pub fn default_rules() -> Result<Self> {
        Self::parse(DEFAULT_TRANSLATION, "pz's default flag translation")
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let raw: FileFormat = serde_saphyr::from_str(text)
            .map_err(|e| plan_datafusion_err!("{source}: not a flag translation file: {e}"))?;
        let mut surveys = BTreeMap::new();
        for (name, s) in raw.surveys {
            let it = match s.instrument_type.trim() {
                "s" => 's',
                "g" => 'g',
                "p" => 'p',
                other => {
                    return plan_err!(
                        "{source}: survey '{name}': instrument_type '{other}' is not s, g or p"
                    )
                }
            };
            let mut values = Vec::new();
            for (k, v) in s.values {
                let key: f64 = k.trim().parse().map_err(|_| {
                    plan_datafusion_err!(
                        "{source}: survey '{name}': flag value '{k}' is not a number"
                    )
                })?;
                if !VALID_FLAGS.contains(&v) {
                    return plan_err!(
                        "{source}: survey '{name}': {k} maps to {v}, not one of 0, 1, 2, 3, 4, 6"
                    );
                }
                values.push((key, v));
            }
            let mut rules = Vec::new();
            for r in s.rules {
                let c = Cond::parse(&r.when).ok_or_else(|| {
                    plan_datafusion_err!(
                        "{source}: survey '{name}': bad rule '{}' (use an operator ==, !=, <, <=, >, >= and a number, or 'between A B')",
                        r.when
                    )
                })?;
                if !VALID_FLAGS.contains(&r.value) {
                    return plan_err!("{source}: survey '{name}': rule '{}' gives {}, not one of 0, 1, 2, 3, 4, 6", r.when, r.value);
                }
                rules.push((c, r.value));
            }
            surveys.insert(
                name.to_lowercase(),
                SurveyRule {
                    name,
                    instrument_type: it,
                    values,
                    rules,
                },
            );
        }
        Ok(Translation {
            source: source.to_string(),
            surveys,
        })
    }

    pub fn survey(&self, name: &str) -> Option<&SurveyRule> {
        self.surveys.get(&name.trim().to_lowercase())
    }
}

/// A quality-like flag in [0, 1]: 0→0, (0, 0.7)→1, [0.7, 0.9)→2, [0.9, 0.99)→3, [0.99, 1]→4.
pub fn quality_flag(q: f64) -> Option<i32> {
    Some(match q {
        0.0 => 0,
        q if q > 0.0 && q < 0.7 => 1,
        q if (0.7..0.9).contains(&q) => 2,
        q if (0.9..0.99).contains(&q) => 3,
        q if (0.99..=1.0).contains(&q) => 4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_parse_and_apply() {
        let t = Translation::default_rules().unwrap();
        let v = t.survey("vvds").unwrap();
        assert_eq!(
            (v.flag(4.0), v.flag(9.0), v.flag(23.0), v.flag(7.0)),
            (Some(4), Some(2), Some(3), None)
        );
        let d = t.survey("DESI").unwrap();
        assert_eq!(
            (d.flag(0.0), d.flag(4.0), d.flag(7.0)),
            (Some(4), Some(4), Some(0))
        );
        assert_eq!(t.survey("zcosmos").unwrap().flag(3.5), Some(4));
        assert_eq!(t.survey("PRIMUS").unwrap().instrument_type, 'p');
        assert!(t.survey("nope").is_none());
    }

    #[test]
    fn quality_flags() {
        assert_eq!(quality_flag(0.0), Some(0));
        assert_eq!(quality_flag(0.5), Some(1));
        assert_eq!(quality_flag(0.7), Some(2));
        assert_eq!(quality_flag(0.95), Some(3));
        assert_eq!(quality_flag(1.0), Some(4));
        assert_eq!(quality_flag(1.5), None);
    }

    #[test]
    fn bad_files_are_named() {
        let e = Translation::parse("surveys:\n  X:\n    instrument_type: q\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.yaml") && e.contains("'X'") && e.contains("'q'"),
            "{e}"
        );
        let e = Translation::parse("surveys:\n  X:\n    instrument_type: s\n    rules:\n      - {when: \"~ 3\", value: 4}\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad rule '~ 3'"), "{e}");
        let e = Translation::parse(
            "surveys:\n  X:\n    instrument_type: s\n    values: {1: 5}\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("maps to 5"), "{e}");
        assert!(Translation::parse("not: [valid", "f.yaml").is_err());
    }
}
