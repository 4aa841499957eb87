//! Shaping conversations end to end: the assets that support a message (`FindSupportingAssets`)
//! and the people outside the community worth bringing in (`FindProspects`), over gRPC and
//! through the command line, with their errors.

use tonic::Code;

use super::{Server, fresh, ingest_example, pb, put_example_strategy, reference, violations};

fn person_id(prospect: &pb::Prospect) -> String {
    let reference = prospect
        .person
        .as_ref()
        .and_then(|person| person.r#ref.as_ref())
        .expect("every prospect names its person");
    format!("{}:{}", reference.source, reference.external_id)
}

async fn prospects(server: &Server, request: pb::FindProspectsRequest) -> Vec<pb::Prospect> {
    server
        .insight()
        .find_prospects(request)
        .await
        .expect("prospects")
        .into_inner()
        .prospects
}

#[tokio::test(flavor = "multi_thread")]
async fn prospects_are_people_outside_the_community_with_reasons_evidence_and_an_invitation() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);

    let outsiders = prospects(
        &server,
        pb::FindProspectsRequest {
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    let ids: Vec<String> = outsiders.iter().map(person_id).collect();
    // The example community's two non-members both write about what the strategy is about;
    // its members never appear. (People known only from their posts, with no person record,
    // are not marked as members: they may appear, and say so.)
    for outsider in ["forum:u-dora", "social:p-eli"] {
        assert!(ids.contains(&outsider.to_owned()), "{outsider} in {ids:?}");
    }
    for member in ["forum:u-ana", "forum:u-ben", "forum:u-chen"] {
        assert!(
            !ids.contains(&member.to_owned()),
            "{member} is a member: {ids:?}"
        );
    }
    assert!((outsiders[0].score - 1.0).abs() < 1e-6, "the best scores 1");
    assert!(
        outsiders
            .windows(2)
            .all(|pair| pair[0].score >= pair[1].score)
    );
    for prospect in &outsiders {
        assert!(!prospect.person.as_ref().expect("a person").member);
        assert!(prospect.convergence > 0.0 && prospect.convergence < 1.0);
        assert!(
            prospect
                .reasons
                .iter()
                .any(|reason| reason.contains("convergence")),
            "{:?}",
            prospect.reasons
        );
        assert!(
            prospect.reasons.iter().any(|reason| {
                reason == "not a member of the community yet"
                    || reason.starts_with("known only from what they wrote")
            }),
            "{:?}",
            prospect.reasons
        );
        let invitation = prospect.invitation.as_ref().expect("an invitation");
        assert!(!invitation.draft_message.is_empty());
        assert!(invitation.draft_message.chars().count() <= 280);
        assert!(
            invitation.conversation.is_some() || invitation.asset.is_some(),
            "something to invite {} with",
            person_id(prospect)
        );
    }
    // Eli wrote on the public network: his evidence quotes his own words, and he is invited to
    // an open conversation he is not in yet, named with its link in the draft.
    let eli = outsiders
        .iter()
        .find(|prospect| person_id(prospect) == "social:p-eli")
        .expect("Eli is a prospect");
    assert!(eli.activity > 0.0 && eli.reach >= 1.0, "{eli:?}");
    assert!(
        eli.evidence
            .iter()
            .any(|evidence| !evidence.sentence.is_empty()),
        "{eli:?}"
    );
    let invitation = eli.invitation.as_ref().expect("an invitation");
    let conversation = invitation
        .conversation
        .as_ref()
        .expect("an open conversation for Eli");
    assert_ne!(
        conversation.source, "social",
        "not his own thread: {conversation:?}"
    );
    let stored = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: Some(conversation.clone()),
        })
        .await
        .expect("the invitation's conversation is stored")
        .into_inner()
        .conversation
        .expect("a conversation");
    assert!(stored.open, "invited to an open conversation: {stored:?}");
    assert!(
        invitation.draft_message.contains(&stored.url) && !stored.url.is_empty(),
        "{invitation:?}"
    );
    assert!(
        invitation.draft_message.starts_with("Hi Eli,"),
        "{invitation:?}"
    );

    // One facet: Dora, who does dashboards as code, leads.
    let dashboards = prospects(
        &server,
        pb::FindProspectsRequest {
            facet_id: "dashboards-as-code".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        dashboards.first().map(person_id).as_deref(),
        Some("forum:u-dora"),
        "{:?}",
        dashboards.iter().map(person_id).collect::<Vec<_>>()
    );

    // Members too, on request; the limit holds.
    let everyone = prospects(
        &server,
        pb::FindProspectsRequest {
            include_members: true,
            limit: 50,
            ..Default::default()
        },
    )
    .await;
    assert!(everyone.len() > outsiders.len(), "members join the ranking");
    assert!(
        everyone
            .iter()
            .any(|prospect| prospect.person.as_ref().is_some_and(|person| person.member))
    );
    let two = prospects(
        &server,
        pb::FindProspectsRequest {
            include_members: true,
            limit: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        two.iter().map(person_id).collect::<Vec<_>>(),
        everyone.iter().take(2).map(person_id).collect::<Vec<_>>()
    );

    // The command line shows the same people, in the same order.
    let json = server.cli_json(&["prospects", "--limit", "10"]);
    let cli_ids: Vec<String> = json["prospects"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|prospect| prospect["person"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(cli_ids, ids);
    assert!(
        json["prospects"][0]["invitation"]["draft_message"]
            .as_str()
            .is_some_and(|draft| !draft.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prospects_refuse_bad_requests_and_need_a_strategy() {
    let (_dir, server) = fresh().await;
    ingest_example(&server);
    let mut insight = server.insight();

    let status = insight
        .find_prospects(pb::FindProspectsRequest::default())
        .await
        .expect_err("no strategy yet");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    put_example_strategy(&server).await;
    let status = insight
        .find_prospects(pb::FindProspectsRequest {
            limit: -1,
            ..Default::default()
        })
        .await
        .expect_err("a negative limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "limit");

    let status = insight
        .find_prospects(pb::FindProspectsRequest {
            facet_id: "  ".into(),
            ..Default::default()
        })
        .await
        .expect_err("a blank facet");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "facet_id");

    let status = insight
        .find_prospects(pb::FindProspectsRequest {
            facet_id: "no-such-facet".into(),
            ..Default::default()
        })
        .await
        .expect_err("an unknown facet");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("no-such-facet"), "{status:?}");

    let output = server.cli(&["prospects", "--facet", "no-such-facet"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no-such-facet"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn supporting_assets_come_with_passages_counts_and_reasons_for_each_kind_of_context() {
    let (_dir, server) = fresh().await;
    put_example_strategy(&server).await;
    ingest_example(&server);
    let mut insight = server.insight();
    use pb::find_supporting_assets_request::Context;
    let find = |context: Context, own_only: bool| pb::FindSupportingAssetsRequest {
        workspace: String::new(),
        context: Some(context),
        limit: 5,
        own_only,
    };
    let asset_id = |supporting: &pb::SupportingAsset| {
        let reference = supporting
            .asset
            .as_ref()
            .and_then(|asset| asset.r#ref.as_ref())
            .expect("an asset ref");
        format!("{}:{}", reference.source, reference.external_id)
    };

    // A key message: the bookmarked SLO walk-through leads, with its count and passage.
    let for_facet = insight
        .find_supporting_assets(find(Context::FacetId("dashboards-as-code".into()), false))
        .await
        .expect("assets for a facet")
        .into_inner()
        .assets;
    let first = for_facet.first().expect("an asset supports the message");
    assert_eq!(asset_id(first), "bookmarks:bm-slo");
    assert_eq!(first.asset.as_ref().expect("an asset").bookmark_count, 42);
    assert!(!first.passage.is_empty());
    assert!(
        first
            .reasons
            .iter()
            .any(|reason| reason == "bookmarked 42 times")
    );
    assert!(
        first
            .reasons
            .iter()
            .any(|reason| reason.starts_with("speaks to \"Observability as code\"")),
        "{:?}",
        first.reasons
    );

    // A stored conversation: the Kafka propagation thread finds the propagation guide.
    let for_conversation = insight
        .find_supporting_assets(find(
            Context::Conversation(reference("forum", "t2").expect("a ref")),
            false,
        ))
        .await
        .expect("assets for a conversation")
        .into_inner()
        .assets;
    assert_eq!(
        for_conversation.first().map(asset_id).as_deref(),
        Some("docs:guide-propagation")
    );

    // A free text, own assets only.
    let own = insight
        .find_supporting_assets(find(
            Context::Text(pb::TextInput {
                title: String::new(),
                body: "context propagation through Kafka message headers".into(),
            }),
            true,
        ))
        .await
        .expect("own assets for a text")
        .into_inner()
        .assets;
    assert!(
        own.iter()
            .all(|supporting| supporting.asset.as_ref().is_some_and(|a| a.own))
    );

    // Errors name the field.
    let status = insight
        .find_supporting_assets(pb::FindSupportingAssetsRequest::default())
        .await
        .expect_err("no context");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "context");
    let status = insight
        .find_supporting_assets(find(Context::FacetId("nope".into()), false))
        .await
        .expect_err("an unknown facet");
    assert_eq!(status.code(), Code::NotFound);
    let status = insight
        .find_supporting_assets(find(
            Context::Conversation(reference("forum", "missing").expect("a ref")),
            false,
        ))
        .await
        .expect_err("an unknown conversation");
    assert_eq!(status.code(), Code::NotFound);

    // The command line prints the same ranking.
    let json = server.cli_json(&["assets", "--facet", "dashboards-as-code", "--limit", "5"]);
    let cli_ids: Vec<&str> = json["assets"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|asset| asset["asset"].as_str().expect("an id"))
        .collect();
    assert_eq!(cli_ids, for_facet.iter().map(asset_id).collect::<Vec<_>>());
}
