package trellis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-dev/trellis/clients/go/gen/trellis/v1"
)

// AllStrategyVersions iterates over the strategy versions, newest first, fetching pages of
// request.PageSize as it goes (the server's default when zero). It starts at request.PageToken.
// On a failure it yields the error once and stops; breaking out of the loop fetches no more.
//
//	for version, err := range client.AllStrategyVersions(ctx, &trellisv1.ListStrategyVersionsRequest{}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(version.GetVersion())
//	}
func (c *Client) AllStrategyVersions(ctx context.Context, request *trellisv1.ListStrategyVersionsRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.StrategyVersion, error] {
	if request == nil {
		request = &trellisv1.ListStrategyVersionsRequest{}
	}
	return paginate(ctx, request,
		func(page *trellisv1.ListStrategyVersionsRequest, token string) { page.PageToken = token },
		func(ctx context.Context, page *trellisv1.ListStrategyVersionsRequest) ([]*trellisv1.StrategyVersion, string, error) {
			response, err := c.ListStrategyVersions(ctx, page, options...)
			return response.GetStrategyVersions(), response.GetNextPageToken(), err
		})
}

// AllPeople iterates over the people of a workspace, page by page, like [Client.AllStrategyVersions].
func (c *Client) AllPeople(ctx context.Context, request *trellisv1.ListPeopleRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.Person, error] {
	if request == nil {
		request = &trellisv1.ListPeopleRequest{}
	}
	return paginate(ctx, request,
		func(page *trellisv1.ListPeopleRequest, token string) { page.PageToken = token },
		func(ctx context.Context, page *trellisv1.ListPeopleRequest) ([]*trellisv1.Person, string, error) {
			response, err := c.ListPeople(ctx, page, options...)
			return response.GetPeople(), response.GetNextPageToken(), err
		})
}

// AllMerges iterates over the audit trail of merges, newest first, page by page, like [Client.AllStrategyVersions].
func (c *Client) AllMerges(ctx context.Context, request *trellisv1.ListMergesRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.MergeRecord, error] {
	if request == nil {
		request = &trellisv1.ListMergesRequest{}
	}
	return paginate(ctx, request,
		func(page *trellisv1.ListMergesRequest, token string) { page.PageToken = token },
		func(ctx context.Context, page *trellisv1.ListMergesRequest) ([]*trellisv1.MergeRecord, string, error) {
			response, err := c.ListMerges(ctx, page, options...)
			return response.GetMerges(), response.GetNextPageToken(), err
		})
}

// AllSources iterates over the configured sources, page by page, like [Client.AllStrategyVersions].
func (c *Client) AllSources(ctx context.Context, request *trellisv1.ListSourcesRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.Source, error] {
	if request == nil {
		request = &trellisv1.ListSourcesRequest{}
	}
	return paginate(ctx, request,
		func(page *trellisv1.ListSourcesRequest, token string) { page.PageToken = token },
		func(ctx context.Context, page *trellisv1.ListSourcesRequest) ([]*trellisv1.Source, string, error) {
			response, err := c.ListSources(ctx, page, options...)
			return response.GetSources(), response.GetNextPageToken(), err
		})
}

// AllFeedback iterates over the feedback of a workspace that request's filters (kind, person,
// conversation) admit, newest first, page by page like [Client.AllStrategyVersions]: request.Limit
// is the size of each page (the server's default, 100, when zero). The counts by outcome of each
// page are in [Client.ListFeedback]'s response.
func (c *Client) AllFeedback(ctx context.Context, request *trellisv1.ListFeedbackRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.Feedback, error] {
	if request == nil {
		request = &trellisv1.ListFeedbackRequest{}
	}
	return paginate(ctx, request,
		func(page *trellisv1.ListFeedbackRequest, token string) { page.PageToken = token },
		func(ctx context.Context, page *trellisv1.ListFeedbackRequest) ([]*trellisv1.Feedback, string, error) {
			response, err := c.ListFeedback(ctx, page, options...)
			return response.GetFeedback(), response.GetNextPageToken(), err
		})
}

// paginate walks a paged list. The request is copied once, so the caller's stays as it was.
func paginate[Request proto.Message, Item any](
	ctx context.Context,
	request Request,
	setPageToken func(Request, string),
	fetch func(context.Context, Request) ([]Item, string, error),
) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		page := proto.Clone(request).(Request)
		seen := map[string]bool{}
		for {
			items, next, err := fetch(ctx, page)
			if err != nil {
				var zero Item
				yield(zero, err)
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if seen[next] {
				var zero Item
				yield(zero, fmt.Errorf("trellis: the server returned the page token %q twice; stopping rather than looping", next))
				return
			}
			seen[next] = true
			setPageToken(page, next)
		}
	}
}

// FollowSync runs a sync of a source and yields its progress as the server reports it, until the
// sync ends. Breaking out of the loop cancels the stream; the sync itself goes on on the server.
func (c *Client) FollowSync(ctx context.Context, request *trellisv1.SyncSourceRequest, options ...grpc.CallOption) iter.Seq2[*trellisv1.SyncSourceResponse, error] {
	return func(yield func(*trellisv1.SyncSourceResponse, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.SyncSource(ctx, request, options...)
		if err != nil {
			yield(nil, err)
			return
		}
		receiveAll(stream.Recv, yield)
	}
}

// receiveAll yields what receive returns until the stream ends (io.EOF), an error (yielded), or
// the consumer stops.
func receiveAll[Message any](receive func() (*Message, error), yield func(*Message, error) bool) {
	for {
		message, err := receive()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		if !yield(message, nil) {
			return
		}
	}
}
