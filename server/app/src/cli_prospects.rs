//! `trellis prospects`: people outside the community whose interests meet the strategy, each
//! with why, the evidence of their own writing, and a draft invitation.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, evidence_json, print, round3};

#[derive(Debug, Args)]
pub struct ProspectsArgs {
    /// Judge convergence with this facet of the strategy only (by id).
    #[arg(long)]
    facet: Option<String>,
    /// Rank members of the community too.
    #[arg(long)]
    include_members: bool,
    #[arg(long, default_value_t = 10)]
    limit: i32,
    #[command(flatten)]
    client: ClientArgs,
}

/// A record ref as `SOURCE:ID`, or `None` (JSON null) when there is none.
pub(crate) fn reference(reference: Option<&pb::RecordRef>) -> Option<String> {
    reference.map(|reference| format!("{}:{}", reference.source, reference.external_id))
}

/// The JSON the command prints with `--json`, and the table is drawn from.
pub fn prospects_json(response: &pb::FindProspectsResponse) -> Value {
    json!({
        "prospects": response.prospects.iter().map(|prospect| {
            let person = prospect.person.clone().unwrap_or_default();
            let invitation = prospect.invitation.clone().unwrap_or_default();
            json!({
                "person": reference(person.r#ref.as_ref()),
                "display_name": person.display_name,
                "member": person.member,
                "score": round3(prospect.score),
                "convergence": round3(prospect.convergence),
                "activity": round3(prospect.activity),
                "reach": prospect.reach,
                "reasons": prospect.reasons,
                "evidence": prospect.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
                "invitation": {
                    "conversation": reference(invitation.conversation.as_ref()),
                    "asset": reference(invitation.asset.as_ref()),
                    "draft_message": invitation.draft_message,
                },
            })
        }).collect::<Vec<_>>(),
    })
}

pub async fn prospects(args: ProspectsArgs) -> anyhow::Result<()> {
    let mut insight =
        pb::insight_service_client::InsightServiceClient::new(channel(&args.client).await?);
    let response = insight
        .find_prospects(pb::FindProspectsRequest {
            workspace: args.client.workspace.clone(),
            limit: args.limit,
            facet_id: args.facet.clone().unwrap_or_default(),
            include_members: args.include_members,
            as_of: None,
        })
        .await
        .map_err(|status| describe(&status))
        .context("finding prospects")?
        .into_inner();
    let value = prospects_json(&response);
    print(&args.client, &value, |value| {
        let prospects = value["prospects"].as_array().cloned().unwrap_or_default();
        if prospects.is_empty() {
            println!(
                "no prospect yet: nobody outside the community whose interests meet the strategy"
            );
        }
        for prospect in prospects {
            println!(
                "{:>5.2}  {}",
                prospect["score"].as_f64().unwrap_or(0.0),
                crate::cli_people::person_label(&prospect)
            );
            for reason in prospect["reasons"].as_array().into_iter().flatten() {
                println!("       - {}", reason.as_str().unwrap_or(""));
            }
            if let Some(draft) = prospect["invitation"]["draft_message"]
                .as_str()
                .filter(|draft| !draft.is_empty())
            {
                println!("       invite: {draft}");
            }
        }
    });
    Ok(())
}
