//! A commit of the deployments repo, read from git (a bare repo or a clone) without a
//! checkout: the branch's commit id, and the text of every file under `db/` within the limits
//! (links and other entries that are not regular files refused, never read; sizes checked on
//! the blobs before they are read: `paddock_core::deployments::limits`).

use std::path::{Path, PathBuf};

use paddock_core::deployments::{Diagnostic, Diagnostics, limits};

/// The files of one commit that the deployments DB reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Full hex id of the commit.
    pub commit: String,
    /// `(path in repo, text)` of each file under `db/` that was read.
    pub files: Vec<(String, String)>,
    /// Files under `db/` refused before or while reading (a symbolic link, not a regular
    /// file, over a size limit, not UTF-8 text), sorted: any of them rejects the state.
    pub refused: Vec<Diagnostic>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GitError {
    #[error("{path}: not a git repository: {message}")]
    Open { path: String, message: String },
    #[error("branch `{branch}` does not exist in {path} (deleted, or never pushed)")]
    NoBranch { branch: String, path: String },
    #[error("{path}: reading {what}: {message}")]
    Read {
        path: String,
        what: String,
        message: String,
    },
}

/// Reads `refs/heads/<branch>` of the repository at `repo`.
pub fn read_branch(repo: &Path, branch: &str) -> Result<Snapshot, GitError> {
    let path = repo.display().to_string();
    let head = branch_head(repo, branch)?;
    let r = open(repo)?;
    let id = gix::ObjectId::from_hex(head.as_bytes()).map_err(|e| GitError::Read {
        path: path.clone(),
        what: head.clone(),
        message: e.to_string(),
    })?;
    read_commit(&r, &path, id)
}

/// The commit `refs/heads/<branch>` of the repository at `repo` points at (full hex id);
/// nothing of it is read.
pub fn branch_head(repo: &Path, branch: &str) -> Result<String, GitError> {
    let path = repo.display().to_string();
    let read_err = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        path: path.clone(),
        what: what.to_string(),
        message: e.to_string(),
    };
    let repo = open(repo)?;
    let name = format!("refs/heads/{branch}");
    let mut reference = match repo.try_find_reference(name.as_str()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(GitError::NoBranch {
                branch: branch.to_string(),
                path,
            });
        }
        Err(e) => return Err(read_err(&name, &e)),
    };
    let commit = reference
        .peel_to_commit()
        .map_err(|e| read_err(&name, &e))?;
    Ok(commit.id.to_string())
}

/// The DB files of commit `id` in `repo` (`path` names it in errors). A symbolic link (mode
/// 120000) or a submodule under `db/` is refused, never read; blobs are refused by their size
/// (from the object header) before they are read.
pub fn read_commit(
    repo: &gix::Repository,
    path: &str,
    id: gix::ObjectId,
) -> Result<Snapshot, GitError> {
    let read_err = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        path: path.to_string(),
        what: what.to_string(),
        message: e.to_string(),
    };
    let commit = repo
        .find_commit(id)
        .map_err(|e| read_err(&id.to_string(), &e))?;
    let id = commit.id.to_string();
    let tree = commit.tree().map_err(|e| read_err(&id, &e))?;
    let mut records = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut records)
        .map_err(|e| read_err(&id, &e))?;
    let mut blobs = Vec::new();
    let mut refused = Vec::new();
    for entry in records.records {
        let file = entry.filepath.to_string();
        let in_db = file == "db" || paddock_core::deployments::is_db_file(&file);
        if !in_db || entry.mode.is_tree() {
            continue;
        }
        if entry.mode.is_link() {
            refused.push(limits::symlink(&file));
        } else if entry.mode.is_commit() {
            refused.push(limits::not_regular(&file, "a submodule"));
        } else if file != "db" {
            let size = repo
                .find_header(entry.oid)
                .map_err(|e| read_err(&file, &e))?
                .size();
            blobs.push((file, entry.oid, size));
        }
    }
    blobs.sort();
    let sizes: Vec<(String, u64)> = blobs.iter().map(|(f, _, s)| (f.clone(), *s)).collect();
    let (read, too_big) = limits::budget(&sizes);
    refused.extend(too_big);
    let mut files = Vec::new();
    for ((file, oid, _), read) in blobs.into_iter().zip(read) {
        if !read {
            continue;
        }
        let mut blob = repo.find_blob(oid).map_err(|e| read_err(&file, &e))?;
        match String::from_utf8(std::mem::take(&mut blob.data)) {
            Ok(text) => files.push((file, text)),
            Err(_) => refused.push(limits::not_text(&file)),
        }
    }
    Ok(Snapshot {
        commit: id,
        files,
        refused: Diagnostics(refused).sorted().0,
    })
}

/// True when `repo` names a remote to fetch (`https://…`, `ssh://…`, `git://…`, `file://…`
/// or scp-like `user@host:path`) rather than a local path read in place.
pub fn is_remote(repo: &str) -> bool {
    repo.contains("://")
        || repo
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'))
}

/// Fetches `branch` of the remote `url` into the bare mirror at `mirror` (made on first use)
/// with gix, forced so that a force-push is followed, and reads the fetched commit. A branch
/// the remote no longer has is [`GitError::NoBranch`]; the mirror keeps what it had.
pub fn fetch_branch(url: &str, mirror: &Path, branch: &str) -> Result<Snapshot, GitError> {
    fetch(url, mirror, branch)?;
    read_branch(mirror, branch)
}

/// Fetches `branch` of `url` into the bare mirror at `mirror` (see [`fetch_branch`]).
fn fetch(url: &str, mirror: &Path, branch: &str) -> Result<(), GitError> {
    let path = mirror.display().to_string();
    let fetch_err = |e: &dyn std::fmt::Display| GitError::Read {
        path: url.to_string(),
        what: format!("fetching refs/heads/{branch}"),
        message: e.to_string(),
    };
    let repo = if mirror.join("HEAD").exists() {
        gix::open(mirror).map_err(|e| GitError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?
    } else {
        std::fs::create_dir_all(mirror).map_err(|e| GitError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        gix::init_bare(mirror).map_err(|e| GitError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?
    };
    let name = format!("refs/heads/{branch}");
    let spec = format!("+{name}:{name}");
    let remote = repo
        .remote_at(url)
        .map_err(|e| fetch_err(&e))?
        .with_refspecs([spec.as_str()], gix::remote::Direction::Fetch)
        .map_err(|e| fetch_err(&e))?;
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| fetch_err(&e))?;
    let prepared = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| fetch_err(&e))?;
    let advertised = prepared.ref_map().remote_refs.iter().any(|r| {
        let (full_name, _, _) = r.unpack();
        full_name == name.as_bytes()
    });
    if !advertised {
        return Err(GitError::NoBranch {
            branch: branch.to_string(),
            path: url.to_string(),
        });
    }
    let interrupt = std::sync::atomic::AtomicBool::new(false);
    prepared
        .receive(gix::progress::Discard, &interrupt)
        .map_err(|e| fetch_err(&e))?;
    Ok(())
}

/// Where the deployments repo's commits come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local repository (bare or not) read in place: pushed to, or kept current otherwise.
    Local(PathBuf),
    /// A remote fetched with gix, before every read, into a bare mirror.
    Remote { url: String, mirror: PathBuf },
}

impl Source {
    /// `repo` is a URL or scp-like address (fetched into `mirror`) or a local path.
    pub fn new(repo: &str, mirror: &Path) -> Source {
        if is_remote(repo) {
            Source::Remote {
                url: repo.to_string(),
                mirror: mirror.to_path_buf(),
            }
        } else {
            Source::Local(PathBuf::from(repo))
        }
    }

    /// Fetches (for a remote) and reads the branch's newest commit.
    pub fn read(&self, branch: &str) -> Result<Snapshot, GitError> {
        match self {
            Source::Local(path) => read_branch(path, branch),
            Source::Remote { url, mirror } => fetch_branch(url, mirror, branch),
        }
    }

    /// Fetches (for a remote) and finds the branch's newest commit, reading nothing of it.
    pub fn head(&self, branch: &str) -> Result<String, GitError> {
        if let Source::Remote { url, mirror } = self {
            fetch(url, mirror, branch)?;
        }
        branch_head(self.git_dir(), branch)
    }

    /// Reads the DB files of `commit` (already fetched, for a remote).
    pub fn snapshot(&self, commit: &str) -> Result<Snapshot, GitError> {
        let dir = self.git_dir();
        let path = dir.display().to_string();
        let repo = open(dir)?;
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| GitError::Read {
            path: path.clone(),
            what: commit.to_string(),
            message: e.to_string(),
        })?;
        read_commit(&repo, &path, id)
    }
}

impl std::fmt::Display for Source {
    /// The path, or the URL without any password in it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::Remote { url, .. } => f.write_str(&without_password(url)),
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://user@host/…`; other URLs unchanged.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_string(),
    }
}

impl Source {
    /// The repository that holds the fetched commits (the path, or the mirror).
    pub fn git_dir(&self) -> &Path {
        match self {
            Source::Local(p) => p,
            Source::Remote { mirror, .. } => mirror,
        }
    }
}

fn open(repo: &Path) -> Result<gix::Repository, GitError> {
    gix::open(repo).map_err(|e| GitError::Open {
        path: repo.display().to_string(),
        message: e.to_string(),
    })
}

fn commit_tree<'r>(
    repo: &'r gix::Repository,
    path: &str,
    commit: &str,
) -> Result<gix::Tree<'r>, GitError> {
    let read_err = |e: &dyn std::fmt::Display| GitError::Read {
        path: path.to_string(),
        what: commit.to_string(),
        message: e.to_string(),
    };
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| read_err(&e))?;
    repo.find_commit(id)
        .map_err(|e| read_err(&e))?
        .tree()
        .map_err(|e| read_err(&e))
}

/// The id of the tree (or file) at `sub` (e.g. `hosts/lab1-server`) in `commit`; `None`
/// when the commit has nothing there.
pub fn subtree_id(repo: &Path, commit: &str, sub: &str) -> Result<Option<String>, GitError> {
    let path = repo.display().to_string();
    let r = open(repo)?;
    let tree = commit_tree(&r, &path, commit)?;
    let entry = tree.lookup_entry_by_path(sub).map_err(|e| GitError::Read {
        path: path.clone(),
        what: format!("{commit}:{sub}"),
        message: e.to_string(),
    })?;
    Ok(entry.map(|e| e.object_id().to_string()))
}

/// Writes every file of `commit` under `dest` (made fresh: an earlier export there is
/// removed first), keeping the executable bit and symbolic links: what a command such as
/// `nixos-rebuild --flake DEST#host` reads.
pub fn export_commit(repo: &Path, commit: &str, dest: &Path) -> Result<(), GitError> {
    let path = repo.display().to_string();
    let io_err = |what: &Path, e: std::io::Error| GitError::Read {
        path: dest.display().to_string(),
        what: what.display().to_string(),
        message: e.to_string(),
    };
    let read_err = |what: &str, e: &dyn std::fmt::Display| GitError::Read {
        path: path.clone(),
        what: what.to_string(),
        message: e.to_string(),
    };
    let r = open(repo)?;
    let tree = commit_tree(&r, &path, commit)?;
    let mut records = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut records)
        .map_err(|e| read_err(commit, &e))?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| io_err(dest, e))?;
    }
    std::fs::create_dir_all(dest).map_err(|e| io_err(dest, e))?;
    for entry in records.records {
        let rel = entry.filepath.to_string();
        if rel
            .split('/')
            .any(|c| c == ".." || c == ".git" || c.is_empty())
        {
            return Err(read_err(&rel, &"refusing a path that leaves the checkout"));
        }
        let target = dest.join(&rel);
        if entry.mode.is_tree() {
            std::fs::create_dir_all(&target).map_err(|e| io_err(&target, e))?;
            continue;
        }
        if !entry.mode.is_blob_or_symlink() {
            continue; // submodules are not exported
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let blob = r.find_blob(entry.oid).map_err(|e| read_err(&rel, &e))?;
        if entry.mode.is_link() {
            let link = String::from_utf8_lossy(&blob.data).into_owned();
            std::os::unix::fs::symlink(&link, &target).map_err(|e| io_err(&target, e))?;
            continue;
        }
        std::fs::write(&target, &blob.data).map_err(|e| io_err(&target, e))?;
        if entry.mode.is_executable() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io_err(&target, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_and_passwords() {
        for (repo, remote) in [
            ("/srv/deployments.git", false),
            ("deployments.git", false),
            ("./a:b", false),
            ("file:///srv/deployments.git", true),
            ("ssh://git@forge.example/lab/deployments.git", true),
            ("git@forge.example:lab/deployments.git", true),
            ("https://forge.example/lab/deployments.git", true),
        ] {
            assert_eq!(is_remote(repo), remote, "{repo}");
        }
        assert_eq!(
            without_password("https://bot:s3cret@forge.example/lab/d.git"),
            "https://bot@forge.example/lab/d.git"
        );
        assert_eq!(
            without_password("git@forge.example:lab/d.git"),
            "git@forge.example:lab/d.git"
        );
        let s = Source::new("ssh://bot:pw@h/x.git", Path::new("/m"));
        assert_eq!(s.to_string(), "ssh://bot@h/x.git");
        assert_eq!(s.git_dir(), Path::new("/m"));
    }
}
