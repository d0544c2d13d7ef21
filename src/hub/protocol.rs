//! The two hub protocols, reduced to one question: which files does this
//! revision hold, with what size and checksum, and where is each one served?
//!
//! Hugging Face: `GET {endpoint}/api/{models|datasets}/{id}/revision/{rev}?blobs=true`
//! gives the commit (`sha`) and `siblings` with `size`, `blobId` and, for LFS
//! files, `lfs.sha256`; files come from `{endpoint}/[datasets/]{id}/resolve/{commit}/{path}`
//! (which may redirect to a CDN; the cache names a blob after `X-Linked-Etag`,
//! i.e. the LFS sha256, or the git blob id).
//!
//! ModelScope: `GET {endpoint}/api/v1/models/{id}/repo/files?Revision=..&Recursive=true`
//! (`Data.Files[]` with `Path`, `Type`, `Size`, `Sha256`), files from
//! `/api/v1/models/{id}/repo?Revision=..&FilePath=..`; datasets list with
//! `/api/v1/datasets/{id}/repo/tree?Revision=..&Root=&Recursive=True&PageNumber=..&PageSize=..`
//! and download from `/api/v1/datasets/{id}/repo?Source=SDK&Revision=..&FilePath=..`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::cache::{TreeCache, TreeEntry};
use super::{Hub, RepoRef, RepoType};

/// One file of a remote revision.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub path: String,
    pub size: u64,
    /// The blob name in the cache.
    pub etag: String,
    /// Expected sha256 of the content, when the hub states it.
    pub sha256: Option<String>,
    pub url: String,
    /// Git blob id (HF) for the tree cache.
    pub blob_id: String,
}

/// A listed revision.
#[derive(Debug, Clone)]
pub struct RemoteRepo {
    pub commit: String,
    pub files: Vec<RemoteFile>,
}

impl RemoteRepo {
    /// The listing in huggingface_hub's `trees/<commit>.json` form.
    pub fn tree_cache(&self) -> TreeCache {
        TreeCache {
            format_version: 1,
            files: self
                .files
                .iter()
                .map(|f| {
                    (
                        f.path.clone(),
                        TreeEntry {
                            size: f.size,
                            blob_id: f.blob_id.clone(),
                            lfs_sha256: f.sha256.clone(),
                            lfs_size: f.sha256.as_ref().map(|_| f.size),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Percent-encode one URL path segment or query value (RFC 3986 unreserved
/// characters pass).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP failure with its status, so callers can tell "not found" from
/// "try again".
#[derive(Debug, thiserror::Error)]
#[error("{url}: HTTP {status}{hint}")]
pub struct HttpStatusError {
    pub url: String,
    pub status: u16,
    pub hint: String,
}

impl HttpStatusError {
    pub fn retryable(&self) -> bool {
        self.status >= 500 || self.status == 429 || self.status == 408
    }
}

pub(crate) fn status_error(url: &str, status: reqwest::StatusCode, hub: Hub) -> HttpStatusError {
    let hint = match (status.as_u16(), hub) {
        (401, _) | (403, _) => {
            let var = match hub {
                Hub::HuggingFace => "HF_TOKEN",
                Hub::ModelScope => "MODELSCOPE_API_TOKEN",
            };
            format!(" (private or gated repository? pass --token or set {var})")
        }
        (404, _) => " (no such repository, revision or file)".to_string(),
        _ => String::new(),
    };
    HttpStatusError {
        url: url.to_string(),
        status: status.as_u16(),
        hint,
    }
}

pub(crate) fn auth(
    req: reqwest::RequestBuilder,
    hub: Hub,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    match (token, hub) {
        (None, _) => req,
        (Some(t), Hub::HuggingFace) => req.bearer_auth(t),
        (Some(t), Hub::ModelScope) => req
            .bearer_auth(t)
            .header(reqwest::header::COOKIE, format!("m_session_id={t}")),
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    client: &reqwest::Client,
    url: &str,
    hub: Hub,
    token: Option<&str>,
) -> Result<T> {
    let resp = auth(client.get(url), hub, token)
        .send()
        .await
        .with_context(|| format!("requesting {url}"))?;
    if !resp.status().is_success() {
        return Err(status_error(url, resp.status(), hub).into());
    }
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the answer of {url}"))
}

/// List the files of a revision.
pub async fn list(
    client: &reqwest::Client,
    repo: &RepoRef,
    endpoint: &str,
    token: Option<&str>,
) -> Result<RemoteRepo> {
    match repo.hub {
        Hub::HuggingFace => list_hf(client, repo, endpoint, token).await,
        Hub::ModelScope => list_ms(client, repo, endpoint, token).await,
    }
}

#[derive(Deserialize)]
struct HfInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<HfSibling>,
}

#[derive(Deserialize)]
struct HfSibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<HfLfs>,
}

#[derive(Deserialize)]
struct HfLfs {
    sha256: String,
    size: u64,
}

async fn list_hf(
    client: &reqwest::Client,
    repo: &RepoRef,
    endpoint: &str,
    token: Option<&str>,
) -> Result<RemoteRepo> {
    let url = format!(
        "{endpoint}/api/{}/{}/revision/{}?blobs=true",
        repo.repo_type.plural(),
        repo.id,
        encode(&repo.revision, false)
    );
    let info: HfInfo = get_json(client, &url, Hub::HuggingFace, token).await?;
    let commit = info
        .sha
        .with_context(|| format!("{url} did not say which commit `{}` is", repo.revision))?;
    if !super::cache::is_commit_hash(&commit) {
        bail!("{url} answered an invalid commit hash `{commit}`");
    }
    let prefix = match repo.repo_type {
        RepoType::Model => "",
        RepoType::Dataset => "datasets/",
    };
    let mut files = Vec::new();
    for s in info.siblings {
        check_path(&s.rfilename)?;
        let file_url = format!(
            "{endpoint}/{prefix}{}/resolve/{commit}/{}",
            repo.id,
            encode(&s.rfilename, true)
        );
        let blob_id = s.blob_id.unwrap_or_default();
        let (size, etag, sha) = match s.lfs {
            Some(l) => (
                l.size,
                l.sha256.clone(),
                Some(l.sha256.to_ascii_lowercase()),
            ),
            None => {
                let size = s
                    .size
                    .with_context(|| format!("{url}: no size for `{}`", s.rfilename))?;
                if blob_id.is_empty() {
                    bail!("{url}: no blobId for `{}`", s.rfilename);
                }
                (size, blob_id.clone(), None)
            }
        };
        check_etag(&etag)?;
        files.push(RemoteFile {
            path: s.rfilename,
            size,
            etag,
            sha256: sha,
            url: file_url,
            blob_id,
        });
    }
    Ok(RemoteRepo { commit, files })
}

#[derive(Deserialize)]
struct MsEnvelope {
    #[serde(rename = "Code")]
    code: Option<i64>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Data")]
    data: Option<MsData>,
}

#[derive(Deserialize)]
struct MsData {
    #[serde(rename = "Files", default)]
    files: Vec<MsFile>,
}

#[derive(Deserialize)]
struct MsFile {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "Sha256")]
    sha256: Option<String>,
}

async fn list_ms(
    client: &reqwest::Client,
    repo: &RepoRef,
    endpoint: &str,
    token: Option<&str>,
) -> Result<RemoteRepo> {
    let rev = encode(&repo.revision, false);
    let mut raw: Vec<MsFile> = Vec::new();
    match repo.repo_type {
        RepoType::Model => {
            let url = format!(
                "{endpoint}/api/v1/models/{}/repo/files?Revision={rev}&Recursive=true",
                repo.id
            );
            let env: MsEnvelope = get_json(client, &url, Hub::ModelScope, token).await?;
            raw.extend(ms_files(env, &url)?);
        }
        RepoType::Dataset => {
            const PAGE: usize = 500;
            for page in 1.. {
                let url = format!(
                    "{endpoint}/api/v1/datasets/{}/repo/tree?Revision={rev}&Root=&Recursive=True&PageNumber={page}&PageSize={PAGE}",
                    repo.id
                );
                let env: MsEnvelope = get_json(client, &url, Hub::ModelScope, token).await?;
                let got = ms_files(env, &url)?;
                let n = got.len();
                raw.extend(got);
                if n < PAGE || page > 1000 {
                    break;
                }
            }
        }
    }
    let mut files = Vec::new();
    let mut listing = Sha256::new();
    for f in raw {
        if f.kind.as_deref().is_some_and(|k| k == "tree") {
            continue;
        }
        let Some(path) = f.path.or(f.name) else {
            continue;
        };
        check_path(&path)?;
        let sha = f
            .sha256
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|s| s.to_ascii_lowercase());
        // Without a checksum, name the blob after what identifies the content.
        let etag = sha.clone().unwrap_or_else(|| {
            hex::encode(Sha256::digest(
                format!("{}\0{}\0{}\0{}", repo.id, repo.revision, path, f.size).as_bytes(),
            ))
        });
        listing.update(format!("{path}\0{etag}\0{}\n", f.size).as_bytes());
        let url = match repo.repo_type {
            RepoType::Model => format!(
                "{endpoint}/api/v1/models/{}/repo?Revision={rev}&FilePath={}",
                repo.id,
                encode(&path, false)
            ),
            RepoType::Dataset => format!(
                "{endpoint}/api/v1/datasets/{}/repo?Source=SDK&Revision={rev}&FilePath={}",
                repo.id,
                encode(&path, false)
            ),
        };
        files.push(RemoteFile {
            path,
            size: f.size,
            blob_id: etag.clone(),
            etag,
            sha256: sha,
            url,
        });
    }
    // ModelScope lists no repository commit: name the snapshot after the
    // content of the listing, so a changed repository gets a new snapshot.
    let commit = hex::encode(listing.finalize())[..40].to_string();
    Ok(RemoteRepo { commit, files })
}

fn ms_files(env: MsEnvelope, url: &str) -> Result<Vec<MsFile>> {
    if let Some(code) = env.code {
        if code != 200 && code != 0 {
            bail!(
                "{url}: ModelScope answered code {code}: {}",
                env.message.unwrap_or_default()
            );
        }
    }
    Ok(env.data.map(|d| d.files).unwrap_or_default())
}

/// Refuse paths that would escape the snapshot folder.
fn check_path(p: &str) -> Result<()> {
    if p.is_empty()
        || p.starts_with('/')
        || p.contains('\\')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("the hub listed an unsafe file path `{p}`");
    }
    Ok(())
}

fn check_etag(e: &str) -> Result<()> {
    if e.is_empty() || !e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        bail!("the hub listed an invalid blob id `{e}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(encode("a b/c.json", true), "a%20b/c.json");
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
    }

    #[test]
    fn unsafe_paths() {
        for p in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(check_path(p).is_err(), "{p}");
        }
        assert!(check_path("a/b.json").is_ok());
    }
}
