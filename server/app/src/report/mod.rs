//! `trellis report --out DIR`: what Trellis recommends for a workspace, for people to read.
//!
//! The report is gathered through the public API only (the strategy, the platform mix with
//! facet coverage over time, the conversations to nourish, the members to engage, the prospects,
//! the assets per facet and the next actions), kept as one [`Report`] value, and written three ways from it:
//! `report.json` (the value itself), `report.md` and `report.html`, a single self-contained page
//! (inline CSS and SVG charts, no network needed) that can be mailed or archived as it is.

mod html;
mod markdown;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trellis_grpc::convert::platform_name;
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, round3};
use crate::cli_people::ref_text;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The folder to write report.html, report.md and report.json into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Conversations, people and prospects listed in each section.
    #[arg(long, default_value_t = 10)]
    limit: i32,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub workspace: String,
    pub strategy: StrategySummary,
    pub mix: Mix,
    pub conversations: Vec<ConversationRow>,
    pub people: Vec<PersonRow>,
    pub prospects: Vec<PersonRow>,
    pub assets: Vec<FacetAssets>,
    pub actions: Vec<ActionRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    pub kind: String,
    pub platform: String,
    pub facet_id: String,
    pub draft_text: String,
    /// The conversation, asset or person the action is about, as SOURCE:ID.
    pub target: String,
    pub tags: Vec<String>,
    pub why_now: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategySummary {
    pub name: String,
    pub version: u32,
    pub facets: Vec<FacetSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetSummary {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    pub period_days: u32,
    pub platforms: Vec<PlatformRow>,
    pub findings: Vec<String>,
    pub sensitivities: Vec<String>,
    pub coverage: Vec<CoverageRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformRow {
    pub platform: String,
    pub recommended_effort: f64,
    pub strategic_conversations: u32,
    pub share: f64,
    pub engagement: f64,
    pub members_reached: u32,
    pub prospects_reached: u32,
    pub supporting_assets: u32,
    pub trend: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageRow {
    /// The period's first and last day, as dates.
    pub start: String,
    pub end: String,
    /// Strategic conversations started in the period, per facet in the strategy's order.
    pub conversations: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationRow {
    pub conversation: String,
    pub title: String,
    pub url: String,
    pub platform: String,
    pub priority: f64,
    pub relevance: f64,
    pub facet: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonRow {
    pub person: String,
    pub name: String,
    pub score: f64,
    pub convergence: f64,
    pub reasons: Vec<String>,
    pub invitation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetAssets {
    pub facet_id: String,
    pub facet_name: String,
    pub assets: Vec<AssetRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssetRow {
    pub asset: String,
    pub title: String,
    pub url: String,
    pub score: f64,
    pub passage: String,
    pub bookmark_count: u32,
    pub share_count: u32,
}

/// What the numbers of a table of people mean, said under it.
pub(crate) const PEOPLE_SCORES: &str = "Score: how strong a prospect is next to the best of this list (1.00), from convergence, activity and reach together; not a probability. Convergence: how far their interests meet the strategy, 0.50 being the level of the community's most convergent people.";

/// A title to show: the title, or "(untitled)" for a conversation without one (a status post).
fn shown_title(title: &str) -> &str {
    if title.trim().is_empty() {
        "(untitled)"
    } else {
        title
    }
}

fn date(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|timestamp| OffsetDateTime::from_unix_timestamp(timestamp.seconds).ok())
        .map_or(String::new(), |time| time.date().to_string())
}

fn person_row(prospect: &pb::Prospect) -> PersonRow {
    let person = prospect.person.clone().unwrap_or_default();
    PersonRow {
        person: ref_text(person.r#ref.as_ref()),
        name: person.display_name,
        score: round3(prospect.score),
        convergence: round3(prospect.convergence),
        reasons: prospect.reasons.clone(),
        invitation: prospect
            .invitation
            .as_ref()
            .map_or(String::new(), |invitation| invitation.draft_message.clone()),
    }
}

/// Gathers the report through the API.
pub async fn gather(client: &ClientArgs, limit: i32) -> anyhow::Result<Report> {
    let channel = channel(client).await?;
    let workspace = client.workspace.clone();
    let mut strategies = pb::strategy_service_client::StrategyServiceClient::new(channel.clone());
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel);

    let version = strategies
        .get_strategy(pb::GetStrategyRequest {
            workspace: workspace.clone(),
            version: 0,
        })
        .await
        .map_err(|status| describe(&status))
        .context("reading the strategy")?
        .into_inner()
        .strategy_version
        .unwrap_or_default();
    let strategy_pb = version.strategy.unwrap_or_default();
    let strategy = StrategySummary {
        name: strategy_pb.name.clone(),
        version: version.version,
        facets: strategy_pb
            .facets
            .iter()
            .map(|facet| FacetSummary {
                id: facet.id.clone(),
                name: facet.name.clone(),
            })
            .collect(),
    };

    let mix_pb = insight
        .recommend_platform_mix(pb::RecommendPlatformMixRequest {
            workspace: workspace.clone(),
            since: None,
        })
        .await
        .map_err(|status| describe(&status))
        .context("recommending the platform mix")?
        .into_inner();
    let mix = Mix {
        period_days: mix_pb.period_days,
        platforms: mix_pb
            .platforms
            .iter()
            .map(|stats| PlatformRow {
                platform: platform_name(stats.platform).to_owned(),
                recommended_effort: round3(stats.recommended_effort),
                strategic_conversations: stats.strategic_conversations,
                share: round3(stats.share),
                engagement: round3(stats.engagement),
                members_reached: stats.members_reached,
                prospects_reached: stats.prospects_reached,
                supporting_assets: stats.supporting_assets,
                trend: round3(stats.trend),
                reasons: stats.reasons.clone(),
            })
            .collect(),
        findings: mix_pb.findings.clone(),
        sensitivities: mix_pb.sensitivities.clone(),
        coverage: mix_pb
            .coverage
            .iter()
            .map(|period| CoverageRow {
                start: date(period.start.as_ref()),
                end: date(period.end.as_ref()),
                conversations: strategy
                    .facets
                    .iter()
                    .map(|facet| {
                        period
                            .facets
                            .iter()
                            .find(|share| share.facet_id == facet.id)
                            .map_or(0, |share| share.conversations)
                    })
                    .collect(),
            })
            .collect(),
    };

    let conversations = insight
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            workspace: workspace.clone(),
            limit,
            ..Default::default()
        })
        .await
        .map_err(|status| describe(&status))
        .context("listing the conversations to nourish")?
        .into_inner()
        .conversations
        .iter()
        .map(|conversation| ConversationRow {
            conversation: ref_text(conversation.conversation.as_ref()),
            title: conversation.title.clone(),
            url: conversation.url.clone(),
            platform: platform_name(conversation.platform).to_owned(),
            priority: round3(conversation.priority),
            relevance: round3(conversation.relevance),
            facet: conversation
                .facets
                .iter()
                .max_by(|a, b| a.relevance.total_cmp(&b.relevance))
                .map(|facet| facet.facet_id.clone()),
            reasons: conversation.reasons.clone(),
        })
        .collect();

    // Members to engage: the members whose interests meet the strategy most, ranked as
    // prospects are (convergence, activity, reach).
    let everyone = insight
        .find_prospects(pb::FindProspectsRequest {
            workspace: workspace.clone(),
            limit: 500,
            include_members: true,
            ..Default::default()
        })
        .await
        .map_err(|status| describe(&status))
        .context("finding the members to engage")?
        .into_inner();
    let people = everyone
        .prospects
        .iter()
        .filter(|prospect| prospect.person.as_ref().is_some_and(|person| person.member))
        .take(limit.max(0) as usize)
        .map(person_row)
        .collect();
    let prospects = insight
        .find_prospects(pb::FindProspectsRequest {
            workspace: workspace.clone(),
            limit,
            ..Default::default()
        })
        .await
        .map_err(|status| describe(&status))
        .context("finding prospects")?
        .into_inner()
        .prospects
        .iter()
        .map(person_row)
        .collect();

    let mut assets = Vec::new();
    for facet in &strategy.facets {
        let found = insight
            .find_supporting_assets(pb::FindSupportingAssetsRequest {
                workspace: workspace.clone(),
                context: Some(pb::find_supporting_assets_request::Context::FacetId(
                    facet.id.clone(),
                )),
                limit: 3,
                own_only: false,
            })
            .await
            .map_err(|status| describe(&status))
            .with_context(|| format!("finding the assets for {}", facet.id))?
            .into_inner();
        assets.push(FacetAssets {
            facet_id: facet.id.clone(),
            facet_name: facet.name.clone(),
            assets: found
                .assets
                .iter()
                .map(|supporting| {
                    let asset = supporting.asset.clone().unwrap_or_default();
                    AssetRow {
                        asset: ref_text(asset.r#ref.as_ref()),
                        title: asset.title,
                        url: asset.url,
                        score: round3(supporting.score),
                        passage: supporting.passage.clone(),
                        bookmark_count: asset.bookmark_count,
                        share_count: asset.share_count,
                    }
                })
                .collect(),
        });
    }

    let actions = insight
        .plan_actions(pb::PlanActionsRequest {
            workspace: workspace.clone(),
            platform: 0,
            limit,
        })
        .await
        .map_err(|status| describe(&status))
        .context("planning the next actions")?
        .into_inner()
        .actions
        .iter()
        .map(|action| ActionRow {
            kind: crate::cli_plan::kind_name(action.kind).to_owned(),
            platform: platform_name(action.platform).to_owned(),
            facet_id: action.facet_id.clone(),
            draft_text: action.draft_text.clone(),
            target: ref_text(
                [&action.person, &action.conversation, &action.asset]
                    .into_iter()
                    .find_map(Option::as_ref),
            ),
            tags: action.tags.clone(),
            why_now: action.why_now.clone(),
        })
        .collect();

    Ok(Report {
        generated_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        workspace: if workspace.is_empty() {
            "default".to_owned()
        } else {
            workspace
        },
        strategy,
        mix,
        conversations,
        people,
        prospects,
        assets,
        actions,
    })
}

/// Writes the three forms of the report into `out`; returns the HTML page's path.
pub fn write(report: &Report, out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    let files = [
        ("report.json", json),
        ("report.md", markdown::render(report)),
        ("report.html", html::render(report)),
    ];
    for (name, content) in &files {
        let path = out.join(name);
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(out.join("report.html"))
}

pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let report = gather(&args.client, args.limit).await?;
    let page = write(&report, &args.out)?;
    if args.client.json {
        println!(
            "{}",
            serde_json::json!({
                "html": page,
                "markdown": args.out.join("report.md"),
                "json": args.out.join("report.json"),
            })
        );
    } else {
        println!(
            "report written: {} (also report.md and report.json there)",
            page.display()
        );
    }
    Ok(())
}
