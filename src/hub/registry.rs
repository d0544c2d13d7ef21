//! Datasets by short name: a registry kept as data (`datasets.json`, embedded)
//! mapping `alpaca-zh` and friends to their ids on both hubs, with subset,
//! split, layout and column mapping. Users add or override entries with a
//! file of the same shape: `--registry FILE`, `SWIFT_DATASET_REGISTRY`, or
//! `$XDG_CONFIG_HOME/swift/datasets.json` (`~/.config/swift/datasets.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Hub;

const BUILTIN: &str = include_str!("datasets.json");

/// One dataset of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `sft`, `preference`, `eval`, `pretrain`.
    pub kind: String,
    /// Row layout: `alpaca`, `sharegpt`, `messages`, `query-response`,
    /// `preference`, `preference-messages`, `multiple-choice`, `exact-match`,
    /// `code`, `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Hugging Face Hub id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// ModelScope id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Source column -> our column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Include patterns when only part of the repository is needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default)]
    pub description: String,
}

impl DatasetEntry {
    /// The Hugging Face Hub when the dataset is there, else ModelScope.
    pub fn preferred_hub(&self) -> Hub {
        if self.hf.is_some() {
            Hub::HuggingFace
        } else {
            Hub::ModelScope
        }
    }

    pub fn id_for(&self, hub: Hub) -> Option<&str> {
        match hub {
            Hub::HuggingFace => self.hf.as_deref(),
            Hub::ModelScope => self.ms.as_deref(),
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RegistryFile {
    Wrapped { datasets: Vec<DatasetEntry> },
    Bare(Vec<DatasetEntry>),
}

/// The built-in registry plus the user's entries (which win by name).
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<DatasetEntry>,
    /// The user file that was read, if any.
    pub user_file: Option<PathBuf>,
}

impl Registry {
    /// The registry shipped in the binary.
    pub fn builtin() -> Registry {
        let entries = parse(BUILTIN, Path::new("src/hub/datasets.json"))
            .expect("the built-in dataset registry is valid (checked by a unit test)");
        Registry {
            entries,
            user_file: None,
        }
    }

    /// Built-in entries plus a user file: `explicit`, else
    /// `SWIFT_DATASET_REGISTRY`, else the config file when it exists.
    pub fn load(explicit: Option<&Path>) -> Result<Registry> {
        let mut reg = Registry::builtin();
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => std::env::var_os("SWIFT_DATASET_REGISTRY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| default_user_file().filter(|p| p.is_file())),
        };
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading dataset registry {}", path.display()))?;
            let user = parse(&text, &path)?;
            reg.merge(user);
            reg.user_file = Some(path);
        }
        Ok(reg)
    }

    fn merge(&mut self, user: Vec<DatasetEntry>) {
        for e in user {
            self.entries
                .retain(|x| !x.name.eq_ignore_ascii_case(&e.name));
            self.entries.push(e);
        }
    }

    /// Look an entry up by name or alias (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&DatasetEntry> {
        // User entries were appended: search from the end so they win.
        self.entries.iter().rev().find(|e| e.matches(name))
    }

    pub fn entries(&self) -> &[DatasetEntry] {
        &self.entries
    }
}

fn default_user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("swift").join("datasets.json"))
}

fn parse(text: &str, path: &Path) -> Result<Vec<DatasetEntry>> {
    let file: RegistryFile = serde_json::from_str(text)
        .with_context(|| format!("parsing dataset registry {}", path.display()))?;
    let entries = match file {
        RegistryFile::Wrapped { datasets } => datasets,
        RegistryFile::Bare(v) => v,
    };
    for e in &entries {
        if e.name.trim().is_empty() {
            bail!("{}: a dataset entry has an empty name", path.display());
        }
        if e.hf.is_none() && e.ms.is_none() {
            bail!(
                "{}: dataset `{}` names no hub id (`hf` or `ms`)",
                path.display(),
                e.name
            );
        }
        for id in [&e.hf, &e.ms].into_iter().flatten() {
            super::validate_repo_id(id)
                .with_context(|| format!("{}: dataset `{}`", path.display(), e.name))?;
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_valid_and_large_enough() {
        let r = Registry::builtin();
        assert!(r.entries().len() >= 20, "{}", r.entries().len());
        let mut names = std::collections::HashSet::new();
        for e in r.entries() {
            for n in std::iter::once(&e.name).chain(&e.aliases) {
                assert!(names.insert(n.to_lowercase()), "duplicate name {n}");
            }
        }
        for kind in ["sft", "preference", "eval"] {
            assert!(
                r.entries().iter().filter(|e| e.kind == kind).count() >= 3,
                "{kind}"
            );
        }
        let a = r.get("ALPACA-ZH").unwrap();
        assert_eq!(
            a.id_for(Hub::ModelScope),
            Some("AI-ModelScope/alpaca-gpt4-data-zh")
        );
        assert_eq!(r.get("c-eval").unwrap().name, "ceval");
        for n in ["mmlu", "gsm8k", "arc-challenge", "ceval", "alpaca-en"] {
            assert!(r.get(n).is_some(), "{n}");
        }
    }

    #[test]
    fn user_entries_override() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(
            &p,
            r#"[{"name": "alpaca-zh", "kind": "sft", "hf": "me/my-alpaca"},
                {"name": "mine", "kind": "sft", "ms": "me/mine"}]"#,
        )
        .unwrap();
        let r = Registry::load(Some(&p)).unwrap();
        assert_eq!(
            r.get("alpaca-zh").unwrap().hf.as_deref(),
            Some("me/my-alpaca")
        );
        assert_eq!(r.get("mine").unwrap().preferred_hub(), Hub::ModelScope);
        std::fs::write(&p, r#"[{"name": "x", "kind": "sft"}]"#).unwrap();
        assert!(Registry::load(Some(&p)).is_err());
    }
}
