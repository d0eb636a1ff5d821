//! The models a session knows, by name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use datafusion::common::{plan_err, Result};

use super::model::Model;

/// A stored model that could not be loaded (corrupt, older format, unreadable). It is listed
/// so that SHOW MODELS shows it and DROP MODEL can remove its file; `photoz()` refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableModel {
    pub name: String,
    pub file: PathBuf,
    pub reason: String,
}

/// What [`ModelRegistry::remove_entry`] took out: the name it was listed under and the file
/// it came from, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedModel {
    pub name: String,
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Entries {
    models: BTreeMap<String, Arc<Model>>,
    unusable: BTreeMap<String, UnusableModel>,
    /// The file each stored model was read from or written to, by listed name.
    files: BTreeMap<String, PathBuf>,
}

impl Entries {
    /// The listed name matching `name` exactly, else case-insensitively (SQL folds unquoted
    /// names), among usable and unusable models.
    fn key_of(&self, name: &str) -> Option<String> {
        if self.models.contains_key(name) || self.unusable.contains_key(name) {
            return Some(name.to_string());
        }
        let lower = name.to_lowercase();
        self.models
            .keys()
            .chain(self.unusable.keys())
            .find(|k| k.to_lowercase() == lower)
            .cloned()
    }

    /// Takes out whatever is listed under `name` (in any case).
    fn forget(&mut self, name: &str) -> Option<RemovedModel> {
        let key = self.key_of(name)?;
        self.models.remove(&key);
        self.unusable.remove(&key);
        let file = self.files.remove(&key);
        Some(RemovedModel { name: key, file })
    }
}

/// Shared, thread-safe map of model name → model. Cloning shares the map.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistry {
    inner: Arc<RwLock<Entries>>,
}

impl ModelRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        match self.inner.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        match self.inner.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// Looks a model up by exact name, then case-insensitively (SQL folds unquoted names).
    pub fn get(&self, name: &str) -> Result<Arc<Model>> {
        let map = self.read();
        if let Some(key) = map.key_of(name) {
            if let Some(m) = map.models.get(&key) {
                return Ok(Arc::clone(m));
            }
            if let Some(u) = map.unusable.get(&key) {
                return plan_err!(
                    "model '{}' cannot be used: {} (file {}); DROP MODEL {} removes it, CREATE OR REPLACE MODEL makes it again",
                    u.name,
                    u.reason,
                    u.file.display(),
                    u.name
                );
            }
        }
        if map.models.is_empty() {
            plan_err!("unknown model '{name}': no models exist yet (CREATE MODEL <name> USING knn AS SELECT …)")
        } else {
            plan_err!(
                "unknown model '{name}'; models: {}",
                map.models.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }

    /// Whether a usable model has this name.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    /// Adds a model, replacing any listed under the same name in any case (usable or not).
    pub fn insert(&self, model: Model) -> Arc<Model> {
        self.insert_with(model, None)
    }

    /// [`ModelRegistry::insert`] for a model kept in `file`.
    pub fn insert_stored(&self, model: Model, file: PathBuf) -> Arc<Model> {
        self.insert_with(model, Some(file))
    }

    fn insert_with(&self, model: Model, file: Option<PathBuf>) -> Arc<Model> {
        let m = Arc::new(model);
        let mut map = self.write();
        map.forget(&m.name);
        map.models.insert(m.name.clone(), Arc::clone(&m));
        if let Some(f) = file {
            map.files.insert(m.name.clone(), f);
        }
        m
    }

    /// Lists a stored model that could not be loaded, under `name`.
    pub fn insert_unusable(&self, name: &str, file: PathBuf, reason: String) {
        let mut map = self.write();
        map.forget(name);
        map.files.insert(name.to_string(), file.clone());
        map.unusable.insert(
            name.to_string(),
            UnusableModel {
                name: name.to_string(),
                file,
                reason,
            },
        );
    }

    /// The file a listed model (usable or not) is kept in, if any.
    pub fn file_of(&self, name: &str) -> Option<PathBuf> {
        let map = self.read();
        map.key_of(name).and_then(|k| map.files.get(&k).cloned())
    }

    /// Removes a model, usable or not; returns the name it was listed under and its file.
    pub fn remove_entry(&self, name: &str) -> Option<RemovedModel> {
        self.write().forget(name)
    }

    /// Removes a model; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.remove_entry(name).is_some()
    }

    pub fn list(&self) -> Vec<Arc<Model>> {
        self.read().models.values().cloned().collect()
    }

    /// Stored models that could not be loaded.
    pub fn unusable(&self) -> Vec<UnusableModel> {
        self.read().unusable.values().cloned().collect()
    }

    /// Whether two registries are the same shared map.
    pub fn same(&self, other: &ModelRegistry) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
