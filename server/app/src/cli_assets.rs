//! `trellis assets`: the assets that support a key message, a stored conversation or a text,
//! each with the passage that does, the reasons, and bookmark or share counts where known.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, evidence_json, print, round3};
use crate::cli_people::record_ref;

#[derive(Debug, Args)]
#[group(id = "asset_context", required = true, multiple = false)]
pub struct AssetContextArgs {
    /// A facet of the strategy (a key message, typically), by id.
    #[arg(long)]
    facet: Option<String>,
    /// A stored conversation, as SOURCE:ID.
    #[arg(long)]
    conversation: Option<String>,
    /// A text that is not stored.
    #[arg(long)]
    text: Option<String>,
}

#[derive(Debug, Args)]
pub struct AssetsArgs {
    #[command(flatten)]
    context: AssetContextArgs,
    /// Only the organisation's own assets.
    #[arg(long)]
    own_only: bool,
    #[arg(long, default_value_t = 10)]
    limit: i32,
    #[command(flatten)]
    client: ClientArgs,
}

fn context(args: &AssetContextArgs) -> anyhow::Result<pb::find_supporting_assets_request::Context> {
    use pb::find_supporting_assets_request::Context;
    if let Some(facet) = &args.facet {
        return Ok(Context::FacetId(facet.clone()));
    }
    if let Some(conversation) = &args.conversation {
        return Ok(Context::Conversation(record_ref(
            conversation,
            "--conversation",
        )?));
    }
    if let Some(text) = &args.text {
        return Ok(Context::Text(pb::TextInput {
            title: String::new(),
            body: text.clone(),
        }));
    }
    anyhow::bail!("give --facet ID, --conversation SOURCE:ID or --text TEXT")
}

fn kind_name(kind: i32) -> &'static str {
    match pb::AssetKind::try_from(kind) {
        Ok(pb::AssetKind::Bookmark) => "bookmark",
        Ok(pb::AssetKind::Doc) => "doc",
        Ok(pb::AssetKind::Video) => "video",
        Ok(pb::AssetKind::Thread) => "thread",
        Ok(pb::AssetKind::Article | pb::AssetKind::Unspecified) | Err(_) => "article",
    }
}

/// The JSON the command prints with `--json`, and the table is drawn from.
pub fn assets_json(response: &pb::FindSupportingAssetsResponse) -> Value {
    json!({
        "assets": response.assets.iter().map(|supporting| {
            let asset = supporting.asset.clone().unwrap_or_default();
            let reference = asset.r#ref.unwrap_or_default();
            json!({
                "asset": format!("{}:{}", reference.source, reference.external_id),
                "url": asset.url,
                "title": asset.title,
                "kind": kind_name(asset.kind),
                "own": asset.own,
                "bookmark_count": asset.bookmark_count,
                "share_count": asset.share_count,
                "score": round3(supporting.score),
                "passage": supporting.passage,
                "reasons": supporting.reasons,
                "evidence": supporting.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
    })
}

pub async fn assets(args: AssetsArgs) -> anyhow::Result<()> {
    let context = context(&args.context)?;
    let mut insight =
        pb::insight_service_client::InsightServiceClient::new(channel(&args.client).await?);
    let response = insight
        .find_supporting_assets(pb::FindSupportingAssetsRequest {
            workspace: args.client.workspace.clone(),
            context: Some(context),
            limit: args.limit,
            own_only: args.own_only,
        })
        .await
        .map_err(|status| describe(&status))
        .context("finding supporting assets")?
        .into_inner();
    let value = assets_json(&response);
    print(&args.client, &value, |value| {
        let assets = value["assets"].as_array().cloned().unwrap_or_default();
        if assets.is_empty() {
            println!("no asset supports this context yet");
        }
        for asset in assets {
            let mut counts = Vec::new();
            if let Some(count) = asset["bookmark_count"].as_u64().filter(|count| *count > 0) {
                counts.push(format!("{count} bookmarks"));
            }
            if let Some(count) = asset["share_count"].as_u64().filter(|count| *count > 0) {
                counts.push(format!("{count} shares"));
            }
            println!(
                "{:>5.2}  {:<8} {}{}",
                asset["score"].as_f64().unwrap_or(0.0),
                asset["kind"].as_str().unwrap_or(""),
                asset["title"].as_str().unwrap_or(""),
                if counts.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", counts.join(", "))
                }
            );
            let url = asset["url"].as_str().unwrap_or("");
            println!(
                "       {}",
                if url.is_empty() {
                    asset["asset"].as_str().unwrap_or("")
                } else {
                    url
                }
            );
            if let Some(passage) = asset["passage"].as_str().filter(|p| !p.is_empty()) {
                println!("       \"{passage}\"");
            }
            for reason in asset["reasons"].as_array().into_iter().flatten() {
                println!("       - {}", reason.as_str().unwrap_or(""));
            }
        }
    });
    Ok(())
}
