//! `SourceService`: connectors and sources over gRPC. Thin like every handler: parse, call the
//! plugin host off the async runtime (plugin calls block), convert back. A sync runs on a thread
//! of its own and streams its progress; it goes on to the end even if the client goes away, so a
//! dropped connection never leaves half a checkpoint interval behind.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use trellis_core::sources::{Source, SyncStatus};
use trellis_core::{CoreError, Violation};
use trellis_plugin_host::{SecretStatus, Sources, SyncProgress};

use crate::convert::{timestamp, workspace};
use crate::error::{ApiError, bad_field};
use crate::pb;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// The source service over the plugin host.
#[derive(Debug, Clone)]
pub struct SourceApi {
    sources: Arc<Sources>,
}

impl SourceApi {
    pub fn new(sources: Arc<Sources>) -> Self {
        Self { sources }
    }

    pub fn service(&self) -> pb::source_service_server::SourceServiceServer<SourceApi> {
        pb::source_service_server::SourceServiceServer::new(self.clone())
    }

    /// Runs blocking plugin-host work that answers a source, and converts it.
    async fn answer_source(
        &self,
        work: impl FnOnce(&Sources) -> Result<Source, CoreError> + Send + 'static,
    ) -> Result<pb::Source, Status> {
        self.blocking(move |sources| {
            let source = work(sources)?;
            let secrets = sources.secret_status(&source);
            Ok(source_to_pb(&source, secrets))
        })
        .await
    }

    /// Runs blocking plugin-host work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Sources) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let sources = Arc::clone(&self.sources);
        tokio::task::spawn_blocking(move || work(&sources))
            .await
            .map_err(|error| Status::internal(format!("a plugin call did not finish: {error}")))?
            .map_err(|error| Status::from(ApiError(error)))
    }
}

fn status_to_pb(status: SyncStatus) -> pb::SyncStatus {
    match status {
        SyncStatus::Idle => pb::SyncStatus::Idle,
        SyncStatus::Running => pb::SyncStatus::Running,
        SyncStatus::Succeeded => pb::SyncStatus::Succeeded,
        SyncStatus::Failed => pb::SyncStatus::Failed,
    }
}

/// A source as answers give it: its config without secrets, and which secrets are set.
pub fn source_to_pb(source: &Source, secrets: Vec<SecretStatus>) -> pb::Source {
    pb::Source {
        id: source.id.clone(),
        connector: source.connector.clone(),
        display_name: source.display_name.clone(),
        config_json: source.config_json.clone(),
        sync_interval_seconds: source.sync_interval_seconds,
        isolated: source.isolated,
        status: status_to_pb(source.status).into(),
        last_sync_at: source.last_sync_at.map(timestamp),
        last_error: source.last_error.clone(),
        records_synced: source.records_synced,
        secrets: secrets
            .into_iter()
            .map(|secret| pb::SecretField {
                field: secret.field,
                set: secret.set,
            })
            .collect(),
    }
}

fn source_from_pb(source: Option<pb::Source>) -> Result<Source, Status> {
    let Some(source) = source else {
        return Err(bad_field(
            "source",
            "is missing; send the source's id, connector and config_json",
        ));
    };
    Ok(Source {
        id: source.id,
        connector: source.connector,
        display_name: source.display_name,
        config_json: source.config_json,
        sync_interval_seconds: source.sync_interval_seconds,
        isolated: source.isolated,
        ..Source::default()
    })
}

fn progress_to_pb(progress: &SyncProgress) -> pb::SyncSourceResponse {
    pb::SyncSourceResponse {
        status: status_to_pb(progress.status).into(),
        records_read: progress.records_read,
        records_stored: progress.records_stored,
        checkpoints_committed: progress.checkpoints_committed,
        stream: progress.stream.clone(),
        message: progress.message.clone(),
    }
}

fn id_of(id: &str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(bad_field("id", "is empty; give the source's id"));
    }
    Ok(id.to_owned())
}

#[tonic::async_trait]
impl pb::source_service_server::SourceService for SourceApi {
    async fn list_connectors(
        &self,
        _request: Request<pb::ListConnectorsRequest>,
    ) -> Result<Response<pb::ListConnectorsResponse>, Status> {
        let connectors = self
            .sources
            .registry()
            .connectors()
            .map(|connector| {
                let (abi_major, abi_minor) = connector.plugin.abi_version();
                pb::Connector {
                    name: connector.spec.name.clone(),
                    version: connector.spec.version.clone(),
                    // trellis.connector.v1 reuses trellis.v1.PlatformKind: the numbers agree.
                    platform: connector.spec.platform,
                    config_schema_json: connector.spec.config_schema_json.clone(),
                    streams: connector
                        .spec
                        .streams
                        .iter()
                        .map(|stream| stream.name.clone())
                        .collect(),
                    abi_major: u32::from(abi_major),
                    abi_minor: u32::from(abi_minor),
                }
            })
            .collect();
        Ok(Response::new(pb::ListConnectorsResponse { connectors }))
    }

    async fn create_source(
        &self,
        request: Request<pb::CreateSourceRequest>,
    ) -> Result<Response<pb::CreateSourceResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let source = source_from_pb(request.source)?;
        let created = self
            .answer_source(move |sources| sources.create(&workspace, source))
            .await?;
        Ok(Response::new(pb::CreateSourceResponse {
            source: Some(created),
        }))
    }

    async fn get_source(
        &self,
        request: Request<pb::GetSourceRequest>,
    ) -> Result<Response<pb::GetSourceResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let id = id_of(&request.id)?;
        let source = self
            .answer_source(move |sources| sources.get(&workspace, &id))
            .await?;
        Ok(Response::new(pb::GetSourceResponse {
            source: Some(source),
        }))
    }

    async fn update_source(
        &self,
        request: Request<pb::UpdateSourceRequest>,
    ) -> Result<Response<pb::UpdateSourceResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let source = source_from_pb(request.source)?;
        let updated = self
            .answer_source(move |sources| sources.update(&workspace, source))
            .await?;
        Ok(Response::new(pb::UpdateSourceResponse {
            source: Some(updated),
        }))
    }

    async fn set_source_secrets(
        &self,
        request: Request<pb::SetSourceSecretsRequest>,
    ) -> Result<Response<pb::SetSourceSecretsResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let id = id_of(&request.id)?;
        let set = request.set.into_iter().collect();
        let clear = request.clear;
        let source = self
            .answer_source(move |sources| sources.set_secrets(&workspace, &id, set, &clear))
            .await?;
        Ok(Response::new(pb::SetSourceSecretsResponse {
            source: Some(source),
        }))
    }

    async fn delete_source(
        &self,
        request: Request<pb::DeleteSourceRequest>,
    ) -> Result<Response<pb::DeleteSourceResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let id = id_of(&request.id)?;
        if request.delete_records {
            return Err(Status::from(ApiError(CoreError::Invalid(vec![
                Violation::new(
                    "delete_records",
                    "deleting a source's records is not supported yet; delete the source without it (its records stay)",
                ),
            ]))));
        }
        self.blocking(move |sources| sources.delete(&workspace, &id))
            .await?;
        Ok(Response::new(pb::DeleteSourceResponse {}))
    }

    async fn list_sources(
        &self,
        request: Request<pb::ListSourcesRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            size if size < 0 => {
                return Err(bad_field(
                    "page_size",
                    "is negative; give 1 to 500, or 0 for the default of 50",
                ));
            }
            size => usize::try_from(size).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let after = (!request.page_token.is_empty()).then_some(request.page_token);
        let mut page = self
            .blocking(move |sources| {
                Ok(sources
                    .list(&workspace, limit + 1, after.as_deref())?
                    .iter()
                    .map(|source| source_to_pb(source, sources.secret_status(source)))
                    .collect::<Vec<_>>())
            })
            .await?;
        let next_page_token = if page.len() > limit {
            page.truncate(limit);
            page.last()
                .map(|source| source.id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListSourcesResponse {
            sources: page,
            next_page_token,
        }))
    }

    async fn check_source(
        &self,
        request: Request<pb::CheckSourceRequest>,
    ) -> Result<Response<pb::CheckSourceResponse>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let id = id_of(&request.id)?;
        let (ok, message) = self
            .blocking(move |sources| sources.check(&workspace, &id))
            .await?;
        Ok(Response::new(pb::CheckSourceResponse { ok, message }))
    }

    async fn sync_source(
        &self,
        request: Request<pb::SyncSourceRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::SyncSourceResponse>>, Status> {
        let request = request.into_inner();
        let workspace = workspace(&request.workspace)?;
        let id = id_of(&request.id)?;
        // Fail fast (NOT_FOUND) before starting a thread.
        {
            let workspace = workspace.clone();
            let id = id.clone();
            self.blocking(move |sources| sources.get(&workspace, &id))
                .await?;
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let sources = Arc::clone(&self.sources);
        let full_refresh = request.full_refresh;
        std::thread::Builder::new()
            .name(format!("trellis-sync-{id}"))
            .spawn(move || {
                let mut send = |progress: &SyncProgress| {
                    // A client that went away stops getting progress; the sync goes on.
                    let _ = sender.blocking_send(Ok(progress_to_pb(progress)));
                };
                if let Err(error) = sources.sync(&workspace, &id, full_refresh, &mut send) {
                    let _ = sender.blocking_send(Err(Status::from(ApiError(error))));
                }
            })
            .map_err(|error| Status::internal(format!("cannot start a sync thread: {error}")))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
