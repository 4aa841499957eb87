//! The typed errors a connector returns. The kind decides what the host does next: a config
//! error waits for a person to fix the source, a transient error is retried later, a
//! rate-limited error is retried after the delay the platform asked for, a system error is a bug
//! to report, and a cancelled read simply stops.

use std::fmt;
use std::time::Duration;

use crate::abi;
use crate::pb::connector as proto;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Config,
    Transient,
    RateLimited,
    System,
    Cancelled,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Transient => "transient",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::System => "system",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// The `TRELLIS_STATUS_*` code of the ABI for this kind.
    pub fn status(self) -> i32 {
        match self {
            ErrorKind::Config => abi::TRELLIS_STATUS_CONFIG_ERROR,
            ErrorKind::Transient => abi::TRELLIS_STATUS_TRANSIENT_ERROR,
            ErrorKind::RateLimited => abi::TRELLIS_STATUS_RATE_LIMITED,
            ErrorKind::System => abi::TRELLIS_STATUS_SYSTEM_ERROR,
            ErrorKind::Cancelled => abi::TRELLIS_STATUS_CANCELLED,
        }
    }

    /// The kind of a non-OK status code; unknown codes are system errors.
    pub fn from_status(status: i32) -> Self {
        match status {
            abi::TRELLIS_STATUS_CONFIG_ERROR => ErrorKind::Config,
            abi::TRELLIS_STATUS_TRANSIENT_ERROR => ErrorKind::Transient,
            abi::TRELLIS_STATUS_RATE_LIMITED => ErrorKind::RateLimited,
            abi::TRELLIS_STATUS_CANCELLED => ErrorKind::Cancelled,
            _ => ErrorKind::System,
        }
    }

    fn to_proto(self) -> proto::ErrorKind {
        match self {
            ErrorKind::Config => proto::ErrorKind::Config,
            ErrorKind::Transient => proto::ErrorKind::Transient,
            ErrorKind::RateLimited => proto::ErrorKind::RateLimited,
            ErrorKind::System => proto::ErrorKind::System,
            ErrorKind::Cancelled => proto::ErrorKind::Cancelled,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed connector call: what kind of failure, a lowercase message naming the field and the
/// fix, the config field at fault, and for rate limits how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: ", self.kind)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(retry_after) = self.retry_after {
            write!(f, " (retry after {} ms)", retry_after.as_millis())?;
        }
        Ok(())
    }
}

impl ConnectorError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The config is wrong at `field`; `message` says how to fix it.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: (!field.is_empty()).then_some(field),
            ..Self::new(ErrorKind::Config, message)
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    pub fn rate_limited(retry_after: Duration, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorKind::RateLimited, message)
        }
    }

    pub fn system(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::System, message)
    }

    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "the read was cancelled by the host")
    }

    pub fn to_proto(&self) -> proto::ConnectorError {
        proto::ConnectorError {
            kind: self.kind.to_proto().into(),
            message: self.message.clone(),
            field: self.field.clone().unwrap_or_default(),
            retry_after_ms: self.retry_after.map_or(0, |delay| {
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
            }),
        }
    }

    /// The error of a non-OK `status`, from the `ConnectorError` message the plugin sent (which
    /// may be missing). The status code decides the kind.
    pub fn from_proto(status: i32, message: Option<proto::ConnectorError>) -> Self {
        let kind = ErrorKind::from_status(status);
        let Some(message) = message else {
            return Self::new(
                kind,
                format!("the plugin returned status {status} without an error message"),
            );
        };
        Self {
            kind,
            message: message.message,
            field: (!message.field.is_empty()).then_some(message.field),
            retry_after: (kind == ErrorKind::RateLimited)
                .then(|| Duration::from_millis(message.retry_after_ms)),
        }
    }
}

impl From<serde_json::Error> for ConnectorError {
    /// A JSON error inside a connector is a config problem when it comes from the config, which
    /// the SDK reports itself; anywhere else it is the connector's own bug or bad input data.
    fn from(error: serde_json::Error) -> Self {
        ConnectorError::system(format!("json: {error}"))
    }
}

impl From<std::io::Error> for ConnectorError {
    /// Input/output errors are worth retrying unless the thing is simply missing.
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ConnectorError::config("", error.to_string())
            }
            _ => ConnectorError::transient(error.to_string()),
        }
    }
}
