//! The Hugging Face hub cache layout, shared with `huggingface_hub`:
//!
//! ```text
//! <cache>/models--org--name/
//!     refs/<revision>                  the commit a branch or tag points at
//!     blobs/<etag>                     content (sha256 for LFS files, git oid otherwise)
//!     snapshots/<commit>/<path>        relative symlink to ../../blobs/<etag>
//!     trees/<commit>.json              the file listing of that commit
//! <cache>/.locks/models--org--name/<etag>.lock
//! ```
//!
//! Partial downloads live beside the blob as `<etag>.incomplete.swift` with a
//! `<etag>.incomplete.swift.json` record of which byte ranges are done; a
//! `<etag>.incomplete` left by Python is taken over as a done prefix.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{CompiledFilter, RepoRef, RepoType};

/// `models--org--name` / `datasets--org--name`.
pub fn repo_folder_name(repo_type: RepoType, id: &str) -> String {
    let mut s = String::from(repo_type.plural());
    for part in id.split('/') {
        s.push_str("--");
        s.push_str(part);
    }
    s
}

/// Is `rev` a full commit hash?
pub fn is_commit_hash(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Paths of one repository in a cache root.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub root: PathBuf,
    pub folder: PathBuf,
    pub name: String,
}

impl RepoCache {
    pub fn new(root: &Path, repo: &RepoRef) -> Self {
        let name = repo_folder_name(repo.repo_type, &repo.id);
        RepoCache {
            root: root.to_path_buf(),
            folder: root.join(&name),
            name,
        }
    }
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.folder.join("blobs").join(etag)
    }
    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.folder.join("snapshots").join(commit)
    }
    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.folder.join("refs").join(revision)
    }
    pub fn tree_path(&self, commit: &str) -> PathBuf {
        self.folder.join("trees").join(format!("{commit}.json"))
    }
    pub fn lock_path(&self, etag: &str) -> PathBuf {
        self.root
            .join(".locks")
            .join(&self.name)
            .join(format!("{etag}.lock"))
    }

    /// The commit a revision points at, from `refs/` (or the revision itself
    /// when it is a commit hash).
    pub fn read_ref(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_string());
        }
        fs::read_to_string(self.ref_path(revision))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if is_commit_hash(revision) {
            return Ok(());
        }
        let path = self.ref_path(revision);
        if fs::read_to_string(&path).ok().as_deref() == Some(commit) {
            return Ok(());
        }
        write_atomic(&path, commit.as_bytes())
    }

    pub fn write_tree(&self, commit: &str, tree: &TreeCache) -> Result<()> {
        let path = self.tree_path(commit);
        if path.exists() {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(tree)?;
        write_atomic(&path, text.as_bytes())
    }

    pub fn read_tree(&self, commit: &str) -> Option<TreeCache> {
        let text = fs::read_to_string(self.tree_path(commit)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Point `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative link.
    pub fn link(&self, commit: &str, path: &str, etag: &str) -> Result<PathBuf> {
        let link = self.snapshot_dir(commit).join(path);
        let depth = path.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        if let Ok(existing) = fs::read_link(&link) {
            if existing == target {
                return Ok(link);
            }
        }
        if let Some(parent) = link.parent() {
            create_dir_all(parent)?;
        }
        // Link under a temporary name, then rename over: another process may
        // be linking the same file at the same moment.
        let tmp = link.with_file_name(format!(
            ".{}.{}.link",
            link.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        symlink(&target, &tmp)
            .and_then(|()| fs::rename(&tmp, &link))
            .with_context(|| format!("linking {} -> {}", link.display(), target.display()))?;
        Ok(link)
    }
}

/// `trees/<commit>.json` as huggingface_hub writes it (format 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeCache {
    pub format_version: u32,
    pub files: BTreeMap<String, TreeEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeEntry {
    pub size: u64,
    pub blob_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lfs_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lfs_size: Option<u64>,
}

/// Files present in a snapshot folder (relative paths, `/`-separated),
/// following symlinks and skipping broken ones.
pub fn list_files(dir: &Path) -> Result<Vec<(String, u64)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
        let rd = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for e in rd {
            let e = e?;
            let p = e.path();
            let name = e.file_name();
            if base == dir && name == ".cache" {
                continue;
            }
            let Ok(md) = fs::metadata(&p) else { continue };
            if md.is_dir() {
                walk(base, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap_or(&p)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, md.len()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// A commit, its snapshot folder, and the selected files with their sizes.
pub(crate) type Resolved = (String, PathBuf, Vec<(String, u64)>);

/// Resolve a repository from the cache alone: the snapshot folder and the
/// files in it that pass `filter`. Fails when the revision is unknown, a
/// requested literal file is missing, or the cached tree listing shows files
/// that were never fetched.
pub(crate) fn resolve_offline(
    cache: &RepoCache,
    repo: &RepoRef,
    filter: &CompiledFilter,
    literal: &[&str],
) -> Result<Resolved> {
    let hint = "run without --offline (and with HF_HUB_OFFLINE unset) to download it";
    let Some(commit) = cache.read_ref(&repo.revision) else {
        bail!(
            "{} `{}` (revision `{}`) is not in the cache at {}; {hint}",
            repo.repo_type.as_str(),
            repo.id,
            repo.revision,
            cache.root.display()
        );
    };
    let dir = cache.snapshot_dir(&commit);
    if !dir.is_dir() {
        bail!(
            "snapshot {commit} of `{}` is missing from {}; {hint}",
            repo.id,
            cache.folder.display()
        );
    }
    let files: Vec<(String, u64)> = list_files(&dir)?
        .into_iter()
        .filter(|(p, _)| filter.matches(p))
        .collect();
    for want in literal {
        if !files.iter().any(|(p, _)| p == want) {
            bail!(
                "`{want}` of `{}` is not in the cache (snapshot {commit}); {hint}",
                repo.id
            );
        }
    }
    if let Some(tree) = cache.read_tree(&commit) {
        let missing: Vec<&String> = tree
            .files
            .keys()
            .filter(|p| filter.matches(p) && !files.iter().any(|(f, _)| f == *p))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the cached snapshot {commit} of `{}` is incomplete ({} file(s) missing, first `{}`); {hint}",
                repo.id,
                missing.len(),
                missing[0]
            );
        }
    }
    if files.is_empty() {
        bail!(
            "no cached file of `{}` matches the requested patterns; {hint}",
            repo.id
        );
    }
    Ok((commit, dir, files))
}

/// `mkdir -p` with mode 0755 (the cache is per user, never world-writable).
pub fn create_dir_all(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .with_context(|| format!("creating {}", path.display()))
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
    }
}

/// Write a small file through a temporary name and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let parent = path.parent().context("path without parent")?;
    create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    // No symlinks without privileges on Windows: copy the blob.
    let blob = link.parent().unwrap_or(Path::new(".")).join(target);
    fs::copy(blob, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{FileFilter, Hub};

    fn repo() -> RepoRef {
        RepoRef {
            hub: Hub::HuggingFace,
            repo_type: RepoType::Model,
            id: "org/name".into(),
            revision: "main".into(),
        }
    }

    #[test]
    fn names_and_links() {
        assert_eq!(repo_folder_name(RepoType::Dataset, "a/b"), "datasets--a--b");
        assert_eq!(repo_folder_name(RepoType::Model, "gpt2"), "models--gpt2");
        let dir = tempfile::tempdir().unwrap();
        let c = RepoCache::new(dir.path(), &repo());
        let commit = "a".repeat(40);
        fs::create_dir_all(c.folder.join("blobs")).unwrap();
        fs::write(c.blob("e1"), b"hello").unwrap();
        let l = c.link(&commit, "sub/dir/f.txt", "e1").unwrap();
        assert_eq!(fs::read(&l).unwrap(), b"hello");
        assert_eq!(
            fs::read_link(&l).unwrap(),
            PathBuf::from("../../../../blobs/e1")
        );
        c.write_ref("main", &commit).unwrap();
        assert_eq!(c.read_ref("main").unwrap(), commit);
        let f = FileFilter::default().compile().unwrap();
        let (got, _, files) = resolve_offline(&c, &repo(), &f, &[]).unwrap();
        assert_eq!(got, commit);
        assert_eq!(files, vec![("sub/dir/f.txt".to_string(), 5)]);
        assert!(resolve_offline(&c, &repo(), &f, &["config.json"]).is_err());
        assert_eq!(
            c.lock_path("e1"),
            dir.path().join(".locks/models--org--name/e1.lock")
        );
    }
}
