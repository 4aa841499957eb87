//! Errors of the core. Each names the field at fault and what to do about it, because these
//! messages reach people through the API unchanged.

use std::fmt;

/// One problem with one field of an input, in the shape of a gRPC field violation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Path of the field, e.g. `facets[2].weight`.
    pub field: String,
    /// What is wrong and how to fix it, lowercase.
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The input broke one or more rules; every violation is listed.
    #[error("invalid input: {}", join_violations(.0))]
    Invalid(Vec<Violation>),
    /// The named thing does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The call is valid but the system is not in a state to answer it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Storage failed underneath; the message is for operators.
    #[error("storage: {0}")]
    Storage(String),
    /// A bug or an unexpected state; the message is for operators.
    #[error("internal: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        CoreError::Invalid(vec![Violation::new(field, description)])
    }
}

fn join_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

pub type CoreResult<T> = Result<T, CoreError>;
