package trellis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is what every failed call of a [Client] returns: the gRPC status, read into Go values.
//
//	var apiErr *trellis.Error
//	if errors.As(err, &apiErr) {
//		for _, violation := range apiErr.Violations {
//			fmt.Println(violation.Field, violation.Description)
//		}
//	}
//
// It matches the sentinels of its code with errors.Is (errors.Is(err, trellis.ErrNotFound)),
// and context.DeadlineExceeded or context.Canceled when the call ran out of time or was
// cancelled. status.FromError and status.Code still work on it.
type Error struct {
	// The gRPC status code.
	Code codes.Code
	// The server's message; for INVALID_ARGUMENT it names every field and its fix.
	Message string
	// One entry per problem of a refused request (google.rpc.BadRequest), in the server's order.
	Violations []FieldViolation
	// How long the server asked the client to wait before trying again (google.rpc.RetryInfo);
	// zero when it did not say.
	RetryDelay time.Duration

	status *status.Status
}

// FieldViolation is one problem of a refused request: the field, as a path such as
// "strategy.facets[1].id", and what is wrong with it and how to fix it.
type FieldViolation struct {
	Field       string
	Description string
}

func (violation FieldViolation) String() string {
	return violation.Field + ": " + violation.Description
}

// Error formats the code and the server's message, e.g.
// "trellis: InvalidArgument: strategy.name: is empty; name the strategy, ...".
func (e *Error) Error() string {
	return fmt.Sprintf("trellis: %s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.FromError and status.Code read the original status.
func (e *Error) GRPCStatus() *status.Status {
	return e.status
}

// Violation returns the first violation of field, if the server reported one.
func (e *Error) Violation(field string) (FieldViolation, bool) {
	for _, violation := range e.Violations {
		if violation.Field == field {
			return violation, true
		}
	}
	return FieldViolation{}, false
}

// Is matches the sentinel of the error's code, and the context error a deadline or a
// cancellation stands for.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	sentinel, known := sentinels[e.Code]
	return known && target == sentinel
}

// Sentinels for errors.Is, one per gRPC code a Trellis call may end with.
var (
	ErrCanceled           = errors.New("trellis: canceled")
	ErrUnknown            = errors.New("trellis: unknown")
	ErrInvalidArgument    = errors.New("trellis: invalid argument")
	ErrDeadlineExceeded   = errors.New("trellis: deadline exceeded")
	ErrNotFound           = errors.New("trellis: not found")
	ErrAlreadyExists      = errors.New("trellis: already exists")
	ErrPermissionDenied   = errors.New("trellis: permission denied")
	ErrResourceExhausted  = errors.New("trellis: resource exhausted")
	ErrFailedPrecondition = errors.New("trellis: failed precondition")
	ErrAborted            = errors.New("trellis: aborted")
	ErrOutOfRange         = errors.New("trellis: out of range")
	ErrUnimplemented      = errors.New("trellis: unimplemented")
	ErrInternal           = errors.New("trellis: internal")
	ErrUnavailable        = errors.New("trellis: unavailable")
	ErrDataLoss           = errors.New("trellis: data loss")
	ErrUnauthenticated    = errors.New("trellis: unauthenticated")
)

var sentinels = map[codes.Code]error{
	codes.Canceled:           ErrCanceled,
	codes.Unknown:            ErrUnknown,
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.DeadlineExceeded:   ErrDeadlineExceeded,
	codes.NotFound:           ErrNotFound,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.Aborted:            ErrAborted,
	codes.OutOfRange:         ErrOutOfRange,
	codes.Unimplemented:      ErrUnimplemented,
	codes.Internal:           ErrInternal,
	codes.Unavailable:        ErrUnavailable,
	codes.DataLoss:           ErrDataLoss,
	codes.Unauthenticated:    ErrUnauthenticated,
}

// FromError reads a gRPC error into an [*Error]. It returns nil for nil, and io.EOF, an
// *Error, and errors that carry no gRPC status unchanged. A Client already applies it to every
// call; it is exported for code that calls the generated stubs on a connection of its own.
func FromError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	grpcStatus, ok := status.FromError(err)
	if !ok {
		return err
	}
	apiError := &Error{
		Code:    grpcStatus.Code(),
		Message: grpcStatus.Message(),
		status:  grpcStatus,
	}
	for _, detail := range grpcStatus.Details() {
		switch detail := detail.(type) {
		case *errdetails.BadRequest:
			for _, violation := range detail.GetFieldViolations() {
				apiError.Violations = append(apiError.Violations, FieldViolation{
					Field:       violation.GetField(),
					Description: violation.GetDescription(),
				})
			}
		case *errdetails.RetryInfo:
			apiError.RetryDelay = detail.GetRetryDelay().AsDuration()
		}
	}
	return apiError
}
