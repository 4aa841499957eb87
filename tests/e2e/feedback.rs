//! Feedback on suggestions through the API and the CLI: a dismissed suggestion is not made
//! again, a taken-up discussion counts as taking part, bad feedback is refused whole and named
//! by field, and all of it survives a restart.

use tonic::Code;
use trellis_grpc::pb;

use super::{Server, fresh, ingest_example, put_example_strategy, reference, test_dir, violations};

fn feedback(
    kind: pb::SuggestionKind,
    outcome: pb::FeedbackOutcome,
    person: &str,
    conversation: &str,
) -> pb::Feedback {
    pb::Feedback {
        kind: kind.into(),
        outcome: outcome.into(),
        person: reference("forum", person),
        conversation: reference("forum", conversation),
        // A time of its own, as an app that retries a call sends it: the derived id is the same.
        at: Some(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        }),
        actor: "e2e".into(),
        ..Default::default()
    }
}

async fn record(server: &Server, items: Vec<pb::Feedback>) -> pb::RecordFeedbackResponse {
    server
        .feedback()
        .record_feedback(pb::RecordFeedbackRequest {
            workspace: String::new(),
            feedback: items,
        })
        .await
        .expect("feedback is recorded")
        .into_inner()
}

async fn discussions_of(server: &Server, person: &str) -> Vec<String> {
    server
        .insight()
        .suggest_discussions(pb::SuggestDiscussionsRequest {
            workspace: String::new(),
            person: reference("forum", person),
            limit: 50,
            as_of: None,
        })
        .await
        .expect("discussions")
        .into_inner()
        .join
        .into_iter()
        .filter_map(|discussion| discussion.conversation.map(|key| key.external_id))
        .collect()
}

async fn participants_of(server: &Server, conversation: &str) -> Vec<String> {
    server
        .insight()
        .suggest_participants(pb::SuggestParticipantsRequest {
            workspace: String::new(),
            conversation: reference("forum", conversation),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("participants")
        .into_inner()
        .participants
        .into_iter()
        .filter_map(|participant| {
            participant
                .person
                .and_then(|person| person.r#ref)
                .map(|key| format!("{}:{}", key.source, key.external_id))
        })
        .collect()
}

async fn counts(server: &Server) -> pb::FeedbackCounts {
    server
        .feedback()
        .list_feedback(pb::ListFeedbackRequest::default())
        .await
        .expect("feedback lists")
        .into_inner()
        .counts
        .expect("counts")
}

#[tokio::test]
async fn dismissed_suggestions_are_not_made_again_and_accepted_ones_count_as_taking_part() {
    let dir = test_dir().expect("a temporary folder");
    let db = dir.path().join("t.db");
    let server = Server::start(&db).await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    let before = discussions_of(&server, "u-ana").await;
    assert!(before.len() >= 2, "Ana has discussions to join: {before:?}");
    let (dismissed, accepted) = (before[0].clone(), before[1].clone());
    let people = participants_of(&server, "t1").await;
    assert!(!people.is_empty(), "people could join t1");
    let unwanted = people[0].clone();
    let (unwanted_source, unwanted_id) = unwanted.split_once(':').expect("source:id");

    let response = record(
        &server,
        vec![
            feedback(
                pb::SuggestionKind::Discussion,
                pb::FeedbackOutcome::Shown,
                "u-ana",
                &dismissed,
            ),
            feedback(
                pb::SuggestionKind::Discussion,
                pb::FeedbackOutcome::Dismissed,
                "u-ana",
                &dismissed,
            ),
            feedback(
                pb::SuggestionKind::Discussion,
                pb::FeedbackOutcome::Accepted,
                "u-ana",
                &accepted,
            ),
            pb::Feedback {
                person: reference(unwanted_source, unwanted_id),
                ..feedback(
                    pb::SuggestionKind::Participant,
                    pb::FeedbackOutcome::Dismissed,
                    "",
                    "t1",
                )
            },
        ],
    )
    .await;
    assert_eq!((response.recorded, response.replaced), (4, 0));
    assert_eq!(response.ids.len(), 4);
    assert!(response.ids.iter().all(|id| id.starts_with("fb-")));

    let after = discussions_of(&server, "u-ana").await;
    assert!(
        !after.contains(&dismissed),
        "{dismissed} was dismissed: {after:?}"
    );
    assert!(
        !after.contains(&accepted),
        "Ana took up {accepted}: she is in it now, nothing to suggest: {after:?}"
    );
    let people_after = participants_of(&server, "t1").await;
    assert!(
        !people_after.contains(&unwanted),
        "{unwanted} was dismissed for t1: {people_after:?}"
    );
    let in_accepted = participants_of(&server, &accepted).await;
    assert!(
        !in_accepted.iter().any(|person| person == "forum:u-ana"),
        "Ana is in {accepted} by her own choice: {in_accepted:?}"
    );

    // Recording the same feedback again (a retried call) replaces it: nothing is counted twice.
    let again = record(
        &server,
        vec![feedback(
            pb::SuggestionKind::Discussion,
            pb::FeedbackOutcome::Dismissed,
            "u-ana",
            &dismissed,
        )],
    )
    .await;
    assert_eq!((again.recorded, again.replaced), (0, 1));
    assert_eq!(again.ids[0], response.ids[1]);
    let counted = counts(&server).await;
    assert_eq!(
        (
            counted.shown,
            counted.accepted,
            counted.dismissed,
            counted.done
        ),
        (1, 1, 2, 0)
    );

    // A call with one bad item records nothing, and names the field.
    let refused = server
        .feedback()
        .record_feedback(pb::RecordFeedbackRequest {
            workspace: String::new(),
            feedback: vec![
                feedback(
                    pb::SuggestionKind::Discussion,
                    pb::FeedbackOutcome::Done,
                    "u-ben",
                    "t2",
                ),
                pb::Feedback {
                    conversation: None,
                    ..feedback(
                        pb::SuggestionKind::Discussion,
                        pb::FeedbackOutcome::Done,
                        "u-ben",
                        "t2",
                    )
                },
            ],
        })
        .await
        .expect_err("a discussion without its conversation");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused)[0].0, "feedback[1].conversation");
    let unspecified = server
        .feedback()
        .record_feedback(pb::RecordFeedbackRequest {
            workspace: String::new(),
            feedback: vec![pb::Feedback {
                kind: 0,
                ..feedback(
                    pb::SuggestionKind::Discussion,
                    pb::FeedbackOutcome::Done,
                    "u-ben",
                    "t2",
                )
            }],
        })
        .await
        .expect_err("no kind");
    assert_eq!(violations(&unspecified)[0].0, "feedback[0].kind");
    assert_eq!(
        counts(&server).await,
        counted,
        "nothing of a refused call is kept"
    );

    // The list pages newest first and filters.
    let mut client = server.feedback();
    let first = client
        .list_feedback(pb::ListFeedbackRequest {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("a page")
        .into_inner();
    assert_eq!(first.feedback.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let rest = client
        .list_feedback(pb::ListFeedbackRequest {
            limit: 10,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("the next page")
        .into_inner();
    assert_eq!(rest.feedback.len(), 2);
    assert!(rest.next_page_token.is_empty());
    let participants = client
        .list_feedback(pb::ListFeedbackRequest {
            kind: pb::SuggestionKind::Participant.into(),
            ..Default::default()
        })
        .await
        .expect("participant feedback")
        .into_inner();
    assert_eq!(participants.feedback.len(), 1);

    // A restart reads it all back.
    let status = server.terminate().await;
    assert!(status.success(), "{status:?}");
    let server = Server::start(&db).await;
    let restarted = discussions_of(&server, "u-ana").await;
    assert!(!restarted.contains(&dismissed), "{restarted:?}");
    assert!(!restarted.contains(&accepted), "{restarted:?}");
    assert!(!participants_of(&server, "t1").await.contains(&unwanted));

    // The same through the command line.
    let cli = server.cli_json(&[
        "feedback",
        "record",
        "--kind",
        "prospect",
        "--outcome",
        "dismissed",
        "--person",
        "forum:u-ben",
        "--actor",
        "cli",
    ]);
    assert_eq!(cli["recorded"], 1, "{cli}");
    let listed = server.cli_json(&["feedback", "list", "--kind", "prospect"]);
    assert_eq!(listed["feedback"][0]["person"], "forum:u-ben", "{listed}");
    assert_eq!(listed["counts"]["dismissed"], 3, "{listed}");
    let bad = server.cli(&["feedback", "record", "--kind", "liked", "--outcome", "done"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--kind \"liked\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test]
async fn feedback_for_a_workspace_that_does_not_exist_is_not_found() {
    let (_dir, server) = fresh().await;
    let missing = server
        .feedback()
        .record_feedback(pb::RecordFeedbackRequest {
            workspace: "nowhere".into(),
            feedback: vec![feedback(
                pb::SuggestionKind::Discussion,
                pb::FeedbackOutcome::Accepted,
                "u-ana",
                "t1",
            )],
        })
        .await
        .expect_err("no such workspace");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_suggestions_taken_up_or_dismissed_make_the_workspace_learn_again() {
    use super::ingest;
    use super::learning::{community, status_of};
    use std::time::{Duration, Instant};

    let (_dir, server) = fresh().await;
    let messages = community();
    let records = messages.len() as u64;
    assert!(ingest(&server, messages).await.errors.is_empty());
    let wait_for = |fits: u64, what: &'static str| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                let status = status_of(server).await;
                if status.models_fitted_records >= records && status.models_fits >= fits {
                    return status;
                }
                assert!(Instant::now() < deadline, "{what}: {status:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let first = wait_for(1, "no first fit within three minutes").await;
    assert_eq!(first.models_fitted_feedback, 0);

    // 99 outcomes (and any number of suggestions only shown) do not call for a fit...
    let item = |question: usize, outcome: pb::FeedbackOutcome| pb::Feedback {
        kind: pb::SuggestionKind::Participant.into(),
        outcome: outcome.into(),
        person: reference("forum", &format!("new-{}", question % 6)),
        conversation: reference("forum", &format!("q{question}")),
        at: Some(prost_types::Timestamp {
            seconds: 1_767_225_600 + question as i64 * 43_200 + 3_600,
            nanos: 0,
        }),
        ..Default::default()
    };
    let mut feedback: Vec<pb::Feedback> = (300..399)
        .map(|question| item(question, pb::FeedbackOutcome::Accepted))
        .collect();
    feedback.extend((300..360).map(|question| item(question, pb::FeedbackOutcome::Shown)));
    record(&server, feedback).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(status_of(&server).await.models_fits, first.models_fits);

    // ... the hundredth does, and the fit says what it learned from.
    record(&server, vec![item(399, pb::FeedbackOutcome::Dismissed)]).await;
    let refitted = wait_for(first.models_fits + 1, "no fit after 100 outcomes").await;
    assert_eq!(refitted.models_fitted_feedback, 100);
    let shown = server.cli_json(&["model", "show", "--workspace", "default"]);
    assert_eq!(shown[0]["fitted_feedback"], 100, "{shown}");
}
