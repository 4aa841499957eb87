//! `trellis plan`: the next concrete actions per platform — posts, discussions to start or
//! join, people to invite, assets to share — each with the facet it serves, why now, and a
//! draft that fits the platform.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use trellis_core::domain::PlatformKind;
use trellis_grpc::convert::platform_name;
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, print};
use crate::cli_prospects::reference;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan for this platform only; every platform with conversations when left out.
    #[arg(long, value_parser = parse_platform)]
    platform: Option<PlatformKind>,
    /// Actions to show, the most useful first.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    limit: i32,
    #[command(flatten)]
    client: ClientArgs,
}

fn parse_platform(value: &str) -> Result<PlatformKind, String> {
    PlatformKind::parse(value).ok_or_else(|| {
        let names: Vec<&str> = PlatformKind::ALL.iter().map(|kind| kind.as_str()).collect();
        format!(
            "{value:?} is not a platform; use one of {}",
            names.join(", ")
        )
    })
}

pub fn kind_name(value: i32) -> &'static str {
    match pb::ActionKind::try_from(value) {
        Ok(pb::ActionKind::ShortPost) => "short_post",
        Ok(pb::ActionKind::StartDiscussion) => "start_discussion",
        Ok(pb::ActionKind::InvitePerson) => "invite_person",
        Ok(pb::ActionKind::ShareAsset) => "share_asset",
        Ok(pb::ActionKind::JoinDiscussion) => "join_discussion",
        _ => "unspecified",
    }
}

/// The JSON the command prints with `--json`, and the table is drawn from.
pub fn plan_json(response: &pb::PlanActionsResponse) -> Value {
    json!({
        "actions": response.actions.iter().map(|action| json!({
            "kind": kind_name(action.kind),
            "platform": platform_name(action.platform),
            "facet_id": action.facet_id,
            "draft_text": action.draft_text,
            "conversation": reference(action.conversation.as_ref()),
            "asset": reference(action.asset.as_ref()),
            "person": reference(action.person.as_ref()),
            "tags": action.tags,
            "why_now": action.why_now,
        })).collect::<Vec<_>>(),
    })
}

pub async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let mut insight =
        pb::insight_service_client::InsightServiceClient::new(channel(&args.client).await?);
    let platform = args.platform.map_or(pb::PlatformKind::Unspecified, |kind| {
        trellis_grpc::convert::platform(Some(kind))
    });
    let response = insight
        .plan_actions(pb::PlanActionsRequest {
            workspace: args.client.workspace.clone(),
            platform: platform.into(),
            limit: args.limit,
        })
        .await
        .map_err(|status| describe(&status))
        .context("planning actions")?
        .into_inner();
    let value = plan_json(&response);
    print(&args.client, &value, |value| {
        let actions = value["actions"].as_array().cloned().unwrap_or_default();
        if actions.is_empty() {
            println!("no action to plan yet: ingest conversations and assets first");
        }
        for (position, action) in actions.iter().enumerate() {
            let target = ["conversation", "asset", "person"]
                .iter()
                .filter_map(|field| action[*field].as_str())
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "{:>2}. {} on {} for {}{}",
                position + 1,
                action["kind"].as_str().unwrap_or(""),
                action["platform"].as_str().unwrap_or(""),
                action["facet_id"].as_str().unwrap_or(""),
                if target.is_empty() {
                    String::new()
                } else {
                    format!(" ({target})")
                }
            );
            println!("    why now: {}", action["why_now"].as_str().unwrap_or(""));
            for line in action["draft_text"].as_str().unwrap_or("").lines() {
                println!("    > {line}");
            }
            let tags: Vec<&str> = action["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !tags.is_empty() {
                println!("    tags: {}", tags.join(", "));
            }
        }
    });
    Ok(())
}
