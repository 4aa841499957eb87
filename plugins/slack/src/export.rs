//! An export as Slack produces it, read from a folder or from its zip without unpacking it. A
//! zip may hold the export at its root or inside one folder; both are found.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use trellis_plugin_sdk::prelude::*;

/// An opened export.
pub enum Export {
    Folder(PathBuf),
    Zip {
        archive: Box<zip::ZipArchive<BufReader<File>>>,
        /// Entry names by their path inside the export.
        entries: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for Export {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Export::Folder(path) => write!(formatter, "Folder({})", path.display()),
            Export::Zip { entries, .. } => write!(formatter, "Zip({} entries)", entries.len()),
        }
    }
}

fn config_error(path: &Path, what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::config(
        "path",
        format!(
            "{} {what}; give the folder or the .zip of a Slack workspace export",
            path.display()
        ),
    )
}

impl Export {
    pub fn open(path: &Path) -> Result<Self, ConnectorError> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| config_error(path, format!("cannot be read ({error})")))?;
        let export = if metadata.is_dir() {
            Export::Folder(path.to_owned())
        } else {
            let file = File::open(path)
                .map_err(|error| config_error(path, format!("cannot be opened ({error})")))?;
            let archive = zip::ZipArchive::new(BufReader::new(file))
                .map_err(|error| config_error(path, format!("is not a zip file ({error})")))?;
            let names: Vec<String> = archive
                .file_names()
                .map(|name| name.map(|name| name.into_owned()))
                .collect::<Result<_, _>>()
                .map_err(|error| {
                    config_error(path, format!("has an unreadable entry name ({error})"))
                })?;
            let prefix = names
                .iter()
                .filter(|name| name.ends_with("users.json"))
                .filter(|name| *name == "users.json" || name.ends_with("/users.json"))
                .min_by_key(|name| name.len())
                .map(|name| name.trim_end_matches("users.json").to_owned())
                .unwrap_or_default();
            let entries = names
                .into_iter()
                .filter_map(|name| {
                    name.strip_prefix(&prefix)
                        .map(|inner| (inner.to_owned(), name.clone()))
                })
                .collect();
            Export::Zip {
                archive: Box::new(archive),
                entries,
            }
        };
        Ok(export)
    }

    /// The bytes of `name` (a path inside the export, `/`-separated).
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, ConnectorError> {
        match self {
            Export::Folder(root) => {
                let path = root.join(name);
                std::fs::read(&path).map_err(|error| {
                    config_error(root, format!("has no readable {name} ({error})"))
                })
            }
            Export::Zip { archive, entries } => {
                let Some(entry) = entries.get(name) else {
                    return Err(ConnectorError::config(
                        "path",
                        format!(
                            "the zip holds no {name}; give the zip of a Slack workspace export"
                        ),
                    ));
                };
                let mut file = archive.by_name(entry).map_err(|error| {
                    ConnectorError::config(
                        "path",
                        format!("{name} in the zip cannot be read ({error})"),
                    )
                })?;
                let mut bytes = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
                file.read_to_end(&mut bytes)?;
                Ok(bytes)
            }
        }
    }

    /// The day files (`YYYY-MM-DD`) of a channel, oldest first.
    pub fn day_files(&self, channel: &str) -> Vec<String> {
        let mut days: Vec<String> = match self {
            Export::Folder(root) => std::fs::read_dir(root.join(channel))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter_map(|entry| entry.file_name().into_string().ok())
                        .filter_map(|name| day_of(&name))
                        .collect()
                })
                .unwrap_or_default(),
            Export::Zip { entries, .. } => entries
                .keys()
                .filter_map(|name| name.strip_prefix(channel)?.strip_prefix('/'))
                .filter_map(day_of)
                .collect(),
        };
        days.sort();
        days
    }
}

/// `2015-06-05` of `2015-06-05.json`.
fn day_of(name: &str) -> Option<String> {
    let day = name.strip_suffix(".json")?;
    let bytes = day.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
    shaped.then(|| day.to_owned())
}
