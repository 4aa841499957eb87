//! `trellis mix`: which platforms carry the strategic conversations, whom they reach, and how
//! to split the effort across them, with the reasons and what would change them.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trellis_grpc::pb;

use trellis_grpc::convert::platform_name;

use crate::cli::{ClientArgs, channel, describe, print, round3};

#[derive(Debug, Args)]
pub struct MixArgs {
    /// Only conversations active since this time: a date (2026-10-01) or an RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    since: Option<OffsetDateTime>,
    #[command(flatten)]
    client: ClientArgs,
}

fn parse_since(value: &str) -> Result<OffsetDateTime, String> {
    if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(time);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &date_format)
        .map(|date| date.midnight().assume_utc())
        .map_err(|_| {
            format!("{value:?} is not a date; give YYYY-MM-DD or an RFC 3339 time such as 2026-10-01T00:00:00Z")
        })
}

/// The JSON the command prints with `--json`, and the table is drawn from.
pub fn mix_json(response: &pb::RecommendPlatformMixResponse) -> Value {
    json!({
        "platforms": response.platforms.iter().map(|stats| json!({
            "platform": platform_name(stats.platform),
            "strategic_conversations": stats.strategic_conversations,
            "share": round3(stats.share),
            "facets": stats.facets.iter().map(|facet| json!({
                "facet_id": facet.facet_id,
                "conversations": facet.conversations,
                "share": round3(facet.share),
            })).collect::<Vec<_>>(),
            "engagement": round3(stats.engagement),
            "members_reached": stats.members_reached,
            "prospects_reached": stats.prospects_reached,
            "supporting_assets": stats.supporting_assets,
            "trend": round3(stats.trend),
            "recommended_effort": round3(stats.recommended_effort),
            "reasons": stats.reasons,
        })).collect::<Vec<_>>(),
        "findings": response.findings,
        "sensitivities": response.sensitivities,
    })
}

pub async fn mix(args: MixArgs) -> anyhow::Result<()> {
    let mut insight =
        pb::insight_service_client::InsightServiceClient::new(channel(&args.client).await?);
    let response = insight
        .recommend_platform_mix(pb::RecommendPlatformMixRequest {
            workspace: args.client.workspace.clone(),
            since: args.since.map(|since| prost_types::Timestamp {
                seconds: since.unix_timestamp(),
                nanos: since.nanosecond() as i32,
            }),
        })
        .await
        .map_err(|status| describe(&status))
        .context("recommending the platform mix")?
        .into_inner();
    let value = mix_json(&response);
    print(&args.client, &value, |value| {
        println!(
            "{:<16} {:>7} {:>10} {:>6} {:>10} {:>7}",
            "platform", "effort", "strategic", "share", "reached", "trend"
        );
        for stats in value["platforms"].as_array().into_iter().flatten() {
            println!(
                "{:<16} {:>6.0}% {:>10} {:>5.0}% {:>10} {:>+6.0}%",
                stats["platform"].as_str().unwrap_or(""),
                stats["recommended_effort"].as_f64().unwrap_or(0.0) * 100.0,
                stats["strategic_conversations"].as_u64().unwrap_or(0),
                stats["share"].as_f64().unwrap_or(0.0) * 100.0,
                stats["members_reached"].as_u64().unwrap_or(0)
                    + stats["prospects_reached"].as_u64().unwrap_or(0),
                stats["trend"].as_f64().unwrap_or(0.0) * 100.0,
            );
            for reason in stats["reasons"].as_array().into_iter().flatten() {
                println!("    - {}", reason.as_str().unwrap_or(""));
            }
        }
        for (title, key) in [
            ("findings", "findings"),
            ("what would change this", "sensitivities"),
        ] {
            let lines = value[key].as_array().cloned().unwrap_or_default();
            if !lines.is_empty() {
                println!("{title}:");
                for line in lines {
                    println!("  - {}", line.as_str().unwrap_or(""));
                }
            }
        }
    });
    Ok(())
}
