//! Client commands about people: profiles, CRM matches, who to bring into a conversation, and
//! what a person should join or start.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, evidence_json, print, round3};

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// A person's profile: where their interests meet the strategy, with evidence.
    Show {
        /// The person, as SOURCE:ID.
        person: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Look a person up the way a CRM knows them, with discussions to suggest.
    Match {
        #[command(flatten)]
        lookup: LookupArgs,
        /// Discussions to suggest.
        #[arg(long, default_value_t = 5)]
        suggestions: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Merge records believed to be one person; every merge can be undone.
    Merge {
        /// The person the others join, as SOURCE:ID.
        target: String,
        /// The records to merge into it, as SOURCE:ID.
        #[arg(required = true)]
        others: Vec<String>,
        /// Why they are one person (kept in the audit trail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Undo a merge by its id.
    Unmerge {
        merge_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The audit trail of merges, newest first.
    Merges {
        /// Only merges that joined this record, as SOURCE:ID.
        #[arg(long)]
        person: Option<String>,
        /// Leave out merges that were undone.
        #[arg(long)]
        active_only: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Judge the automatic merges again with today's identity rules and list those the rules
    /// would not make (people who only share a display name on one platform); admin only.
    ReviewMerges {
        /// Undo the merges found (they stay in the audit trail, marked undone).
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a person's personal data and the text they wrote, for good.
    Forget {
        /// The person, as SOURCE:ID.
        person: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// People in the order they arrived.
    List {
        /// Only members.
        #[arg(long, conflicts_with = "non_members")]
        members: bool,
        /// Only people outside the community.
        #[arg(long)]
        non_members: bool,
        #[arg(long, default_value_t = 50)]
        limit: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct LookupArgs {
    /// The person's record, as SOURCE:ID.
    #[arg(long = "ref")]
    record: Option<String>,
    /// An e-mail address; only its SHA-256 leaves this machine.
    #[arg(long)]
    email: Option<String>,
    /// The SHA-256 of the trimmed, lowercased e-mail address.
    #[arg(long)]
    email_sha256: Option<String>,
    #[arg(long)]
    handle: Option<String>,
    #[arg(long)]
    profile_url: Option<String>,
    #[arg(long)]
    crm_id: Option<String>,
}

pub fn record_ref(value: &str, flag: &str) -> anyhow::Result<pb::RecordRef> {
    match value.split_once(':') {
        Some((source, id)) if !source.is_empty() && !id.is_empty() => Ok(pb::RecordRef {
            source: source.to_owned(),
            external_id: id.to_owned(),
        }),
        _ => anyhow::bail!(
            "{flag} {value:?} is not a record id; write it as SOURCE:ID, e.g. forum:1234"
        ),
    }
}

/// The SHA-256 of an e-mail address as Trellis stores it: trimmed, lowercased, hex.
pub fn email_sha256(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl LookupArgs {
    fn to_pb(&self) -> anyhow::Result<pb::PersonLookup> {
        use pb::person_lookup::Key;
        let key = if let Some(record) = &self.record {
            Key::Ref(record_ref(record, "--ref")?)
        } else if let Some(email) = &self.email {
            Key::EmailSha256(email_sha256(email))
        } else if let Some(hash) = &self.email_sha256 {
            Key::EmailSha256(hash.clone())
        } else if let Some(handle) = &self.handle {
            Key::Handle(handle.clone())
        } else if let Some(url) = &self.profile_url {
            Key::ProfileUrl(url.clone())
        } else if let Some(id) = &self.crm_id {
            Key::CrmId(id.clone())
        } else {
            anyhow::bail!(
                "give one of --ref, --email, --email-sha256, --handle, --profile-url or --crm-id"
            );
        };
        Ok(pb::PersonLookup { key: Some(key) })
    }
}

pub(crate) fn ref_text(reference: Option<&pb::RecordRef>) -> String {
    reference.map_or_else(String::new, |reference| {
        format!("{}:{}", reference.source, reference.external_id)
    })
}

fn profile_json(profile: &pb::PersonProfile) -> Value {
    let person = profile.person.clone().unwrap_or_default();
    json!({
        "person": ref_text(person.r#ref.as_ref()),
        "merged": profile.merged.iter().map(|merged| ref_text(Some(merged))).collect::<Vec<_>>(),
        "display_name": person.display_name,
        "member": person.member,
        "posts": profile.posts,
        "last_active_at": profile.last_active_at.as_ref().map(|t| t.seconds),
        "convergence": profile.convergence.iter().map(|facet| json!({
            "facet_id": facet.facet_id,
            "convergence": round3(facet.convergence),
            "evidence": facet.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "top_interests": profile.top_interests.iter().map(|interest| json!({
            "term": interest.term, "weight": round3(interest.weight),
        })).collect::<Vec<_>>(),
    })
}

/// How every table names a person: their display name with their reference, `Ada (forum:7)`,
/// or the reference alone when no name is known.
pub(crate) fn person_label(value: &Value) -> String {
    let name = value["display_name"].as_str().unwrap_or("").trim();
    let reference = value["person"].as_str().unwrap_or("");
    if name.is_empty() {
        reference.to_owned()
    } else {
        format!("{name} ({reference})")
    }
}

fn print_profile(value: &Value) {
    println!(
        "{} — {}, contributions: {}",
        person_label(value),
        if value["member"] == true {
            "member"
        } else {
            "not a member"
        },
        value["posts"]
    );
    let interests: Vec<&str> = value["top_interests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|interest| interest["term"].as_str())
        .collect();
    if !interests.is_empty() {
        println!("interests: {}", interests.join(", "));
    }
    println!("{:<28} CONVERGENCE  EVIDENCE", "FACET");
    for facet in value["convergence"].as_array().into_iter().flatten() {
        let sentence = facet["evidence"][0]["sentence"].as_str().unwrap_or("");
        println!(
            "{:<28} {:>11.2}  {}",
            facet["facet_id"].as_str().unwrap_or(""),
            facet["convergence"].as_f64().unwrap_or(0.0),
            sentence
        );
    }
}

/// Merges of the audit trail as the JSON output has them.
fn merges_json(merges: &[pb::MergeRecord]) -> Value {
    let key = |reference: &pb::RecordRef| format!("{}:{}", reference.source, reference.external_id);
    let seconds = |timestamp: &Option<prost_types::Timestamp>| {
        timestamp.as_ref().map(|timestamp| timestamp.seconds)
    };
    json!({
        "merges": merges.iter().map(|merge| json!({
            "merge_id": merge.merge_id,
            "target": merge.target.as_ref().map(key),
            "others": merge.others.iter().map(key).collect::<Vec<_>>(),
            "confidence": round3(merge.confidence),
            "reasons": merge.reasons,
            "automatic": merge.automatic,
            "created_at_unix": seconds(&merge.created_at),
            "undone_at_unix": seconds(&merge.undone_at),
        })).collect::<Vec<_>>(),
    })
}

/// Merges for people to read, one a line with their reasons below; `none` when there are none.
fn print_merges(value: &Value, none: &str) {
    let merges = value["merges"].as_array().cloned().unwrap_or_default();
    if merges.is_empty() {
        println!("{none}");
    }
    for merge in merges {
        let others: Vec<&str> = merge["others"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|other| other.as_str())
            .collect();
        println!(
            "{}  {} <- {}  ({}, confidence {:.2}{})",
            merge["merge_id"].as_str().unwrap_or(""),
            merge["target"].as_str().unwrap_or(""),
            others.join(", "),
            if merge["automatic"].as_bool() == Some(true) {
                "automatic"
            } else {
                "asked for"
            },
            merge["confidence"].as_f64().unwrap_or(0.0),
            if merge["undone_at_unix"].is_null() {
                ""
            } else {
                ", undone"
            }
        );
        for reason in merge["reasons"].as_array().into_iter().flatten() {
            println!("    - {}", reason.as_str().unwrap_or(""));
        }
    }
}

fn discussion_json(discussion: &pb::SuggestedDiscussion) -> Value {
    json!({
        "conversation": ref_text(discussion.conversation.as_ref()),
        "title": discussion.title,
        "url": discussion.url,
        "score": round3(discussion.score),
        "score_scale": score_scale_name(discussion.score_scale),
        "reasons": discussion.reasons,
        "evidence": discussion.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
    })
}

/// How a score is read, in the JSON output.
fn score_scale_name(scale: i32) -> &'static str {
    match pb::ScoreScale::try_from(scale) {
        Ok(pb::ScoreScale::Probability) => "probability",
        _ => "relative",
    }
}

fn print_discussions(discussions: &Value) {
    let listed = discussions.as_array().cloned().unwrap_or_default();
    let calibrated = listed
        .first()
        .is_some_and(|first| first["score_scale"] == "probability");
    if !listed.is_empty() {
        println!(
            "{}",
            if calibrated {
                "(score: the chance they take part, calibrated on this community's own history)"
            } else {
                "(score: relative fit, higher is better; not a probability until the community's history calibrates it)"
            }
        );
    }
    for discussion in &listed {
        let score = discussion["score"].as_f64().unwrap_or(0.0);
        let shown = if calibrated {
            format!("{:>4.1}%", score * 100.0)
        } else {
            format!("{score:>5.2}")
        };
        println!(
            "{shown}  {}  {}",
            discussion["conversation"].as_str().unwrap_or(""),
            discussion["title"].as_str().unwrap_or("")
        );
        for reason in discussion["reasons"].as_array().into_iter().flatten() {
            println!("       - {}", reason.as_str().unwrap_or(""));
        }
    }
}

pub async fn people(command: PeopleCommand) -> anyhow::Result<()> {
    match command {
        PeopleCommand::Show { person, client } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let response = service
                .get_person(pb::GetPersonRequest {
                    workspace: client.workspace.clone(),
                    r#ref: Some(record_ref(&person, "PERSON")?),
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let value = profile_json(&response.profile.unwrap_or_default());
            print(&client, &value, print_profile);
        }
        PeopleCommand::Match {
            lookup,
            suggestions,
            client,
        } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let response = service
                .match_person(pb::MatchPersonRequest {
                    workspace: client.workspace.clone(),
                    lookup: Some(lookup.to_pb()?),
                    suggestion_limit: suggestions,
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let value = json!({
                "found": response.found,
                "profile": response.profile.as_ref().map(profile_json),
                "suggested_discussions": response.suggested_discussions.iter().map(discussion_json).collect::<Vec<_>>(),
            });
            print(&client, &value, |value| {
                if value["found"] != true {
                    println!("no one matches");
                    return;
                }
                print_profile(&value["profile"]);
                println!("suggested discussions:");
                print_discussions(&value["suggested_discussions"]);
            });
        }
        PeopleCommand::Merge {
            target,
            others,
            reason,
            client,
        } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let others = others
                .iter()
                .map(|other| record_ref(other, "OTHERS"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let response = service
                .merge_people(pb::MergePeopleRequest {
                    workspace: client.workspace.clone(),
                    target: Some(record_ref(&target, "TARGET")?),
                    others,
                    reason,
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let value = json!({
                "merge_id": response.merge_id,
                "confidence": round3(response.confidence),
                "reasons": response.reasons,
            });
            print(&client, &value, |value| {
                println!(
                    "merged as {} (confidence {:.2}); undo with `trellis people unmerge {}`",
                    value["merge_id"].as_str().unwrap_or(""),
                    value["confidence"].as_f64().unwrap_or(0.0),
                    value["merge_id"].as_str().unwrap_or("")
                );
                for reason in value["reasons"].as_array().into_iter().flatten() {
                    println!("  - {}", reason.as_str().unwrap_or(""));
                }
            });
        }
        PeopleCommand::Unmerge { merge_id, client } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            service
                .unmerge_people(pb::UnmergePeopleRequest {
                    workspace: client.workspace.clone(),
                    merge_id: merge_id.clone(),
                })
                .await
                .map_err(|status| describe(&status))?;
            let value = json!({"unmerged": merge_id});
            print(&client, &value, |_| println!("merge {merge_id} undone"));
        }
        PeopleCommand::Merges {
            person,
            active_only,
            client,
        } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let person = match &person {
                Some(person) => Some(record_ref(person, "--person")?),
                None => None,
            };
            let mut merges = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = service
                    .list_merges(pb::ListMergesRequest {
                        workspace: client.workspace.clone(),
                        person: person.clone(),
                        active_only,
                        page_size: 0,
                        page_token,
                    })
                    .await
                    .map_err(|status| describe(&status))?
                    .into_inner();
                merges.extend(page.merges);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let value = merges_json(&merges);
            print(&client, &value, |value| print_merges(value, "no merges"));
        }
        PeopleCommand::ReviewMerges { apply, client } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let response = service
                .review_merges(pb::ReviewMergesRequest {
                    workspace: client.workspace.clone(),
                    apply,
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let mut value = merges_json(&response.merges);
            value["applied"] = json!(apply);
            print(&client, &value, |value| {
                print_merges(
                    value,
                    "every automatic merge still holds under today's identity rules",
                );
                let found = value["merges"].as_array().map_or(0, Vec::len);
                if found > 0 && !apply {
                    println!(
                        "{found} automatic merges would not be made today; rerun with --apply to undo them (they stay in the audit trail)"
                    );
                } else if found > 0 {
                    println!("{found} automatic merges undone");
                }
            });
        }
        PeopleCommand::Forget { person, client } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let response = service
                .forget_person(pb::ForgetPersonRequest {
                    workspace: client.workspace.clone(),
                    r#ref: Some(record_ref(&person, "PERSON")?),
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let value = json!({
                "posts_removed": response.posts_removed,
                "identities_removed": response.identities_removed,
            });
            print(&client, &value, |value| {
                println!(
                    "forgotten: {} posts blanked, {} identities removed",
                    value["posts_removed"], value["identities_removed"]
                );
            });
        }
        PeopleCommand::List {
            members,
            non_members,
            limit,
            client,
        } => {
            let mut service =
                pb::people_service_client::PeopleServiceClient::new(channel(&client).await?);
            let response = service
                .list_people(pb::ListPeopleRequest {
                    workspace: client.workspace.clone(),
                    page_size: limit,
                    page_token: String::new(),
                    member: if members {
                        Some(true)
                    } else if non_members {
                        Some(false)
                    } else {
                        None
                    },
                })
                .await
                .map_err(|status| describe(&status))?
                .into_inner();
            let value = json!({
                "people": response.people.iter().map(|person| json!({
                    "person": ref_text(person.r#ref.as_ref()),
                    "display_name": person.display_name,
                    "member": person.member,
                })).collect::<Vec<_>>(),
                "next_page_token": response.next_page_token,
            });
            print(&client, &value, |value| {
                for person in value["people"].as_array().into_iter().flatten() {
                    println!(
                        "{:<48} {}",
                        person_label(person),
                        if person["member"] == true {
                            "member"
                        } else {
                            "outside"
                        }
                    );
                }
            });
        }
    }
    Ok(())
}

pub async fn suggest(client: &ClientArgs, person: &str, limit: i32) -> anyhow::Result<()> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel(client).await?);
    let response = insight
        .suggest_discussions(pb::SuggestDiscussionsRequest {
            workspace: client.workspace.clone(),
            person: Some(record_ref(person, "--person")?),
            limit,
            as_of: None,
        })
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let value = json!({
        "join": response.join.iter().map(discussion_json).collect::<Vec<_>>(),
        "start": response.start.iter().map(|topic| json!({
            "facet_id": topic.facet_id,
            "suggested_title": topic.suggested_title,
            "interest": round3(topic.interest),
            "coverage": round3(topic.coverage),
            "reasons": topic.reasons,
            "evidence": topic.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    print(client, &value, |value| {
        println!("discussions to join:");
        print_discussions(&value["join"]);
        let start = value["start"].as_array().cloned().unwrap_or_default();
        if !start.is_empty() {
            println!("topics to start:");
            for topic in start {
                println!("  {}", topic["suggested_title"].as_str().unwrap_or(""));
                for reason in topic["reasons"].as_array().into_iter().flatten() {
                    println!("       - {}", reason.as_str().unwrap_or(""));
                }
            }
        }
    });
    Ok(())
}

pub async fn participants(
    client: &ClientArgs,
    conversation: Option<String>,
    text: Option<String>,
    title: String,
    limit: i32,
) -> anyhow::Result<()> {
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel(client).await?);
    let conversation = conversation
        .map(|value| record_ref(&value, "--conversation"))
        .transpose()?;
    let text = text.map(|body| pb::TextInput { title, body });
    if conversation.is_none() && text.is_none() {
        anyhow::bail!("give --conversation SOURCE:ID or --text TEXT");
    }
    let response = insight
        .suggest_participants(pb::SuggestParticipantsRequest {
            workspace: client.workspace.clone(),
            conversation,
            limit,
            text,
            as_of: None,
        })
        .await
        .map_err(|status| describe(&status))
        .context("asking who should join")?
        .into_inner();
    let value = json!({
        "participants": response.participants.iter().map(|participant| {
            let person = participant.person.clone().unwrap_or_default();
            json!({
                "person": ref_text(person.r#ref.as_ref()),
                "display_name": person.display_name,
                "member": participant.member,
                "score": round3(participant.score),
                "reasons": participant.reasons,
                "evidence": participant.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
    });
    print(client, &value, |value| {
        for participant in value["participants"].as_array().into_iter().flatten() {
            println!(
                "{:>5.2}  {:<32} {}",
                participant["score"].as_f64().unwrap_or(0.0),
                person_label(participant),
                if participant["member"] == true {
                    "member"
                } else {
                    "outside the community"
                }
            );
            for reason in participant["reasons"].as_array().into_iter().flatten() {
                println!("       - {}", reason.as_str().unwrap_or(""));
            }
        }
    });
    Ok(())
}
