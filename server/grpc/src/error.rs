//! The one place core errors become gRPC statuses. Exhaustive on purpose: a new error kind in
//! core must be mapped here before anything compiles.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use trellis_core::{CoreError, Violation};

/// Wraps a core error so that `?` converts it to a `Status` in handlers.
#[derive(Debug)]
pub struct ApiError(pub CoreError);

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        Self(error)
    }
}

pub fn invalid_argument(violations: &[Violation]) -> Status {
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(Code::InvalidArgument, message, details)
}

impl From<ApiError> for Status {
    fn from(ApiError(error): ApiError) -> Self {
        match error {
            CoreError::Invalid(violations) => invalid_argument(&violations),
            CoreError::NotFound { .. } => Status::not_found(error.to_string()),
            CoreError::FailedPrecondition(message) => Status::failed_precondition(message),
            CoreError::Storage(message) => {
                tracing::error!(error = %message, "storage failure");
                Status::unavailable(format!("storage is unavailable: {message}; retry shortly"))
            }
            CoreError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Status::internal(message)
            }
        }
    }
}

/// Whether `status` is tonic's answer to a message that does not decode (it says INTERNAL; it is
/// the caller's message that is wrong).
pub fn is_decode_error(status: &Status) -> bool {
    status.code() == Code::Internal && status.message().starts_with(DECODE_ERROR_PREFIX)
}

/// How prost's decode errors begin, as tonic passes them on.
pub const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message";

/// One field violation as a status.
pub fn bad_field(field: &str, description: impl Into<String>) -> Status {
    invalid_argument(&[Violation::new(field, description)])
}
