//! The folders connectors may read files from. A source's config names files and folders
//! (fields its connector's schema marks `x-path`); a key that may create sources must not be a
//! way to read the server's own files or another tenant's, so every such path is checked here
//! before a plugin opens it: resolved (symbolic links followed) it must lie
//! below one of the operator's roots, as must every link inside a folder it names. The plugin is
//! then given the resolved path, so what it opens is what was checked.
//!
//! Roots are per server (`[files] roots`), and optionally per workspace (`[files.workspaces]`,
//! which replace the server's roots for that workspace).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use trellis_core::domain::WorkspaceId;
use trellis_core::error::Violation;

/// Entries of a folder looked at for links that lead out, at most: a folder with more is
/// refused rather than half checked.
const FOLDER_ENTRIES: usize = 1_000_000;

/// Where connectors may read files.
#[derive(Debug, Clone, Default)]
pub struct FileRoots {
    server: Vec<Root>,
    workspaces: BTreeMap<String, Vec<Root>>,
}

/// One root, as configured (made absolute) and resolved.
#[derive(Debug, Clone)]
struct Root {
    given: PathBuf,
    resolved: PathBuf,
}

impl FileRoots {
    /// No file may be read.
    pub fn none() -> Self {
        Self::default()
    }

    /// Roots for every workspace, and for some workspaces roots of their own instead. A root
    /// that does not exist is an error naming `setting`, so a typo does not lock every source
    /// out silently.
    pub fn new(
        server: &[PathBuf],
        workspaces: &BTreeMap<String, Vec<PathBuf>>,
        setting: &str,
    ) -> Result<Self, String> {
        let roots = |paths: &[PathBuf], setting: &str| -> Result<Vec<Root>, String> {
            paths
                .iter()
                .map(|path| {
                    let given = lexical(&absolute(path));
                    let resolved = std::fs::canonicalize(path).map_err(|error| {
                        format!(
                            "{setting}: the folder {} cannot be opened ({error}); make it or take it out",
                            path.display()
                        )
                    })?;
                    if !resolved.is_dir() {
                        return Err(format!(
                            "{setting}: {} is not a folder; a root is a folder whose files connectors may read",
                            path.display()
                        ));
                    }
                    Ok(Root { given, resolved })
                })
                .collect()
        };
        Ok(Self {
            server: roots(server, setting)?,
            workspaces: workspaces
                .iter()
                .map(|(workspace, paths)| {
                    Ok((
                        workspace.clone(),
                        roots(paths, &format!("{setting} of workspace {workspace}"))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    /// The roots of `workspace`: its own when it has some, else the server's.
    fn of(&self, workspace: &WorkspaceId) -> &[Root] {
        self.workspaces
            .get(workspace.as_str())
            .map_or(&self.server, Vec::as_slice)
    }

    /// The resolved roots of `workspace`, for the log and for errors.
    pub fn describe(&self, workspace: &WorkspaceId) -> Vec<PathBuf> {
        self.of(workspace)
            .iter()
            .map(|root| root.resolved.clone())
            .collect()
    }

    /// The resolved form of `value`, the path a source's config gives in `field`, once it is
    /// known to be below a root of `workspace`; otherwise a violation naming the field, what is
    /// wrong and the setting that decides. Whether a path outside every root exists is never
    /// said. A config being made or changed must name a file that is there
    /// ([`Existence::Required`]); one in use may have lost it since ([`Existence::MayBeGone`]),
    /// which its connector then reports as it does any file it cannot open.
    pub fn confine(
        &self,
        workspace: &WorkspaceId,
        field: &str,
        value: &str,
        existence: Existence,
    ) -> Result<PathBuf, Violation> {
        let roots = self.of(workspace);
        let field = format!("source.config_json.{field}");
        let listed = || {
            roots
                .iter()
                .map(|root| root.resolved.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if roots.is_empty() {
            return Err(Violation::new(
                field,
                "this server reads no local files: its operator has set no folders connectors may read ([files] roots); ask for one, or give an http(s) URL where the connector takes one",
            ));
        }
        let outside = |how: &str| {
            Violation::new(
                field.clone(),
                format!(
                    "{value:?} {how} the folders this server lets connectors read ({}); put the file below one of them, or ask the operator to add its folder to [files] roots",
                    listed()
                ),
            )
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(Violation::new(
                field,
                "is empty; give a file or folder path",
            ));
        }
        let given = lexical(&absolute(Path::new(trimmed)));
        let below = |path: &Path| {
            roots
                .iter()
                .any(|root| path.starts_with(&root.given) || path.starts_with(&root.resolved))
        };
        if !below(&given) {
            return Err(outside("is outside"));
        }
        let resolved = match existence {
            Existence::Required => std::fs::canonicalize(&given),
            Existence::MayBeGone => resolve(&given),
        }
        .map_err(|error| {
            Violation::new(
                field.clone(),
                format!(
                    "{value:?} cannot be opened ({}); give the path of an existing file or folder",
                    plain(&error)
                ),
            )
        })?;
        let below_resolved =
            |path: &Path| roots.iter().any(|root| path.starts_with(&root.resolved));
        if !below_resolved(&resolved) {
            return Err(outside("leads (through a symbolic link) outside"));
        }
        if resolved.is_dir() {
            let mut seen = 0usize;
            for entry in walkdir::WalkDir::new(&resolved).follow_links(false) {
                seen += 1;
                if seen > FOLDER_ENTRIES {
                    return Err(Violation::new(
                        field,
                        format!(
                            "{value:?} holds more than {FOLDER_ENTRIES} files and folders; name the folder of one export"
                        ),
                    ));
                }
                let Ok(entry) = entry else {
                    continue;
                };
                if !entry.path_is_symlink() {
                    continue;
                }
                let inside =
                    std::fs::canonicalize(entry.path()).is_ok_and(|target| below_resolved(&target));
                if !inside {
                    let name = entry
                        .path()
                        .strip_prefix(&resolved)
                        .unwrap_or(entry.path())
                        .display()
                        .to_string();
                    return Err(Violation::new(
                        field,
                        format!(
                            "{value:?} holds a symbolic link, {name}, that leads outside the folders this server lets connectors read ({}); replace the link with the file",
                            listed()
                        ),
                    ));
                }
            }
        }
        Ok(resolved)
    }
}

/// Whether a path must name something that is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// It must: a config being made or changed.
    Required,
    /// It may be gone: a stored config about to be used, whose file was moved or deleted since.
    MayBeGone,
}

/// `path` resolved (symbolic links followed). A path that is gone (an export deleted or moved
/// since its source was made, which the connector will report) resolves as its deepest existing folder,
/// resolved, followed by the rest: nothing in the rest exists (a dangling link is refused), so
/// nothing in it can lead elsewhere, and the path is confined again every time a plugin is
/// given it.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let missing = match std::fs::canonicalize(path) {
        Ok(resolved) => return Ok(resolved),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => error,
        Err(error) => return Err(error),
    };
    let mut rest = Vec::new();
    let mut existing = path;
    while let Some(parent) = existing.parent() {
        if let Some(name) = existing.file_name() {
            rest.push(name.to_owned());
        }
        existing = parent;
        match std::fs::canonicalize(existing) {
            Ok(resolved) if resolved.is_dir() => {
                // A dangling link is not "missing": where it leads may appear later.
                let next = rest.last().map(|name| existing.join(name));
                if next.is_some_and(|next| std::fs::symlink_metadata(next).is_ok()) {
                    return Err(missing);
                }
                return Ok(rest
                    .iter()
                    .rev()
                    .fold(resolved, |path, name| path.join(name)));
            }
            Ok(_) => return Err(missing),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Err(missing)
}

/// `path` made absolute against the current folder, without touching the file system.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    }
}

/// `path` with `.` and `..` taken out by their names alone (a `..` above the root stays at it).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An I/O error's kind in words, without the path (which the message already gives).
fn plain(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
        std::io::ErrorKind::PermissionDenied => "the server may not read it".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> FileRoots {
        FileRoots::new(&[dir.join("root")], &BTreeMap::new(), "[files] roots").unwrap()
    }

    fn workspace() -> WorkspaceId {
        WorkspaceId::default_workspace()
    }

    #[test]
    fn a_path_below_a_root_resolves_and_anything_else_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/dump")).unwrap();
        std::fs::write(dir.path().join("root/dump/Posts.xml"), "<posts/>").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        let roots = roots(dir.path());
        let file = dir.path().join("root/dump/Posts.xml");
        assert_eq!(
            roots
                .confine(
                    &workspace(),
                    "path",
                    file.to_str().unwrap(),
                    Existence::Required
                )
                .unwrap(),
            std::fs::canonicalize(&file).unwrap()
        );
        for outside in [
            "/etc/passwd".to_owned(),
            dir.path().join("secret.txt").display().to_string(),
            dir.path()
                .join("root/dump/../../secret.txt")
                .display()
                .to_string(),
        ] {
            let violation = roots
                .confine(&workspace(), "path", &outside, Existence::Required)
                .unwrap_err();
            assert_eq!(violation.field, "source.config_json.path");
            assert!(
                violation.description.contains("is outside")
                    && violation.description.contains("[files] roots"),
                "{violation:?}"
            );
        }
        // Inside, but missing: said so when a config is made, as it is the tenant's own folder.
        let missing = dir.path().join("root/./later/nothing.jsonl");
        let violation = roots
            .confine(
                &workspace(),
                "path",
                missing.to_str().unwrap(),
                Existence::Required,
            )
            .unwrap_err();
        assert!(
            violation.description.contains("does not exist"),
            "{violation:?}"
        );
        // Gone from a config in use: resolved through the folders that are there, for the
        // connector to report.
        let resolved = roots
            .confine(
                &workspace(),
                "path",
                missing.to_str().unwrap(),
                Existence::MayBeGone,
            )
            .unwrap();
        assert_eq!(
            resolved,
            std::fs::canonicalize(dir.path().join("root"))
                .unwrap()
                .join("later/nothing.jsonl")
        );
        // Missing below a link that leads out: still refused.
        #[cfg(unix)]
        {
            let elsewhere = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("root/out")).unwrap();
            let through = dir.path().join("root/out/nothing.jsonl");
            let violation = roots
                .confine(
                    &workspace(),
                    "path",
                    through.to_str().unwrap(),
                    Existence::MayBeGone,
                )
                .unwrap_err();
            assert!(
                violation.description.contains("symbolic link"),
                "{violation:?}"
            );
            std::os::unix::fs::symlink(
                elsewhere.path().join("later.jsonl"),
                dir.path().join("root/dangling.jsonl"),
            )
            .unwrap();
            let dangling = dir.path().join("root/dangling.jsonl");
            let violation = roots
                .confine(
                    &workspace(),
                    "path",
                    dangling.to_str().unwrap(),
                    Existence::MayBeGone,
                )
                .unwrap_err();
            assert!(
                violation.description.contains("cannot be opened"),
                "{violation:?}"
            );
        }
    }

    #[test]
    fn symbolic_links_out_of_a_root_are_refused_even_inside_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/export")).unwrap();
        std::fs::write(dir.path().join("outside.txt"), "no").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("outside.txt"),
            dir.path().join("root/link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("outside.txt"),
            dir.path().join("root/export/Users.xml"),
        )
        .unwrap();
        let roots = roots(dir.path());
        let link = dir.path().join("root/link.txt");
        let violation = roots
            .confine(
                &workspace(),
                "path",
                link.to_str().unwrap(),
                Existence::Required,
            )
            .unwrap_err();
        assert!(
            violation.description.contains("symbolic link"),
            "{violation:?}"
        );
        let folder = dir.path().join("root/export");
        let violation = roots
            .confine(
                &workspace(),
                "path",
                folder.to_str().unwrap(),
                Existence::Required,
            )
            .unwrap_err();
        assert!(violation.description.contains("Users.xml"), "{violation:?}");
    }

    #[test]
    fn a_workspace_with_roots_of_its_own_reads_only_below_them() {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["root", "acme"] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join("f.jsonl"), "").unwrap();
        }
        let roots = FileRoots::new(
            &[dir.path().join("root")],
            &BTreeMap::from([("acme".to_owned(), vec![dir.path().join("acme")])]),
            "[files] roots",
        )
        .unwrap();
        let acme = WorkspaceId::parse("acme").unwrap();
        let server_file = dir.path().join("root/f.jsonl");
        let acme_file = dir.path().join("acme/f.jsonl");
        assert!(
            roots
                .confine(
                    &acme,
                    "path",
                    acme_file.to_str().unwrap(),
                    Existence::Required
                )
                .is_ok()
        );
        assert!(
            roots
                .confine(
                    &acme,
                    "path",
                    server_file.to_str().unwrap(),
                    Existence::Required
                )
                .is_err()
        );
        assert!(
            roots
                .confine(
                    &workspace(),
                    "path",
                    acme_file.to_str().unwrap(),
                    Existence::Required
                )
                .is_err()
        );
        assert!(
            FileRoots::none()
                .confine(
                    &workspace(),
                    "path",
                    server_file.to_str().unwrap(),
                    Existence::Required
                )
                .unwrap_err()
                .description
                .contains("reads no local files")
        );
        let missing = FileRoots::new(
            &[dir.path().join("nope")],
            &BTreeMap::new(),
            "[files] roots",
        )
        .unwrap_err();
        assert!(missing.contains("[files] roots"), "{missing}");
    }
}
