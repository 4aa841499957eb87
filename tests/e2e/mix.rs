//! `RecommendPlatformMix` end to end on the example community: per platform the strategic
//! conversations, reach, engagement, assets and trend; an effort split that adds up; findings
//! and sensitivities in words; the same numbers as `ListStrategicConversations`; the CLI; errors.

use std::collections::HashMap;

use tonic::Code;

use super::{Server, fresh, ingest_example, pb, put_example_strategy};

fn platform(stats: &pb::PlatformStats) -> pb::PlatformKind {
    pb::PlatformKind::try_from(stats.platform).expect("a known platform")
}

async fn mix(
    server: &Server,
    since: Option<prost_types::Timestamp>,
) -> pb::RecommendPlatformMixResponse {
    server
        .insight()
        .recommend_platform_mix(pb::RecommendPlatformMixRequest {
            workspace: String::new(),
            since,
        })
        .await
        .expect("the platform mix")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mix_splits_effort_across_platforms_with_reasons_matching_the_strategic_conversations()
{
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    let response = mix(&server, None).await;
    let platforms: Vec<pb::PlatformKind> = response.platforms.iter().map(platform).collect();
    // Every platform with conversations, and bookmarking, where a supporting asset lives.
    for expected in [
        pb::PlatformKind::QaForum,
        pb::PlatformKind::Chat,
        pb::PlatformKind::Blog,
        pb::PlatformKind::PublicNetwork,
        pb::PlatformKind::Bookmarking,
    ] {
        assert!(
            platforms.contains(&expected),
            "{expected:?} in {platforms:?}"
        );
    }
    let effort: f32 = response
        .platforms
        .iter()
        .map(|stats| stats.recommended_effort)
        .sum();
    assert!((effort - 1.0).abs() < 0.01, "efforts add up to 1: {effort}");
    assert!(
        response
            .platforms
            .windows(2)
            .all(|pair| pair[0].recommended_effort >= pair[1].recommended_effort),
        "most effort first"
    );
    assert_eq!(
        platforms[0],
        pb::PlatformKind::QaForum,
        "the forum carries most"
    );

    // The strategic conversations are those ListStrategicConversations connects (0.4 and up),
    // counted on the platform each lives on.
    let strategic = server
        .insight()
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            limit: 500,
            min_relevance: Some(0.4),
            ..Default::default()
        })
        .await
        .expect("strategic conversations")
        .into_inner()
        .conversations;
    let mut per_platform: HashMap<i32, u32> = HashMap::new();
    for conversation in &strategic {
        *per_platform.entry(conversation.platform).or_default() += 1;
    }
    let total: u32 = per_platform.values().sum();
    assert!(total > 0);
    for stats in &response.platforms {
        assert_eq!(
            stats.strategic_conversations,
            per_platform.get(&stats.platform).copied().unwrap_or(0),
            "{:?}",
            platform(stats)
        );
        let expected_share = stats.strategic_conversations as f32 / total as f32;
        assert!((stats.share - expected_share).abs() < 0.002);
        let per_facet: u32 = stats.facets.iter().map(|facet| facet.conversations).sum();
        assert_eq!(
            per_facet, stats.strategic_conversations,
            "each counted under one facet"
        );
        assert!(stats.reasons.len() >= 3, "{:?}", stats.reasons);
        assert!(stats.engagement >= 0.0 && stats.engagement <= 1.0);
    }
    let forum = &response.platforms[0];
    assert!(forum.members_reached >= 1, "{forum:?}");
    assert!(
        forum.reasons[0].starts_with(&format!(
            "carries {} of the {total} strategic conversations",
            forum.strategic_conversations
        )),
        "{:?}",
        forum.reasons
    );
    let public = response
        .platforms
        .iter()
        .find(|stats| platform(stats) == pb::PlatformKind::PublicNetwork)
        .expect("public networks");
    assert!(
        public.prospects_reached >= 1,
        "Eli writes there: {public:?}"
    );
    let bookmarking = response
        .platforms
        .iter()
        .find(|stats| platform(stats) == pb::PlatformKind::Bookmarking)
        .expect("bookmarking");
    assert_eq!(bookmarking.supporting_assets, 1);
    assert!(
        response
            .findings
            .iter()
            .any(|finding| finding.starts_with("The Q&A forum should get the most effort")),
        "{:?}",
        response.findings
    );
    assert!(!response.sensitivities.is_empty());

    // A window after everything: no strategic conversation, nothing to split, and it says so.
    let later = mix(
        &server,
        Some(prost_types::Timestamp {
            seconds: 4_102_444_800, // 2100-01-01
            nanos: 0,
        }),
    )
    .await;
    assert!(
        later
            .platforms
            .iter()
            .all(|stats| stats.strategic_conversations == 0 && stats.recommended_effort == 0.0)
    );
    assert!(
        later.findings[0].starts_with("no conversation on any platform connects"),
        "{:?}",
        later.findings
    );

    // The command line prints the same split.
    let json = server.cli_json(&["mix"]);
    let cli: Vec<(String, f64)> = json["platforms"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|stats| {
            (
                stats["platform"].as_str().expect("a name").to_owned(),
                stats["recommended_effort"].as_f64().expect("an effort"),
            )
        })
        .collect();
    assert_eq!(cli.len(), response.platforms.len());
    assert_eq!(cli[0].0, "qa_forum");
    for ((_, effort), stats) in cli.iter().zip(&response.platforms) {
        assert!((effort - f64::from(stats.recommended_effort)).abs() < 0.001);
    }
    let json = server.cli_json(&["mix", "--since", "2100-01-01"]);
    assert_eq!(json["platforms"][0]["recommended_effort"], 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mix_needs_a_strategy_and_the_cli_refuses_a_bad_date() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    let status = server
        .insight()
        .recommend_platform_mix(pb::RecommendPlatformMixRequest::default())
        .await
        .expect_err("no strategy yet");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    let output = server.cli(&["mix", "--since", "last tuesday"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("YYYY-MM-DD"),
        "{stderr}"
    );
}
