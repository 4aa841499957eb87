package trellis_test

import (
	"testing"

	"github.com/trellis-dev/trellis/clients/go/trellis"
)

func TestEmailSHA256HashesTheTrimmedLowercasedAddress(t *testing.T) {
	const want = "8e43ca37701228e74983efdbd0cff5c16b3b1e5d4e29a7c05626d4d25a018e11" // sha256("ana@example.com")
	for _, email := range []string{"ana@example.com", "  Ana@Example.COM\n"} {
		if got := trellis.EmailSHA256(email); got != want {
			t.Errorf("EmailSHA256(%q) = %s, want %s", email, got, want)
		}
	}
	if got := trellis.LookupByEmail("Ana@example.com").GetEmailSha256(); got != want {
		t.Errorf("LookupByEmail sends %s, want the hash %s", got, want)
	}
}
