//! The service implementations. Each handler validates and converts its request, runs the
//! core call on the blocking pool, and converts the answer back.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status, Streaming};
use trellis_core::domain::{Millis, RecordKey, WorkspaceId};
use trellis_core::service::{
    AssetTarget, ParticipantTarget, PersonInsight, PersonLookup, StrategicQuery, Trellis,
};

use crate::convert::{self, round3};
use crate::error::{ApiError, bad_field};
use crate::pb;

/// Limits of the API surface.
#[derive(Debug, Clone, Copy)]
pub struct ApiSettings {
    /// Records stored per transaction during a streamed ingest.
    pub ingest_batch: usize,
    /// Most items any list or ranking returns.
    pub max_page: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            ingest_batch: 500,
            max_page: 500,
        }
    }
}

/// The Trellis API over one [`Trellis`] service.
#[derive(Debug, Clone)]
pub struct Api {
    trellis: Arc<Trellis>,
    settings: ApiSettings,
}

impl Api {
    pub fn new(trellis: Arc<Trellis>, settings: ApiSettings) -> Self {
        Self { trellis, settings }
    }

    pub fn strategy_service(&self) -> pb::strategy_service_server::StrategyServiceServer<Api> {
        pb::strategy_service_server::StrategyServiceServer::new(self.clone())
    }

    pub fn ingest_service(&self) -> pb::ingest_service_server::IngestServiceServer<Api> {
        pb::ingest_service_server::IngestServiceServer::new(self.clone())
    }

    pub fn insight_service(&self) -> pb::insight_service_server::InsightServiceServer<Api> {
        pb::insight_service_server::InsightServiceServer::new(self.clone())
    }

    pub fn people_service(&self) -> pb::people_service_server::PeopleServiceServer<Api> {
        pb::people_service_server::PeopleServiceServer::new(self.clone())
    }

    pub fn server_service(&self) -> pb::server_service_server::ServerServiceServer<Api> {
        pb::server_service_server::ServerServiceServer::new(self.clone())
    }

    pub fn source_service(&self) -> pb::source_service_server::SourceServiceServer<Api> {
        pb::source_service_server::SourceServiceServer::new(self.clone())
    }

    pub fn feedback_service(&self) -> pb::feedback_service_server::FeedbackServiceServer<Api> {
        pb::feedback_service_server::FeedbackServiceServer::new(self.clone())
    }

    /// Runs a blocking core call off the async runtime.
    pub(crate) async fn blocking<T, F>(&self, call: F) -> Result<T, Status>
    where
        F: FnOnce(&Trellis) -> Result<T, trellis_core::CoreError> + Send + 'static,
        T: Send + 'static,
    {
        let trellis = Arc::clone(&self.trellis);
        tokio::task::spawn_blocking(move || call(&trellis))
            .await
            .map_err(|error| Status::internal(format!("a worker task failed: {error}")))?
            .map_err(|error| Status::from(ApiError(error)))
    }

    pub(crate) fn limit(
        &self,
        requested: i32,
        default: usize,
        field: &str,
    ) -> Result<usize, Status> {
        match requested {
            0 => Ok(default),
            value if value < 0 => Err(bad_field(
                field,
                "is negative; give a positive number or leave it unset",
            )),
            value => Ok((value as usize).min(self.settings.max_page)),
        }
    }
}

/// The answer to an ingest stream that broke off at `response.received`: INVALID_ARGUMENT when
/// the message could not be decoded (the client sent something that is not an `IngestRequest`),
/// the stream's own status otherwise; either way saying which records were stored and which
/// refused, so the client resends from the right position.
fn broken_stream(status: &Status, response: &pb::IngestResponse) -> Status {
    let decode = crate::error::is_decode_error(status);
    let position = response.received;
    let mut violations = vec![trellis_core::Violation::new(
        format!("records[{position}]"),
        format!(
            "{}; the {position} messages before it were read and stored ({} inserted, {} updated, {} unchanged, {} refused), nothing after it: resend from position {position}",
            if decode {
                format!(
                    "could not be decoded as an IngestRequest ({})",
                    status.message()
                )
            } else {
                format!("the stream broke off ({})", status.message())
            },
            response.inserted,
            response.updated,
            response.unchanged,
            response.errors.len()
        ),
    )];
    violations.extend(response.errors.iter().map(|error| {
        trellis_core::Violation::new(
            format!("records[{}].{}", error.position, error.field),
            error.reason.clone(),
        )
    }));
    if decode {
        crate::error::invalid_argument(&violations)
    } else {
        Status::new(status.code(), violations[0].to_string())
    }
}

pub(crate) fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| duration.as_millis() as Millis)
}

#[tonic::async_trait]
impl pb::strategy_service_server::StrategyService for Api {
    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn put_strategy(
        &self,
        request: Request<pb::PutStrategyRequest>,
    ) -> Result<Response<pb::PutStrategyResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let strategy = convert::strategy_from_pb(request.strategy)?;
        let stored = self
            .blocking(move |trellis| trellis.put_strategy(&workspace, strategy, now_millis()))
            .await?;
        tracing::info!(
            version = stored.version,
            facets = stored.strategy.facets.len(),
            "strategy stored"
        );
        Ok(Response::new(pb::PutStrategyResponse {
            strategy_version: Some(convert::strategy_version_to_pb(&stored)),
        }))
    }

    async fn get_strategy(
        &self,
        request: Request<pb::GetStrategyRequest>,
    ) -> Result<Response<pb::GetStrategyResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let version = (request.version != 0).then_some(request.version);
        let stored = self
            .blocking(move |trellis| trellis.strategy(&workspace, version))
            .await?;
        Ok(Response::new(pb::GetStrategyResponse {
            strategy_version: Some(convert::strategy_version_to_pb(&stored)),
        }))
    }

    async fn list_strategy_versions(
        &self,
        request: Request<pb::ListStrategyVersionsRequest>,
    ) -> Result<Response<pb::ListStrategyVersionsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.page_size, 20, "page_size")?.min(100);
        let before = if request.page_token.is_empty() {
            None
        } else {
            Some(request.page_token.parse::<u32>().map_err(|_| {
                bad_field(
                    "page_token",
                    "is not a token this server issued; pass next_page_token unchanged",
                )
            })?)
        };
        let versions = self
            .blocking(move |trellis| trellis.strategy_versions(&workspace, limit + 1, before))
            .await?;
        let mut more = versions.len() > limit;
        let mut page = Vec::new();
        let mut bytes = 0;
        for version in versions.iter().take(limit) {
            let version = convert::strategy_version_to_pb(version);
            bytes += prost::Message::encoded_len(&version);
            // A page fits in a message whatever the strategies hold: fewer versions, not more.
            if !page.is_empty() && bytes > trellis_core::limits::PAGE_BYTES {
                more = true;
                break;
            }
            page.push(version);
        }
        let next_page_token = match (more, page.last()) {
            (true, Some(last)) => last.version.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListStrategyVersionsResponse {
            strategy_versions: page,
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl pb::ingest_service_server::IngestService for Api {
    #[tracing::instrument(skip_all)]
    async fn ingest(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        // Read on while a batch is stored, up to a few batches' worth of bytes ahead.
        let mut stream = crate::streams::read_ahead(
            request.into_inner(),
            crate::auth::message_budget(),
            INGEST_READ_AHEAD_BYTES,
        );
        let mut response = pb::IngestResponse::default();
        let mut workspace: Option<WorkspaceId> = None;
        let mut batch = Vec::with_capacity(self.settings.ingest_batch);
        let mut position: u64 = 0;
        let mut broken: Option<Status> = None;
        loop {
            // A message that cannot be read ends the stream, but not before the records read
            // before it are stored: the answer then says exactly how far it got.
            let message = match stream.recv().await.transpose() {
                Ok(message) => message.map(|read| read.message),
                Err(status) => {
                    broken = Some(status);
                    None
                }
            };
            let done = message.is_none();
            if let Some(message) = message {
                if workspace.is_none() {
                    workspace = Some(convert::workspace(&message.workspace)?);
                }
                match convert::record_from_pb(message) {
                    Ok(record) => batch.push((position, record)),
                    Err(violation) => response.errors.push(pb::RecordError {
                        position,
                        field: violation.field,
                        reason: violation.description,
                    }),
                }
                position += 1;
            }
            if batch.len() >= self.settings.ingest_batch || (done && !batch.is_empty()) {
                let records = std::mem::take(&mut batch);
                let target = workspace
                    .clone()
                    .unwrap_or_else(WorkspaceId::default_workspace);
                let outcome = self
                    .blocking(move |trellis| trellis.ingest(&target, records))
                    .await?;
                response.inserted += outcome.inserted;
                response.updated += outcome.updated;
                response.unchanged += outcome.unchanged;
                response
                    .errors
                    .extend(outcome.errors.into_iter().map(|(position, violation)| {
                        pb::RecordError {
                            position,
                            field: violation.field,
                            reason: violation.description,
                        }
                    }));
            }
            if done {
                break;
            }
        }
        response.received = position;
        if let Some(status) = broken {
            tracing::warn!(
                position,
                inserted = response.inserted,
                updated = response.updated,
                error = %status.message(),
                "an ingest stream broke off; the records before it are stored"
            );
            return Err(broken_stream(&status, &response));
        }
        tracing::info!(
            received = response.received,
            inserted = response.inserted,
            updated = response.updated,
            refused = response.errors.len(),
            "ingest finished"
        );
        Ok(Response::new(response))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let key = convert::record_key(request.r#ref.as_ref(), "ref")?;
        let (conversation, posts) = self
            .blocking(move |trellis| trellis.conversation(&workspace, &key))
            .await?;
        Ok(Response::new(pb::GetConversationResponse {
            conversation: Some(convert::conversation_to_pb(&conversation)),
            posts: posts.iter().map(convert::post_to_pb).collect(),
        }))
    }
}

const MAX_SCORE_ITEMS: usize = 1000;

#[tonic::async_trait]
impl pb::insight_service_server::InsightService for Api {
    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn score_conversations(
        &self,
        request: Request<pb::ScoreConversationsRequest>,
    ) -> Result<Response<pb::ScoreConversationsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        if request.conversations.is_empty() && request.texts.is_empty() {
            return Err(bad_field(
                "conversations",
                "conversations and texts are both empty; give conversation refs or texts to score",
            ));
        }
        if request.conversations.len() + request.texts.len() > MAX_SCORE_ITEMS {
            return Err(bad_field(
                "conversations",
                format!("asks for more than {MAX_SCORE_ITEMS} scores at once; split the request"),
            ));
        }
        let keys = request
            .conversations
            .iter()
            .enumerate()
            .map(|(index, reference)| {
                convert::record_key(Some(reference), &format!("conversations[{index}]"))
            })
            .collect::<Result<Vec<RecordKey>, Status>>()?;
        let mut texts = Vec::with_capacity(request.texts.len());
        for (index, text) in request.texts.into_iter().enumerate() {
            if text.title.trim().is_empty() && text.body.trim().is_empty() {
                return Err(bad_field(
                    &format!("texts[{index}]"),
                    "has no title and no body; give some text to score",
                ));
            }
            if text.title.len() + text.body.len() > 1 << 20 {
                return Err(bad_field(
                    &format!("texts[{index}]"),
                    "is larger than 1 MiB; score a shorter text",
                ));
            }
            texts.push((text.title, text.body));
        }
        let all_evidence = request.all_evidence;
        let scores = self
            .blocking(move |trellis| {
                trellis.score_conversations(&workspace, &keys, &texts, all_evidence)
            })
            .await?;
        Ok(Response::new(pb::ScoreConversationsResponse {
            scores: scores
                .iter()
                .map(|scored| pb::ConversationScore {
                    conversation: scored.key.as_ref().map(convert::record_ref),
                    relevance: scored.score.overall,
                    class: convert::connection_class(scored.score.class).into(),
                    facets: convert::facet_scores_to_pb(&scored.score.facets, &scored.evidence),
                    excluded_topics: scored
                        .score
                        .excluded
                        .iter()
                        .map(|(topic, _)| topic.clone())
                        .collect(),
                    strategy_version: scored.strategy_version,
                    language: scored.language.code().to_owned(),
                    analysed: scored.language.analysis().is_analysed(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn list_strategic_conversations(
        &self,
        request: Request<pb::ListStrategicConversationsRequest>,
    ) -> Result<Response<pb::ListStrategicConversationsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 20, "limit")?;
        let min_relevance = request.min_relevance.unwrap_or(trellis_core::engine::WEAK);
        if !(0.0..=1.0).contains(&min_relevance) {
            return Err(bad_field("min_relevance", "must be from 0 to 1"));
        }
        let facet_id = (!request.facet_id.is_empty()).then_some(request.facet_id);
        let as_of = convert::time_field("as_of", request.as_of.as_ref())?;
        let (version, items) = self
            .blocking(move |trellis| {
                trellis.strategic_conversations(
                    &workspace,
                    StrategicQuery {
                        limit,
                        facet_id: facet_id.as_deref(),
                        min_relevance,
                        as_of,
                    },
                )
            })
            .await?;
        Ok(Response::new(pb::ListStrategicConversationsResponse {
            strategy_version: version,
            conversations: items
                .iter()
                .map(|item| {
                    let engagement = &item.item.engagement;
                    pb::StrategicConversation {
                        conversation: Some(convert::record_ref(&item.item.key)),
                        title: item
                            .conversation
                            .as_ref()
                            .map(|c| c.title.clone())
                            .unwrap_or_default(),
                        url: item
                            .conversation
                            .as_ref()
                            .map(|c| c.url.clone())
                            .unwrap_or_default(),
                        platform: convert::platform(
                            item.conversation.as_ref().and_then(|c| c.platform),
                        )
                        .into(),
                        priority: item.item.priority,
                        relevance: item.item.relevance,
                        class: convert::connection_class(item.item.class).into(),
                        facets: convert::facet_scores_to_pb(&item.item.facets, &item.evidence),
                        engagement: Some(pb::Engagement {
                            open: engagement.open,
                            unanswered: engagement.unanswered,
                            recency: round3(engagement.recency),
                            activity: round3(engagement.activity),
                            posts: engagement.posts,
                            participants: engagement.participants,
                            score: round3(engagement.score),
                        }),
                        reasons: item.item.reasons.clone(),
                    }
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn suggest_participants(
        &self,
        request: Request<pb::SuggestParticipantsRequest>,
    ) -> Result<Response<pb::SuggestParticipantsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 10, "limit")?;
        let target = match (&request.conversation, request.text) {
            (Some(_), Some(_)) => {
                return Err(bad_field(
                    "text",
                    "give either conversation or text, not both",
                ));
            }
            (Some(conversation), None) => ParticipantTarget::Conversation(convert::record_key(
                Some(conversation),
                "conversation",
            )?),
            (None, Some(text)) => {
                if text.title.trim().is_empty() && text.body.trim().is_empty() {
                    return Err(bad_field(
                        "text",
                        "is empty; give the conversation's title or body",
                    ));
                }
                ParticipantTarget::Text {
                    title: text.title,
                    body: text.body,
                }
            }
            (None, None) => {
                return Err(bad_field(
                    "conversation",
                    "is missing; name a stored conversation, or give its text in `text`",
                ));
            }
        };
        let as_of = convert::time_field("as_of", request.as_of.as_ref())?;
        let suggestions = self
            .blocking(move |trellis| {
                trellis.suggest_participants(&workspace, &target, as_of, limit)
            })
            .await?;
        Ok(Response::new(pb::SuggestParticipantsResponse {
            participants: suggestions
                .iter()
                .map(|suggestion| pb::SuggestedParticipant {
                    person: Some(convert::person_or_ref(
                        suggestion.person.as_ref(),
                        &suggestion.key,
                        suggestion.member,
                    )),
                    member: suggestion.member,
                    score: round3(suggestion.score),
                    reasons: suggestion.reasons.clone(),
                    evidence: suggestion
                        .evidence
                        .iter()
                        .map(convert::evidence_to_pb)
                        .collect(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn find_supporting_assets(
        &self,
        request: Request<pb::FindSupportingAssetsRequest>,
    ) -> Result<Response<pb::FindSupportingAssetsResponse>, Status> {
        use pb::find_supporting_assets_request::Context;
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 10, "limit")?;
        let target = match request.context {
            Some(Context::FacetId(facet_id)) => {
                if facet_id.trim().is_empty() {
                    return Err(bad_field(
                        "facet_id",
                        "is empty; name a facet of the strategy (list them with GetStrategy)",
                    ));
                }
                AssetTarget::Facet(facet_id)
            }
            Some(Context::Conversation(conversation)) => {
                AssetTarget::Conversation(convert::record_key(Some(&conversation), "conversation")?)
            }
            Some(Context::Text(text)) => {
                if text.title.trim().is_empty() && text.body.trim().is_empty() {
                    return Err(bad_field(
                        "text",
                        "is empty; give the title or the body of the text to support",
                    ));
                }
                AssetTarget::Text {
                    title: text.title,
                    body: text.body,
                }
            }
            None => {
                return Err(bad_field(
                    "context",
                    "is missing; give a facet_id, a stored conversation, or a text to support",
                ));
            }
        };
        let own_only = request.own_only;
        let found = self
            .blocking(move |trellis| {
                trellis.find_supporting_assets(&workspace, &target, own_only, limit)
            })
            .await?;
        Ok(Response::new(pb::FindSupportingAssetsResponse {
            assets: found
                .iter()
                .map(|supporting| pb::SupportingAsset {
                    asset: Some(convert::asset_to_pb(&supporting.asset)),
                    score: round3(supporting.score),
                    passage: supporting.passage.clone(),
                    reasons: supporting.reasons.clone(),
                    evidence: supporting
                        .evidence
                        .iter()
                        .map(convert::evidence_to_pb)
                        .collect(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn find_prospects(
        &self,
        request: Request<pb::FindProspectsRequest>,
    ) -> Result<Response<pb::FindProspectsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 10, "limit")?;
        let facet_id = match request.facet_id.trim() {
            "" if !request.facet_id.is_empty() => {
                return Err(bad_field(
                    "facet_id",
                    "is blank; name a facet of the strategy (list them with GetStrategy), or leave it unset for the whole strategy",
                ));
            }
            "" => None,
            facet_id => Some(facet_id.to_owned()),
        };
        let include_members = request.include_members;
        let as_of = convert::time_field("as_of", request.as_of.as_ref())?;
        let found = self
            .blocking(move |trellis| {
                trellis.find_prospects(
                    &workspace,
                    facet_id.as_deref(),
                    include_members,
                    as_of,
                    limit,
                )
            })
            .await?;
        Ok(Response::new(pb::FindProspectsResponse {
            prospects: found
                .iter()
                .map(|prospect| pb::Prospect {
                    person: Some(convert::person_or_ref(
                        prospect.person.as_ref(),
                        &prospect.key,
                        prospect.member,
                    )),
                    score: round3(prospect.score),
                    convergence: round3(prospect.convergence),
                    activity: round3(prospect.activity),
                    reach: prospect.reach as f32,
                    reasons: prospect.reasons.clone(),
                    evidence: prospect
                        .evidence
                        .iter()
                        .map(convert::evidence_to_pb)
                        .collect(),
                    invitation: Some(pb::Invitation {
                        conversation: prospect
                            .invitation
                            .conversation
                            .as_ref()
                            .map(|conversation| convert::record_ref(&conversation.key)),
                        asset: prospect
                            .invitation
                            .asset
                            .as_ref()
                            .map(|asset| convert::record_ref(&asset.key)),
                        draft_message: prospect.invitation.draft_message.clone(),
                    }),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn recommend_platform_mix(
        &self,
        request: Request<pb::RecommendPlatformMixRequest>,
    ) -> Result<Response<pb::RecommendPlatformMixResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let since = convert::time_field("since", request.since.as_ref())?;
        let mix = self
            .blocking(move |trellis| trellis.recommend_platform_mix(&workspace, since))
            .await?;
        Ok(Response::new(pb::RecommendPlatformMixResponse {
            platforms: mix
                .platforms
                .iter()
                .map(|stats| pb::PlatformStats {
                    platform: convert::platform(Some(stats.platform)) as i32,
                    strategic_conversations: stats.strategic_conversations,
                    share: round3(stats.share),
                    facets: stats
                        .facets
                        .iter()
                        .map(|(facet_id, conversations, share)| pb::FacetShare {
                            facet_id: facet_id.clone(),
                            conversations: *conversations,
                            share: round3(*share),
                        })
                        .collect(),
                    engagement: round3(stats.engagement),
                    members_reached: stats.members_reached,
                    prospects_reached: stats.prospects_reached,
                    supporting_assets: stats.supporting_assets,
                    trend: round3(stats.trend),
                    recommended_effort: round3(stats.recommended_effort),
                    reasons: stats.reasons.clone(),
                })
                .collect(),
            findings: mix.findings,
            sensitivities: mix.sensitivities,
            coverage: mix
                .coverage
                .iter()
                .map(|period| {
                    let total: u32 = period.per_facet.iter().map(|(_, count)| count).sum();
                    pb::CoveragePeriod {
                        start: Some(convert::timestamp(period.start)),
                        end: Some(convert::timestamp(period.end)),
                        facets: period
                            .per_facet
                            .iter()
                            .map(|(facet_id, count)| pb::FacetShare {
                                facet_id: facet_id.clone(),
                                conversations: *count,
                                share: if total == 0 {
                                    0.0
                                } else {
                                    round3(*count as f32 / total as f32)
                                },
                            })
                            .collect(),
                    }
                })
                .collect(),
            period_days: mix.period_days.max(0) as u32,
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn plan_actions(
        &self,
        request: Request<pb::PlanActionsRequest>,
    ) -> Result<Response<pb::PlanActionsResponse>, Status> {
        use trellis_core::engine::plan::ActionKind;
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 10, "limit")?;
        let platform = convert::parse_platform(request.platform)
            .map_err(|violation| crate::error::invalid_argument(&[violation]))?;
        let actions = self
            .blocking(move |trellis| trellis.plan_actions(&workspace, platform, limit))
            .await?;
        Ok(Response::new(pb::PlanActionsResponse {
            actions: actions
                .iter()
                .map(|action| pb::Action {
                    kind: match action.kind {
                        ActionKind::ShortPost => pb::ActionKind::ShortPost,
                        ActionKind::StartDiscussion => pb::ActionKind::StartDiscussion,
                        ActionKind::InvitePerson => pb::ActionKind::InvitePerson,
                        ActionKind::ShareAsset => pb::ActionKind::ShareAsset,
                        ActionKind::JoinDiscussion => pb::ActionKind::JoinDiscussion,
                    }
                    .into(),
                    platform: convert::platform(Some(action.platform)).into(),
                    facet_id: action.facet_id.clone(),
                    draft_text: action.draft_text.clone(),
                    conversation: action.conversation.as_ref().map(convert::record_ref),
                    asset: action.asset.as_ref().map(convert::record_ref),
                    person: action.person.as_ref().map(convert::record_ref),
                    tags: action.tags.clone(),
                    why_now: action.why_now.clone(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn suggest_discussions(
        &self,
        request: Request<pb::SuggestDiscussionsRequest>,
    ) -> Result<Response<pb::SuggestDiscussionsResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.limit, 10, "limit")?;
        let person = convert::record_key(request.person.as_ref(), "person")?;
        let as_of = convert::time_field("as_of", request.as_of.as_ref())?;
        let (join, start) = self
            .blocking(move |trellis| trellis.suggest_discussions(&workspace, &person, as_of, limit))
            .await?;
        Ok(Response::new(pb::SuggestDiscussionsResponse {
            join: join
                .iter()
                .map(convert::suggested_discussion_to_pb)
                .collect(),
            start: start
                .iter()
                .map(|topic| pb::TopicToStart {
                    facet_id: topic.facet_id.clone(),
                    suggested_title: topic.suggested_title.clone(),
                    interest: round3(topic.interest),
                    coverage: round3(topic.coverage),
                    reasons: topic.reasons.clone(),
                    evidence: topic.evidence.iter().map(convert::evidence_to_pb).collect(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn audit_community_design(
        &self,
        request: Request<pb::AuditCommunityDesignRequest>,
    ) -> Result<Response<pb::AuditCommunityDesignResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let mission = request.mission;
        let (version, audit) = self
            .blocking(move |trellis| trellis.audit(&workspace, &mission))
            .await?;
        Ok(Response::new(pb::AuditCommunityDesignResponse {
            alignment: round3(audit.alignment),
            facets: audit
                .facets
                .iter()
                .map(|facet| pb::FacetCoverage {
                    facet_id: facet.facet_id.clone(),
                    facet_name: facet.facet_name.clone(),
                    kind: convert::facet_kind(facet.kind).into(),
                    coverage: round3(facet.coverage),
                    served: facet.served,
                    matched_terms: facet.matched_terms.clone(),
                    suggestion: facet.suggestion.clone(),
                })
                .collect(),
            findings: audit.findings,
            strategy_version: version,
        }))
    }
}

fn person_lookup(lookup: Option<pb::PersonLookup>) -> Result<PersonLookup, Status> {
    use pb::person_lookup::Key;
    match lookup.and_then(|lookup| lookup.key) {
        Some(Key::Ref(reference)) => Ok(PersonLookup::Record(convert::record_key(
            Some(&reference),
            "lookup.ref",
        )?)),
        Some(Key::EmailSha256(value)) => Ok(PersonLookup::EmailSha256(value)),
        Some(Key::Handle(value)) => Ok(PersonLookup::Handle(value)),
        Some(Key::ProfileUrl(value)) => Ok(PersonLookup::ProfileUrl(value)),
        Some(Key::CrmId(value)) => Ok(PersonLookup::CrmId(value)),
        None => Err(bad_field(
            "lookup",
            "is missing; give one of ref, email_sha256, handle, profile_url or crm_id",
        )),
    }
}

fn profile_to_pb(insight: &PersonInsight) -> pb::PersonProfile {
    pb::PersonProfile {
        person: Some(convert::person_or_ref(
            insight.person.as_ref(),
            &insight.key,
            insight.member,
        )),
        merged: insight
            .records
            .iter()
            .skip(1)
            .map(convert::record_ref)
            .collect(),
        convergence: insight
            .convergence
            .iter()
            .map(|(converged, evidence)| pb::FacetConvergence {
                facet_id: converged.facet_id.clone(),
                convergence: round3(converged.convergence),
                evidence: evidence.iter().map(convert::evidence_to_pb).collect(),
            })
            .collect(),
        top_interests: insight
            .interests
            .iter()
            .map(|(term, weight)| pb::Interest {
                term: term.clone(),
                weight: round3(*weight),
            })
            .collect(),
        last_active_at: insight.last_active.map(convert::timestamp),
        posts: insight.contributions,
    }
}

/// Contacts a bulk match works on at once: enough to keep a core busy, few enough that the
/// answers stream back steadily.
const MATCH_BATCH: usize = 64;

/// Contacts one `MatchPeople` stream may have read and not yet answered: the stream is read on
/// while answers wait to be taken (see [`crate::streams`]), and a client that sends without
/// reading is stopped here, with an error that says so, instead of growing the queue forever.
const MATCH_AWAITING: usize = 250_000;

/// What the clients keep in flight on a `MatchPeople` stream, named in the error above.
pub(crate) const MATCH_IN_FLIGHT_HINT: usize = 10_000;

/// Encoded bytes of an `Ingest` stream read ahead of the batch being stored.
const INGEST_READ_AHEAD_BYTES: usize = 32 << 20;

#[tonic::async_trait]
impl pb::people_service_server::PeopleService for Api {
    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let key = convert::record_key(request.r#ref.as_ref(), "ref")?;
        let insight = self
            .blocking(move |trellis| trellis.person_insight(&workspace, &key, None))
            .await?;
        Ok(Response::new(pb::GetPersonResponse {
            profile: Some(profile_to_pb(&insight)),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let limit = self.limit(request.page_size, 50, "page_size")?;
        let after = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .parse::<i64>()
                .ok()
                .filter(|after| *after > 0)
                .ok_or_else(|| {
                    bad_field(
                        "page_token",
                        "is not a token this server gave; pass next_page_token from the previous page, or leave it empty",
                    )
                })?
        };
        let member = request.member;
        let (people, next) = self
            .blocking(move |trellis| trellis.list_people(&workspace, member, after, limit))
            .await?;
        Ok(Response::new(pb::ListPeopleResponse {
            people: people.iter().map(convert::person_to_pb).collect(),
            next_page_token: next.map(|next| next.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn match_person(
        &self,
        request: Request<pb::MatchPersonRequest>,
    ) -> Result<Response<pb::MatchPersonResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let lookup = person_lookup(request.lookup)?;
        let suggestions = match request.suggestion_limit {
            0 => 5,
            value if value < 0 => {
                return Err(bad_field(
                    "suggestion_limit",
                    "is negative; give 1 to 50, or leave it unset for 5",
                ));
            }
            value => (value as usize).min(50),
        };
        let found = self
            .blocking(move |trellis| trellis.match_person(&workspace, &lookup, suggestions))
            .await?;
        Ok(Response::new(match found {
            None => pb::MatchPersonResponse::default(),
            Some(found) => pb::MatchPersonResponse {
                found: true,
                profile: Some(profile_to_pb(&found.insight)),
                suggested_discussions: found
                    .suggested
                    .iter()
                    .map(convert::suggested_discussion_to_pb)
                    .collect(),
            },
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn merge_people(
        &self,
        request: Request<pb::MergePeopleRequest>,
    ) -> Result<Response<pb::MergePeopleResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let target = convert::record_key(request.target.as_ref(), "target")?;
        let others = request
            .others
            .iter()
            .enumerate()
            .map(|(index, other)| convert::record_key(Some(other), &format!("others[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let reason = request.reason;
        let merge = self
            .blocking(move |trellis| trellis.merge_people(&workspace, &target, &others, &reason))
            .await?;
        Ok(Response::new(pb::MergePeopleResponse {
            merge_id: merge.id,
            confidence: round3(merge.confidence),
            reasons: merge.reasons,
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn unmerge_people(
        &self,
        request: Request<pb::UnmergePeopleRequest>,
    ) -> Result<Response<pb::UnmergePeopleResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let merge_id = request.merge_id;
        self.blocking(move |trellis| trellis.unmerge_people(&workspace, &merge_id))
            .await?;
        Ok(Response::new(pb::UnmergePeopleResponse {}))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn list_merges(
        &self,
        request: Request<pb::ListMergesRequest>,
    ) -> Result<Response<pb::ListMergesResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let person = match &request.person {
            Some(person) => Some(convert::record_key(Some(person), "person")?),
            None => None,
        };
        let active_only = request.active_only;
        let limit = self.limit(request.page_size, 50, "page_size")?;
        // The time and id of the last merge of the previous page.
        let after = if request.page_token.is_empty() {
            None
        } else {
            let parsed = request
                .page_token
                .split_once(':')
                .and_then(|(time, id)| Some((time.parse::<Millis>().ok()?, id.to_owned())))
                .filter(|(_, id)| !id.is_empty());
            Some(parsed.ok_or_else(|| {
                bad_field(
                    "page_token",
                    "is not a token this server gave; pass next_page_token from the previous page, or leave it empty",
                )
            })?)
        };
        let (merges, more) = self
            .blocking(move |trellis| {
                trellis.merge_history_page(
                    &workspace,
                    person.as_ref(),
                    active_only,
                    after.as_ref().map(|(time, id)| (*time, id.as_str())),
                    limit,
                )
            })
            .await?;
        let next_page_token = match (more, merges.last()) {
            (true, Some(last)) => format!("{}:{}", last.created_at, last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListMergesResponse {
            merges: merges.iter().map(convert::merge_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace, apply = request.get_ref().apply))]
    async fn review_merges(
        &self,
        request: Request<pb::ReviewMergesRequest>,
    ) -> Result<Response<pb::ReviewMergesResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let apply = request.apply;
        let merges = self
            .blocking(move |trellis| trellis.review_automatic_merges(&workspace, apply))
            .await?;
        Ok(Response::new(pb::ReviewMergesResponse {
            merges: merges.iter().map(convert::merge_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(workspace = %request.get_ref().workspace))]
    async fn forget_person(
        &self,
        request: Request<pb::ForgetPersonRequest>,
    ) -> Result<Response<pb::ForgetPersonResponse>, Status> {
        let request = request.into_inner();
        let workspace = convert::workspace(&request.workspace)?;
        let person = convert::record_key(request.r#ref.as_ref(), "ref")?;
        let forgotten = self
            .blocking(move |trellis| trellis.forget_person(&workspace, &person))
            .await?;
        Ok(Response::new(pb::ForgetPersonResponse {
            posts_removed: forgotten.posts_removed,
            identities_removed: forgotten.identities_removed,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn match_people(
        &self,
        request: Request<Streaming<pb::MatchPeopleRequest>>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::MatchPeopleResponse>>, Status> {
        let api = self.clone();
        // The batches run on other tasks; they check each contact's workspace as this caller.
        let caller = crate::auth::caller();
        let awaiting = crate::streams::Awaiting::default();
        let mut incoming = crate::streams::read_unanswered(
            request.into_inner(),
            crate::auth::message_budget(),
            awaiting.clone(),
            MATCH_AWAITING,
        );
        let (sender, receiver) = tokio::sync::mpsc::channel(MATCH_BATCH * 2);
        tokio::spawn(async move {
            // Answers what has arrived, up to a batch at a time, without waiting for more.
            while let Some(first) = incoming.recv().await {
                let mut batch: Vec<pb::MatchPeopleRequest> = Vec::with_capacity(MATCH_BATCH);
                let mut failure = None;
                let mut next = Some(first);
                while let Some(item) = next.take() {
                    match item {
                        Ok(contact) => batch.push(contact),
                        Err(status) => {
                            failure = Some(status);
                            break;
                        }
                    }
                    if batch.len() < MATCH_BATCH {
                        next = incoming.try_recv().ok();
                    }
                }
                let count = batch.len();
                if count > 0 {
                    let caller = caller.clone();
                    let answers = api
                        .blocking(move |trellis| Ok(match_batch(trellis, batch, &caller)))
                        .await;
                    match answers {
                        Ok(answers) => {
                            for answer in answers {
                                if sender.send(Ok(answer)).await.is_err() {
                                    return;
                                }
                            }
                            awaiting.answered(count);
                        }
                        Err(status) => {
                            let _ = sender.send(Err(status)).await;
                            return;
                        }
                    }
                }
                if let Some(status) = failure {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// Answers a batch of bulk-match requests, in their order; a bad contact gets its own error,
/// never the stream's. Each contact's workspace is checked as `caller`, then the contacts of
/// each workspace are matched together, on every core (see [`Trellis::match_people`]).
fn match_batch(
    trellis: &Trellis,
    batch: Vec<pb::MatchPeopleRequest>,
    caller: &Option<crate::auth::Principal>,
) -> Vec<pb::MatchPeopleResponse> {
    let mut answers: Vec<pb::MatchPeopleResponse> = batch
        .iter()
        .map(|request| pb::MatchPeopleResponse {
            contact_id: request.contact_id.clone(),
            ..Default::default()
        })
        .collect();
    // Workspace to the positions and lookups of its contacts, in the batch's order.
    let mut by_workspace: Vec<(WorkspaceId, Vec<usize>, Vec<PersonLookup>)> = Vec::new();
    for (position, request) in batch.into_iter().enumerate() {
        let checked = crate::auth::as_caller(caller.clone(), || {
            Ok::<_, Status>((
                convert::workspace(&request.workspace)?,
                person_lookup(request.lookup)?,
            ))
        });
        match checked {
            Ok((workspace, lookup)) => {
                match by_workspace
                    .iter_mut()
                    .find(|(known, ..)| *known == workspace)
                {
                    Some((_, positions, lookups)) => {
                        positions.push(position);
                        lookups.push(lookup);
                    }
                    None => by_workspace.push((workspace, vec![position], vec![lookup])),
                }
            }
            Err(status) => answers[position].error = status.message().to_owned(),
        }
    }
    for (workspace, positions, lookups) in by_workspace {
        match trellis.match_people(&workspace, &lookups) {
            Ok(matches) => {
                for (position, outcome) in positions.into_iter().zip(matches) {
                    let answer = &mut answers[position];
                    match outcome {
                        Ok(Some(found)) => {
                            answer.found = true;
                            answer.profile = Some(profile_to_pb(&found.insight));
                        }
                        Ok(None) => {}
                        Err(error) => answer.error = error.to_string(),
                    }
                }
            }
            Err(error) => {
                let error = error.to_string();
                for position in positions {
                    answers[position].error.clone_from(&error);
                }
            }
        }
    }
    answers
}

#[tonic::async_trait]
impl pb::source_service_server::SourceService for Api {}

#[tonic::async_trait]
impl pb::server_service_server::ServerService for Api {
    async fn get_server_status(
        &self,
        _request: Request<pb::GetServerStatusRequest>,
    ) -> Result<Response<pb::GetServerStatusResponse>, Status> {
        let (status, replication, follows_change_log, (standing, insights), models) = self
            .blocking(|trellis| {
                Ok((
                    trellis.semantic_status()?,
                    trellis.replication()?,
                    trellis.follows_changes(),
                    (trellis.standing_status()?, trellis.insight_status()?),
                    trellis.model_status()?,
                ))
            })
            .await?;
        let meaning_languages = status.meaning_languages;
        let mut workspaces: std::collections::BTreeMap<WorkspaceId, pb::WorkspaceStatus> = status
            .workspaces
            .into_iter()
            .map(|workspace| {
                (
                    workspace.workspace.clone(),
                    pb::WorkspaceStatus {
                        workspace: workspace.workspace.to_string(),
                        conversations: workspace.conversations as u64,
                        embedded_conversations: workspace.embedded as u64,
                        pending_embeddings: workspace.pending as u64,
                        embedded_assets: workspace.assets_embedded as u64,
                        pending_asset_embeddings: workspace.assets_pending as u64,
                        languages: workspace
                            .languages
                            .iter()
                            .map(|count| {
                                let analysis = count.language.analysis();
                                pb::LanguageCount {
                                    code: count.language.code().to_owned(),
                                    name: count.language.name().to_owned(),
                                    conversations: count.conversations as u64,
                                    posts: count.posts as u64,
                                    analysis: analysis.describe().to_owned(),
                                    analysed: analysis.is_analysed(),
                                    by_meaning: meaning_languages.contains(&count.language.code()),
                                }
                            })
                            .collect(),
                        ..pb::WorkspaceStatus::default()
                    },
                )
            })
            .collect();
        // A workspace another replica created and this one has not loaded yet is all lag.
        for position in replication {
            let workspace = workspaces
                .entry(position.workspace.clone())
                .or_insert_with(|| pb::WorkspaceStatus {
                    workspace: position.workspace.to_string(),
                    ..pb::WorkspaceStatus::default()
                });
            workspace.applied_change = position.applied;
            workspace.change_log_head = position.head;
            workspace.replication_lag = position.lag;
        }
        for (id, progress) in standing {
            if let Some(workspace) = workspaces.get_mut(&id) {
                workspace.standing_judged = progress.ready as u64;
                workspace.standing_pending = progress.pending as u64;
                workspace.standing_stale = progress.stale as u64;
                workspace.standing_bytes = progress.bytes as u64;
            }
        }
        for (id, progress) in insights {
            if let Some(workspace) = workspaces.get_mut(&id) {
                workspace.insights_ready = progress.ready as u64;
                workspace.insights_pending = progress.pending as u64;
                workspace.insights_bytes = progress.bytes as u64;
            }
        }
        for status in models {
            if let Some(workspace) = workspaces.get_mut(&status.workspace) {
                workspace.ranking_models = status
                    .models
                    .iter()
                    .map(convert::ranking_model_to_pb)
                    .collect();
                workspace.models_fitted_records = status.fitted_records;
                workspace.models_last_outcome = status.last_outcome;
                workspace.models_fits = status.fits;
                workspace.models_fitted_feedback = status.fitted_feedback;
            }
        }
        Ok(Response::new(pb::GetServerStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            semantic: Some(pb::SemanticTier {
                enabled: status.model_id.is_some(),
                model_id: status.model_id.unwrap_or_default(),
                lexical_only_reason: status.lexical_only_reason,
            }),
            workspaces: workspaces
                .into_iter()
                // A key sees only its own workspace.
                .filter(|(id, _)| crate::auth::check_workspace(id).is_ok())
                .map(|(_, workspace)| workspace)
                .collect(),
            follows_change_log,
        }))
    }
}
