package trellis

import (
	"testing"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// A delete or a forget that succeeded would answer NOT_FOUND when repeated, and a retry would
// report that failure for a call that worked: neither is retried, as the comment on
// idempotentMethods says.
func TestDeletesAndForgetsAreNotRetried(t *testing.T) {
	for _, method := range []string{
		trellisv1.SourceService_DeleteSource_FullMethodName,
		trellisv1.PeopleService_ForgetPerson_FullMethodName,
		trellisv1.StrategyService_PutStrategy_FullMethodName,
	} {
		if safeToRepeat(method, nil) {
			t.Errorf("%s is retried", method)
		}
	}
	if !safeToRepeat(trellisv1.PeopleService_GetPerson_FullMethodName, nil) {
		t.Errorf("GetPerson, a read, is not retried")
	}
}
