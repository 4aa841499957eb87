package trellis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"google.golang.org/grpc"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// IngestRecords streams records to the server in one Ingest call and returns its summary: how
// many were received, inserted, updated or unchanged, and the position, field and reason of every
// record the server refused (the others are stored). Records come from any iterator, e.g.
// slices.Values(records) or a reader of your own; wrap them with [PersonRecord],
// [ConversationRecord], [PostRecord] and [AssetRecord]. Ingest is idempotent per (source,
// external id), so sending a record again updates it or leaves it unchanged.
//
// The workspace of the first record counts for the whole stream; [WithWorkspace] fills it in.
func (c *Client) IngestRecords(ctx context.Context, records iter.Seq[*trellisv1.IngestRequest], options ...grpc.CallOption) (*trellisv1.IngestResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Ingest(ctx, options...)
	if err != nil {
		return nil, err
	}
	for record := range records {
		if err := stream.Send(record); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream early; CloseAndRecv has its status.
				break
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// DefaultMatchInFlight is how many contacts [Client.MatchContacts] keeps in flight (sent, answer
// not yet received) on one stream unless [MatchInFlight] says otherwise. The server ends a stream
// that leaves far more than this unanswered.
const DefaultMatchInFlight = 10_000

// MatchInFlight is a call option of [Client.MatchContacts]: at most n contacts (n > 0) are sent
// ahead of their answers. Other calls ignore it.
func MatchInFlight(n int) grpc.CallOption {
	return matchInFlight{n: n}
}

type matchInFlight struct {
	grpc.EmptyCallOption
	n int
}

// MatchContacts runs the bulk MatchPeople stream: it sends the contacts as the server takes them
// and yields each answer as it arrives, with the contact id the request gave. An answer for a
// contact the server could not look up has Found false and, when the lookup itself was wrong, an
// Error; the stream goes on. A failure of the stream is yielded once, and ends the iteration.
//
// The contacts are read on a goroutine of their own while answers are received, at most
// [DefaultMatchInFlight] (or [MatchInFlight]) sent ahead of their answers: past that the sender
// waits for an answer before it sends the next contact. Breaking out of the loop cancels the
// stream and waits for that goroutine, so an iterator that blocks must stop when ctx is done.
//
//	contacts := func(yield func(*trellisv1.MatchPeopleRequest) bool) {
//		yield(&trellisv1.MatchPeopleRequest{ContactId: "c-1", Lookup: trellis.LookupByEmail("ana@example.com")})
//	}
//	for match, err := range client.MatchContacts(ctx, contacts) { ... }
func (c *Client) MatchContacts(ctx context.Context, contacts iter.Seq[*trellisv1.MatchPeopleRequest], options ...grpc.CallOption) iter.Seq2[*trellisv1.MatchPeopleResponse, error] {
	limit := DefaultMatchInFlight
	callOptions := make([]grpc.CallOption, 0, len(options))
	for _, option := range options {
		if window, ok := option.(matchInFlight); ok {
			limit = window.n
			continue
		}
		callOptions = append(callOptions, option)
	}
	return func(yield func(*trellisv1.MatchPeopleResponse, error) bool) {
		if limit <= 0 {
			yield(nil, fmt.Errorf("trellis: MatchInFlight(%d): the contacts in flight must be at least 1", limit))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.MatchPeople(ctx, callOptions...)
		if err != nil {
			yield(nil, err)
			return
		}

		// The window: the sender puts a token in before each contact, each answer takes one out.
		window := make(chan struct{}, limit)
		var sending sync.WaitGroup
		var sendMutex sync.Mutex
		var sendErr error
		sending.Add(1)
		go func() {
			defer sending.Done()
			for contact := range contacts {
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					// The answers are over (or the caller's ctx is done): stop reading contacts.
					return
				}
				if err := stream.Send(contact); err != nil {
					if !errors.Is(err, io.EOF) {
						// A send that fails on our side (not the server ending the stream) would
						// leave Recv waiting: record why, then end the stream.
						sendMutex.Lock()
						sendErr = err
						sendMutex.Unlock()
						cancel()
					}
					return
				}
			}
			_ = stream.CloseSend()
		}()
		defer sending.Wait()
		defer cancel()

		receiveAll(stream.Recv, func(match *trellisv1.MatchPeopleResponse, err error) bool {
			if err == nil {
				select {
				case <-window:
				default: // More answers than contacts sent: nothing to give back.
				}
			} else {
				cancel()
				sending.Wait()
				sendMutex.Lock()
				if sendErr != nil {
					err = sendErr
				}
				sendMutex.Unlock()
			}
			return yield(match, err)
		})
	}
}
