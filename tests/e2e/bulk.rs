//! Bulk streams the way a CRM sync drives them: a hundred thousand contacts through one
//! `MatchPeople` call, each in a DATA frame of its own (as the Python, Go and TypeScript gRPC
//! libraries send them), answers read while sending, other calls sharing the connection; a key's
//! streamed messages counted against its rate; and a peer that keeps failing authentication
//! refused for a while.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tonic::{Code, Request};
use tonic_types::StatusExt;

use super::{Server, fresh, ingest_example, lookup, pb};

use pb::person_lookup::Key;

/// Contacts whose handles the example community knows; every fifth contact is nobody.
const KNOWN: [&str; 4] = ["ana", "ben", "chen", "dora"];

fn contact(index: usize) -> pb::MatchPeopleRequest {
    let handle = KNOWN
        .get(index % 5)
        .map_or_else(|| format!("nobody-{index}"), |known| (*known).to_owned());
    pb::MatchPeopleRequest {
        workspace: String::new(),
        contact_id: format!("c-{index}"),
        lookup: lookup(Key::Handle(handle)),
    }
}

/// `count` contacts as a stream that gives way after each one, so that the client sends every
/// message in a DATA frame of its own instead of packing them.
fn contacts_one_frame_each(
    count: usize,
) -> impl tokio_stream::Stream<Item = pb::MatchPeopleRequest> + Send + 'static {
    futures::stream::unfold(0usize, move |index| async move {
        if index >= count {
            return None;
        }
        tokio::task::yield_now().await;
        Some((contact(index), index + 1))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_contacts_match_through_one_stream_while_the_connection_serves_others() {
    const CONTACTS: usize = 100_000;
    let (_dir, server) = fresh().await;
    ingest_example(&server);

    // The server makes every person's insight in the background once records stop arriving:
    // the stream answers from them.
    let mut status = pb::server_service_client::ServerServiceClient::new(server.channel.clone());
    let waited = Instant::now();
    let (ready, pending) = loop {
        let workspace = status
            .get_server_status(pb::GetServerStatusRequest {})
            .await
            .expect("the server status")
            .into_inner()
            .workspaces
            .into_iter()
            .next()
            .expect("the example's workspace");
        if workspace.insights_pending == 0 && workspace.insights_ready > 0
            || waited.elapsed() > Duration::from_secs(60)
        {
            assert!(workspace.insights_bytes > 0, "{workspace:?}");
            break (workspace.insights_ready, workspace.insights_pending);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        pending, 0,
        "every insight is made within a minute ({ready} are)"
    );
    assert!(ready >= KNOWN.len() as u64, "{ready} insights made");

    // Other calls on the same connection keep being answered during the bulk match.
    let channel = server.channel.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let bystander = tokio::spawn(async move {
        let mut people = pb::people_service_client::PeopleServiceClient::new(channel);
        let mut answered = 0usize;
        loop {
            let found = people
                .match_person(pb::MatchPersonRequest {
                    workspace: String::new(),
                    lookup: lookup(Key::Handle("ben".into())),
                    suggestion_limit: 0,
                })
                .await
                .expect("a call beside the bulk stream is answered")
                .into_inner();
            assert!(found.found);
            answered += 1;
            tokio::select! {
                _ = &mut stop_rx => return answered,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });

    let mut answers = server
        .people()
        .match_people(contacts_one_frame_each(CONTACTS))
        .await
        .expect("the bulk match starts")
        .into_inner();
    let mut ids = HashSet::with_capacity(CONTACTS);
    let mut found = 0usize;
    while let Some(answer) = answers
        .message()
        .await
        .unwrap_or_else(|status| panic!("the stream broke after {} answers: {status:?}", ids.len()))
    {
        assert!(answer.error.is_empty(), "{answer:?}");
        let index: usize = answer.contact_id["c-".len()..].parse().expect("c-<n>");
        assert_eq!(
            answer.found,
            index % 5 < KNOWN.len(),
            "contact {index}: {answer:?}"
        );
        found += usize::from(answer.found);
        assert!(ids.insert(index), "contact {index} answered twice");
    }
    assert_eq!(ids.len(), CONTACTS, "every contact is answered once");
    assert_eq!(found, CONTACTS / 5 * 4);

    let _ = stop_tx.send(());
    let beside = bystander.await.expect("the bystander task ends");
    assert!(beside >= 1, "calls beside the stream were answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keys_streamed_messages_count_against_its_rate_and_a_failing_peer_is_refused() {
    let dir = crate::test_dir().expect("tempdir");
    let db = dir.path().join("t.db");
    let read = super::auth::create_key(&db, "default", "read");
    let server = Server::start_with(
        &db,
        &[
            ("TRELLIS__AUTH__REQUIRED", "true"),
            ("TRELLIS__AUTH__STREAM_MESSAGES_PER_SECOND", "1000"),
            ("TRELLIS__AUTH__FAILED_AUTH_PER_MINUTE", "3"),
        ],
    )
    .await;
    let mut people = server.people();

    // 1,000 a second with a burst of 2,000: 3,500 contacts cannot be answered in under 1.5 s.
    let started = Instant::now();
    let mut request = Request::new(tokio_stream::iter((0..3_500).map(contact)));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {read}").parse().expect("ascii"),
    );
    let mut answers = people
        .match_people(request)
        .await
        .expect("the stream starts")
        .into_inner();
    let mut answered = 0;
    while answers
        .message()
        .await
        .expect("a slowed stream is not refused")
        .is_some()
    {
        answered += 1;
    }
    assert_eq!(answered, 3_500);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_400),
        "3,500 messages at 1,000/s after a burst of 2,000 took only {took:?}"
    );

    // Three failed authentications from this address a minute; the fourth is over the limit,
    // and then every call from it is refused for a while, even with a good key.
    let call = |key: &str| {
        let mut request = Request::new(pb::ListSourcesRequest::default());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("ascii"),
        );
        let mut sources =
            pb::source_service_client::SourceServiceClient::new(server.channel.clone());
        async move { sources.list_sources(request).await }
    };
    for attempt in 0..3 {
        let status = call("trk_00_00").await.expect_err("an unknown key");
        assert_eq!(status.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    let status = call("trk_00_00").await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("failed_auth_per_minute"),
        "{status:?}"
    );
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.expect("a delay") >= Duration::from_secs(1));
    let status = call(&read)
        .await
        .expect_err("a good key from a blocked peer");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}
