//! The models a session knows, by name.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::common::{plan_err, Result};

use super::model::Model;

/// Shared, thread-safe map of model name → model. Cloning shares the map.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistry {
    inner: Arc<RwLock<BTreeMap<String, Arc<Model>>>>,
}

impl ModelRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks a model up by exact name, then case-insensitively (SQL folds unquoted names).
    pub fn get(&self, name: &str) -> Result<Arc<Model>> {
        let map = match self.inner.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(m) = map.get(name) {
            return Ok(Arc::clone(m));
        }
        let lower = name.to_lowercase();
        if let Some(m) = map
            .iter()
            .find(|(k, _)| k.to_lowercase() == lower)
            .map(|(_, m)| m)
        {
            return Ok(Arc::clone(m));
        }
        if map.is_empty() {
            plan_err!("unknown model '{name}': no models exist yet (CREATE MODEL <name> USING knn AS SELECT …)")
        } else {
            plan_err!(
                "unknown model '{name}'; models: {}",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    pub fn insert(&self, model: Model) -> Arc<Model> {
        let m = Arc::new(model);
        let mut map = match self.inner.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.insert(m.name.clone(), Arc::clone(&m));
        m
    }

    /// Removes a model; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let mut map = match self.inner.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let key = map
            .keys()
            .find(|k| *k == name || k.to_lowercase() == name.to_lowercase())
            .cloned();
        key.map(|k| map.remove(&k).is_some()).unwrap_or(false)
    }

    pub fn list(&self) -> Vec<Arc<Model>> {
        let map = match self.inner.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.values().cloned().collect()
    }

    /// Whether two registries are the same shared map.
    pub fn same(&self, other: &ModelRegistry) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
