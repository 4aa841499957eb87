package trellis_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestFromErrorReadsFieldViolationsAndRetryInfo(t *testing.T) {
	withDetails, err := status.New(codes.ResourceExhausted, "too many calls; slow down").WithDetails(
		&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "limit", Description: "is too large; give at most 500"},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	converted := trellis.FromError(withDetails.Err())

	var apiError *trellis.Error
	if !errors.As(converted, &apiError) {
		t.Fatalf("FromError returned %T", converted)
	}
	if apiError.Code != codes.ResourceExhausted || apiError.Message != "too many calls; slow down" || apiError.RetryDelay != 2*time.Second {
		t.Errorf("error %+v, want the code, message and retry delay of the status", apiError)
	}
	if violation, ok := apiError.Violation("limit"); !ok || violation.Description != "is too large; give at most 500" {
		t.Errorf("violations %v, want the one of limit", apiError.Violations)
	}
	if apiError.Error() != "trellis: ResourceExhausted: too many calls; slow down" {
		t.Errorf("message %q", apiError.Error())
	}
	if !errors.Is(converted, trellis.ErrResourceExhausted) || errors.Is(converted, trellis.ErrUnavailable) {
		t.Error("errors.Is does not follow the code")
	}
	if trellis.FromError(converted) != converted {
		t.Error("FromError converted an *Error again")
	}
}

func TestFromErrorLeavesOtherErrorsAlone(t *testing.T) {
	if trellis.FromError(nil) != nil {
		t.Error("FromError(nil) is not nil")
	}
	if trellis.FromError(io.EOF) != io.EOF {
		t.Error("FromError changed io.EOF, which ends streams")
	}
	plain := errors.New("not from grpc")
	if trellis.FromError(plain) != plain {
		t.Error("FromError changed an error without a status")
	}
	canceled := trellis.FromError(status.Error(codes.Canceled, "gone"))
	if !errors.Is(canceled, context.Canceled) || errors.Is(canceled, context.DeadlineExceeded) {
		t.Error("a CANCELED error does not match context.Canceled only")
	}
}
