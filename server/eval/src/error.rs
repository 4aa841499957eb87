//! The crate's one error type: every failure names the file or tool involved and, where there is
//! one, the fix.

use std::path::PathBuf;

/// Everything that can go wrong while loading data, building the protocol or running baselines.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed XML in {path}: {message}")]
    Xml { path: PathBuf, message: String },
    #[error("{path}: row {row}: attribute `{attribute}`: {message}")]
    BadAttribute {
        path: PathBuf,
        row: usize,
        attribute: &'static str,
        message: String,
    },
    #[error("cannot parse strategy {path}: {message}")]
    Strategy { path: PathBuf, message: String },
    #[error("the dump has no threads (no posts with PostTypeId=\"1\")")]
    NoThreads,
    #[error(
        "cannot run the BM25 baseline with `{python}`: {message}; install its dependencies with \
         `pip install -r eval/requirements.txt` (or point TRELLIS_PYTHON at a Python that has them)"
    )]
    PythonUnavailable { python: String, message: String },
    #[error("the BM25 baseline runner failed: {message}")]
    Runner { message: String },
    #[error(
        "cannot run the Dense baseline: {message}; fetch the model with `scripts/fetch-model.sh` \
         (or run without the Dense and Hybrid baselines)"
    )]
    Embedding { message: String },
    #[error("invalid rankings JSON: {0}")]
    Rankings(#[from] serde_json::Error),
}
