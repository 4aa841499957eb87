//! `trellis feedback record|list`: what became of suggestions, one at a time from flags or in
//! bulk from a JSON Lines file, and the workspace's record of it.

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, print};
use crate::cli_people::record_ref;

/// Feedback one call carries at most (the server's limit).
const CALL: usize = 1_000;

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Records what became of a suggestion (flags), or of many (`--file`, JSON Lines).
    Record(RecordArgs),
    /// The workspace's feedback, newest first, with its counts by outcome.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// What was suggested: discussion, participant, asset, prospect or action.
    #[arg(long, required_unless_present = "file")]
    kind: Option<String>,
    /// What became of it: shown, accepted, dismissed or done.
    #[arg(long, required_unless_present = "file")]
    outcome: Option<String>,
    /// The person (SOURCE:ID) it was for or about.
    #[arg(long)]
    person: Option<String>,
    /// The conversation (SOURCE:ID) suggested, or suggested for.
    #[arg(long)]
    conversation: Option<String>,
    /// The asset (SOURCE:ID) suggested.
    #[arg(long)]
    asset: Option<String>,
    /// The action, as your app names it.
    #[arg(long)]
    action: Option<String>,
    /// When it happened (RFC 3339); now when left out.
    #[arg(long)]
    at: Option<String>,
    /// Who says so.
    #[arg(long, default_value = "")]
    actor: String,
    #[arg(long, default_value = "")]
    note: String,
    /// The feedback's id; the server derives one when left out.
    #[arg(long, default_value = "")]
    id: String,
    /// A JSON Lines file of feedback, one object per line with the fields above (`kind`,
    /// `outcome`, `person`, `conversation`, `asset`, `action`, `at`, `actor`, `note`, `id`).
    #[arg(long, conflicts_with_all = ["kind", "outcome", "person", "conversation", "asset", "action", "at", "id"])]
    file: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this kind of suggestion.
    #[arg(long)]
    kind: Option<String>,
    /// Only feedback naming this person (SOURCE:ID).
    #[arg(long)]
    person: Option<String>,
    /// Only feedback naming this conversation (SOURCE:ID).
    #[arg(long)]
    conversation: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    client: ClientArgs,
}

/// One line of a feedback file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kind: String,
    outcome: String,
    person: Option<String>,
    conversation: Option<String>,
    asset: Option<String>,
    action: Option<String>,
    at: Option<String>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    id: String,
}

fn kind(value: &str, flag: &str) -> anyhow::Result<pb::SuggestionKind> {
    Ok(match value {
        "discussion" => pb::SuggestionKind::Discussion,
        "participant" => pb::SuggestionKind::Participant,
        "asset" => pb::SuggestionKind::Asset,
        "prospect" => pb::SuggestionKind::Prospect,
        "action" => pb::SuggestionKind::Action,
        _ => anyhow::bail!(
            "{flag} {value:?} is not a kind of suggestion; use discussion, participant, asset, prospect or action"
        ),
    })
}

fn outcome(value: &str, flag: &str) -> anyhow::Result<pb::FeedbackOutcome> {
    Ok(match value {
        "shown" => pb::FeedbackOutcome::Shown,
        "accepted" => pb::FeedbackOutcome::Accepted,
        "dismissed" => pb::FeedbackOutcome::Dismissed,
        "done" => pb::FeedbackOutcome::Done,
        _ => anyhow::bail!(
            "{flag} {value:?} is not an outcome; use shown, accepted, dismissed or done"
        ),
    })
}

fn kind_name(value: i32) -> &'static str {
    match pb::SuggestionKind::try_from(value) {
        Ok(pb::SuggestionKind::Discussion) => "discussion",
        Ok(pb::SuggestionKind::Participant) => "participant",
        Ok(pb::SuggestionKind::Asset) => "asset",
        Ok(pb::SuggestionKind::Prospect) => "prospect",
        Ok(pb::SuggestionKind::Action) => "action",
        _ => "unspecified",
    }
}

fn outcome_name(value: i32) -> &'static str {
    match pb::FeedbackOutcome::try_from(value) {
        Ok(pb::FeedbackOutcome::Shown) => "shown",
        Ok(pb::FeedbackOutcome::Accepted) => "accepted",
        Ok(pb::FeedbackOutcome::Dismissed) => "dismissed",
        Ok(pb::FeedbackOutcome::Done) => "done",
        _ => "unspecified",
    }
}

fn reference(value: Option<&str>, flag: &str) -> anyhow::Result<Option<pb::RecordRef>> {
    value.map(|value| record_ref(value, flag)).transpose()
}

fn feedback_of(line: Line, prefix: &str) -> anyhow::Result<pb::Feedback> {
    let field = |name: &str| format!("{prefix}{name}");
    Ok(pb::Feedback {
        id: line.id,
        kind: kind(&line.kind, &field("kind"))?.into(),
        outcome: outcome(&line.outcome, &field("outcome"))?.into(),
        person: reference(line.person.as_deref(), &field("person"))?,
        conversation: reference(line.conversation.as_deref(), &field("conversation"))?,
        asset: reference(line.asset.as_deref(), &field("asset"))?,
        action: line.action.unwrap_or_default(),
        at: crate::jsonl::timestamp(line.at, &field("at")).map_err(anyhow::Error::msg)?,
        actor: line.actor,
        note: line.note,
        recorded_at: None,
    })
}

/// Reads a feedback file: every line that does not parse is named, and nothing is sent then.
fn read_file(path: &PathBuf) -> anyhow::Result<Vec<pb::Feedback>> {
    let file = std::fs::File::open(path)
        .map_err(|error| anyhow::anyhow!("--file {}: {error}", path.display()))?;
    let mut feedback = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Line>(&line)
            .map_err(anyhow::Error::from)
            .and_then(|parsed| feedback_of(parsed, ""));
        match parsed {
            Ok(item) => feedback.push(item),
            Err(error) => problems.push(format!("line {number}: {error}")),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{}: {} lines are not feedback, nothing was sent:\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(feedback)
}

pub async fn feedback(command: FeedbackCommand) -> anyhow::Result<()> {
    match command {
        FeedbackCommand::Record(args) => record(args).await,
        FeedbackCommand::List(args) => list(args).await,
    }
}

async fn record(args: RecordArgs) -> anyhow::Result<()> {
    let items = match &args.file {
        Some(path) => read_file(path)?,
        None => vec![feedback_of(
            Line {
                kind: args.kind.clone().unwrap_or_default(),
                outcome: args.outcome.clone().unwrap_or_default(),
                person: args.person.clone(),
                conversation: args.conversation.clone(),
                asset: args.asset.clone(),
                action: args.action.clone(),
                at: args.at.clone(),
                actor: args.actor.clone(),
                note: args.note.clone(),
                id: args.id.clone(),
            },
            "--",
        )?],
    };
    let mut client =
        pb::feedback_service_client::FeedbackServiceClient::new(channel(&args.client).await?);
    let (mut recorded, mut replaced, mut ids) = (0u64, 0u64, Vec::new());
    for (call, chunk) in items.chunks(CALL).enumerate() {
        let response = client
            .record_feedback(pb::RecordFeedbackRequest {
                workspace: args.client.workspace.clone(),
                feedback: chunk.to_vec(),
            })
            .await
            .map_err(|status| {
                let sent = call * CALL;
                anyhow::anyhow!(
                    "{}{}",
                    describe(&status),
                    if sent > 0 {
                        format!(" (the first {sent} were recorded; items are numbered from the start of this call, which began at item {sent})")
                    } else {
                        String::new()
                    }
                )
            })?
            .into_inner();
        recorded += u64::from(response.recorded);
        replaced += u64::from(response.replaced);
        ids.extend(response.ids);
    }
    let value = json!({"recorded": recorded, "replaced": replaced, "ids": ids});
    print(&args.client, &value, |_| {
        println!("recorded {recorded} new, {replaced} replacing earlier feedback with the same id");
        if ids.len() == 1 {
            println!("id: {}", ids[0]);
        }
    });
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let kind = args
        .kind
        .as_deref()
        .map(|value| kind(value, "--kind"))
        .transpose()?;
    let mut client =
        pb::feedback_service_client::FeedbackServiceClient::new(channel(&args.client).await?);
    let mut items = Vec::new();
    let mut counts = None;
    let mut page_token = String::new();
    while items.len() < args.limit {
        let response = client
            .list_feedback(pb::ListFeedbackRequest {
                workspace: args.client.workspace.clone(),
                kind: kind.map_or(0, i32::from),
                person: reference(args.person.as_deref(), "--person")?,
                conversation: reference(args.conversation.as_deref(), "--conversation")?,
                limit: i32::try_from((args.limit - items.len()).min(CALL)).unwrap_or(100),
                page_token: page_token.clone(),
            })
            .await
            .map_err(|status| describe(&status))?
            .into_inner();
        counts = response.counts;
        items.extend(response.feedback);
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    let counts = counts.unwrap_or_default();
    let name = |key: &Option<pb::RecordRef>| {
        key.as_ref()
            .map(|key| format!("{}:{}", key.source, key.external_id))
    };
    let value = json!({
        "counts": {"shown": counts.shown, "accepted": counts.accepted, "dismissed": counts.dismissed, "done": counts.done},
        "feedback": items.iter().map(|item| json!({
            "id": item.id,
            "kind": kind_name(item.kind),
            "outcome": outcome_name(item.outcome),
            "person": name(&item.person),
            "conversation": name(&item.conversation),
            "asset": name(&item.asset),
            "action": (!item.action.is_empty()).then_some(&item.action),
            "at": item.at.as_ref().map(|at| at.seconds),
            "actor": item.actor,
            "note": item.note,
        })).collect::<Vec<Value>>(),
    });
    print(&args.client, &value, |_| {
        println!(
            "feedback: {} shown, {} accepted, {} dismissed, {} done",
            counts.shown, counts.accepted, counts.dismissed, counts.done
        );
        for item in &items {
            let parts: Vec<String> = [
                name(&item.person).map(|person| format!("person {person}")),
                name(&item.conversation).map(|conversation| format!("conversation {conversation}")),
                name(&item.asset).map(|asset| format!("asset {asset}")),
                (!item.action.is_empty()).then(|| format!("action {}", item.action)),
            ]
            .into_iter()
            .flatten()
            .collect();
            println!(
                "  {:<10} {:<12} {} [{}]{}",
                outcome_name(item.outcome),
                kind_name(item.kind),
                parts.join(", "),
                item.id,
                if item.actor.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", item.actor)
                }
            );
        }
    });
    Ok(())
}
