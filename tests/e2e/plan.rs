//! Action plans end to end (`PlanActions`): on the example community, every action has a kind,
//! a facet of the strategy, a reason, a draft within its platform's limits whose links are
//! stored links, and refs to records the server has; the platform filter and the limit hold;
//! bad requests name the field; and the command line prints the same plan.

use std::collections::HashSet;

use serde_json::Value;
use tonic::Code;
use trellis_core::domain::PlatformKind;

use super::{Server, example, fresh, ingest_example, pb, put_example_strategy, violations};

async fn plan(server: &Server, platform: pb::PlatformKind, limit: i32) -> Vec<pb::Action> {
    server
        .insight()
        .plan_actions(pb::PlanActionsRequest {
            workspace: String::new(),
            platform: platform.into(),
            limit,
        })
        .await
        .expect("a plan")
        .into_inner()
        .actions
}

/// Record ids and links of the example community, by record type.
struct Example {
    assets: HashSet<String>,
    links: HashSet<String>,
    platforms: HashSet<String>,
}

fn example_records() -> Example {
    let text = std::fs::read_to_string(example("community.jsonl")).expect("the example community");
    let mut records = Example {
        assets: HashSet::new(),
        links: HashSet::new(),
        platforms: HashSet::new(),
    };
    for line in text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
    {
        let value: Value = serde_json::from_str(line).expect("every example line is JSON");
        let id = format!(
            "{}:{}",
            value["source"].as_str().unwrap_or_default(),
            value["id"].as_str().unwrap_or_default()
        );
        if let Some(url) = value["url"].as_str() {
            records.links.insert(url.to_owned());
        }
        match value["type"].as_str() {
            Some("asset") => {
                records.assets.insert(id);
            }
            Some("conversation") => {
                records
                    .platforms
                    .insert(value["platform"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    records
}

fn id(reference: &pb::RecordRef) -> String {
    format!("{}:{}", reference.source, reference.external_id)
}

fn core_platform(action: &pb::Action) -> PlatformKind {
    trellis_grpc::convert::parse_platform(action.platform)
        .expect("a known platform")
        .expect("every action names its platform")
}

/// Everything every action of a plan must hold, checked against the server and the example.
async fn check_actions(server: &Server, actions: &[pb::Action]) {
    let facets: HashSet<String> = super::example_strategy()
        .facets
        .into_iter()
        .map(|facet| facet.id)
        .collect();
    let example = example_records();
    for action in actions {
        let kind = pb::ActionKind::try_from(action.kind).expect("a known kind");
        assert_ne!(kind, pb::ActionKind::Unspecified, "{action:?}");
        assert!(facets.contains(&action.facet_id), "{action:?}");
        assert!(!action.why_now.trim().is_empty(), "{action:?}");
        assert!(!action.draft_text.trim().is_empty(), "{action:?}");

        // Within the platform's limits, tags too.
        let platform = core_platform(action);
        let limits = platform.limits();
        let chars = action.draft_text.chars().count();
        assert!(
            chars <= limits.short_post_chars,
            "{chars} characters on {platform:?}: {}",
            action.draft_text
        );
        if kind == pb::ActionKind::StartDiscussion && limits.title_chars > 0 {
            let title = action.draft_text.lines().next().expect("a title line");
            assert!(title.chars().count() <= limits.title_chars, "{title}");
        }
        assert!(action.tags.len() <= limits.max_tags, "{action:?}");
        assert!(
            action
                .tags
                .iter()
                .all(|tag| !tag.is_empty() && tag.chars().count() <= limits.tag_chars),
            "{:?}",
            action.tags
        );

        // Links are stored links, whole.
        for word in action.draft_text.split_whitespace() {
            if word.starts_with("http") {
                assert!(
                    example.links.contains(word),
                    "{word} is not a stored link: {}",
                    action.draft_text
                );
            }
        }

        // Refs name records the server has.
        if let Some(conversation) = &action.conversation {
            server
                .insight()
                .score_conversations(pb::ScoreConversationsRequest {
                    conversations: vec![conversation.clone()],
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|status| panic!("{} is not stored: {status}", id(conversation)));
        }
        if let Some(asset) = &action.asset {
            assert!(example.assets.contains(&id(asset)), "{action:?}");
        }
        if let Some(person) = &action.person {
            server
                .people()
                .get_person(pb::GetPersonRequest {
                    workspace: String::new(),
                    r#ref: Some(person.clone()),
                })
                .await
                .unwrap_or_else(|status| panic!("{} is not known: {status}", id(person)));
        }

        // What each kind needs to be done.
        match kind {
            pb::ActionKind::JoinDiscussion => assert!(action.conversation.is_some()),
            pb::ActionKind::InvitePerson => {
                assert!(action.person.is_some() && action.conversation.is_some())
            }
            pb::ActionKind::ShareAsset => {
                assert!(action.asset.is_some());
                assert!(action.draft_text.contains("https://"), "{action:?}");
            }
            pb::ActionKind::ShortPost => {
                assert!(action.conversation.is_some() || action.asset.is_some());
                assert!(action.draft_text.contains("https://"), "{action:?}");
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_spans_the_platforms_with_drafts_that_fit_and_refs_that_exist() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    let actions = plan(&server, pb::PlatformKind::Unspecified, 0).await;
    assert_eq!(actions.len(), 10, "the default limit is 10: {actions:#?}");
    check_actions(&server, &actions).await;

    // Only the platforms the community talks on, and more than one of them.
    let example = example_records();
    let platforms: HashSet<&str> = actions
        .iter()
        .map(|action| core_platform(action).as_str())
        .collect();
    assert!(platforms.len() >= 2, "{platforms:?}");
    for platform in &platforms {
        assert!(example.platforms.contains(*platform), "{platform}");
    }
    // A plan, not ten of one thing.
    let kinds: HashSet<i32> = actions.iter().map(|action| action.kind).collect();
    assert!(kinds.len() >= 3, "{actions:#?}");
    // The same action is never planned twice.
    let identities: HashSet<String> = actions
        .iter()
        .map(|action| {
            format!(
                "{}/{}/{:?}/{:?}/{:?}/{}",
                action.kind,
                action.platform,
                action.conversation,
                action.asset,
                action.person,
                action.facet_id
            )
        })
        .collect();
    assert_eq!(identities.len(), actions.len());

    // The prospects of the community are invited to an open thread.
    let invited: Vec<&pb::Action> = actions
        .iter()
        .filter(|action| action.kind == pb::ActionKind::InvitePerson as i32)
        .collect();
    assert!(
        invited
            .iter()
            .any(|action| action.person.as_ref().map(id).as_deref() == Some("social:p-eli")),
        "{invited:#?}"
    );

    // The same request gives the same plan; a smaller limit gives its head.
    let again = plan(&server, pb::PlatformKind::Unspecified, 10).await;
    assert_eq!(again, actions);
    let head = plan(&server, pb::PlatformKind::Unspecified, 3).await;
    assert_eq!(head.as_slice(), &actions[..3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_filter_and_the_limit_hold() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    for platform in [
        pb::PlatformKind::QaForum,
        pb::PlatformKind::Chat,
        pb::PlatformKind::Bookmarking,
        pb::PlatformKind::PrivateNetwork,
    ] {
        let actions = plan(&server, platform, 4).await;
        assert!(!actions.is_empty(), "{platform:?}");
        assert!(actions.len() <= 4, "{platform:?}");
        assert!(
            actions
                .iter()
                .all(|action| action.platform == platform as i32),
            "{platform:?}: {actions:#?}"
        );
        check_actions(&server, &actions).await;
    }

    // Bookmarking sites have no conversation here: the plan there is assets to bookmark, with
    // tags, the most bookmarked message first.
    let bookmarks = plan(&server, pb::PlatformKind::Bookmarking, 10).await;
    assert!(
        bookmarks
            .iter()
            .all(|action| action.kind == pb::ActionKind::ShareAsset as i32
                && !action.tags.is_empty()),
        "{bookmarks:#?}"
    );
    assert!(
        bookmarks
            .iter()
            .any(|action| action.asset.as_ref().map(id).as_deref() == Some("bookmarks:bm-slo")),
        "{bookmarks:#?}"
    );

    // A Q&A forum gets no short posts or shares, and its new discussions have titles.
    let forum = plan(&server, pb::PlatformKind::QaForum, 20).await;
    assert!(forum.iter().all(|action| {
        action.kind != pb::ActionKind::ShortPost as i32
            && action.kind != pb::ActionKind::ShareAsset as i32
    }));
    assert!(
        forum.iter().any(
            |action| action.kind == pb::ActionKind::StartDiscussion as i32
                && action.draft_text.contains("\n\n")
        ),
        "{forum:#?}"
    );

    assert_eq!(
        plan(&server, pb::PlatformKind::Unspecified, 1).await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_plan_requests_name_the_field_and_a_missing_strategy_is_a_precondition() {
    let (_dir, server) = fresh().await;
    let status = server
        .insight()
        .plan_actions(pb::PlanActionsRequest::default())
        .await
        .expect_err("no strategy yet");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("strategy"), "{status:?}");

    put_example_strategy(&server).await;
    let status = server
        .insight()
        .plan_actions(pb::PlanActionsRequest {
            limit: -1,
            ..Default::default()
        })
        .await
        .expect_err("a negative limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "limit");
    let status = server
        .insight()
        .plan_actions(pb::PlanActionsRequest {
            platform: 99,
            ..Default::default()
        })
        .await
        .expect_err("an unknown platform");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "platform");
    let status = server
        .insight()
        .plan_actions(pb::PlanActionsRequest {
            workspace: "nowhere".into(),
            ..Default::default()
        })
        .await
        .expect_err("an unknown workspace");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // The command line refuses an unknown platform by name.
    let output = server.cli(&["plan", "--platform", "fax"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a platform"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_prints_the_same_plan() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let actions = plan(&server, pb::PlatformKind::QaForum, 5).await;
    let json = server.cli_json(&["plan", "--platform", "qa_forum", "--limit", "5"]);
    let printed = json["actions"].as_array().expect("a list of actions");
    assert_eq!(printed.len(), actions.len());
    for (printed, action) in printed.iter().zip(&actions) {
        assert_eq!(printed["platform"], "qa_forum");
        assert_eq!(printed["facet_id"], action.facet_id.as_str());
        assert_eq!(printed["draft_text"], action.draft_text.as_str());
        assert_eq!(printed["why_now"], action.why_now.as_str());
    }
}
