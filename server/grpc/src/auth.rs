//! Access control at the gRPC edge: API keys, roles, workspaces and per-key rate limits.
//!
//! One tower layer in front of every Trellis service authenticates the `authorization: Bearer
//! <key>` metadata against the [`KeyStore`] on every call (no cache, so a revoked key is refused
//! on its next call), checks the role the method needs from its name, and applies the key's rate
//! limit. A layer sees the method path, which an interceptor does not, and can wait for the
//! store off the async runtime. Health checking and reflection stay open.
//!
//! The workspace is in the request body, which only the handler decodes. Every handler already
//! turns the `workspace` field into a [`WorkspaceId`] through [`crate::convert::workspace`], so
//! that one function checks it against the caller's key, kept in a task-local for the duration
//! of the call: a new handler is covered without doing anything, and a handler cannot forget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::Status;
use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Service};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic_types::{ErrorDetails, StatusExt};
use trellis_core::domain::WorkspaceId;
use trellis_core::keys::{self, KeyStore, Role};

/// How the API is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    /// Every call needs a key; when false, calls are served without one.
    pub required: bool,
    /// Calls per second each key may make on average; 0 for no limit.
    pub requests_per_second: u32,
    /// Calls a key may make at once above its average.
    pub burst: u32,
    /// Messages per second each key may stream on average (records into `Ingest`, contacts into
    /// `MatchPeople`): a stream is one call, but each message is work. A stream over it is slowed
    /// to the rate, not refused. 0 for no limit; a burst of twice the rate.
    pub stream_messages_per_second: u32,
    /// Failed authentications one peer address may make per minute (a burst of as many); past
    /// it, every call from that address is refused for a while, whatever key it sends. 0 for no
    /// limit.
    pub failed_auth_per_minute: u32,
}

/// Who is calling: the key that authenticated the call. Also in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub workspace: WorkspaceId,
    pub role: Role,
}

tokio::task_local! {
    static CALLER: Principal;
}

/// Set once a layer that requires keys exists: from then on a workspace checked outside any
/// call's scope is refused rather than waved through.
static REQUIRED: AtomicBool = AtomicBool::new(false);

/// The caller of the current call, if keys are required.
pub fn caller() -> Option<Principal> {
    CALLER.try_with(Principal::clone).ok()
}

/// Runs `work` as `caller`, for work a handler moves to another task or thread.
pub fn as_caller<T>(caller: Option<Principal>, work: impl FnOnce() -> T) -> T {
    match caller {
        Some(principal) => CALLER.sync_scope(principal, work),
        None => work(),
    }
}

/// Refuses a workspace the caller's key does not reach.
pub fn check_workspace(workspace: &WorkspaceId) -> Result<(), Status> {
    match caller() {
        Some(principal) if principal.workspace == *workspace => Ok(()),
        Some(principal) => Err(Status::permission_denied(format!(
            "api key {} is for workspace {:?} and cannot reach workspace {:?}; use a key created with `trellis keys create --workspace {}`",
            principal.key_id,
            principal.workspace.as_str(),
            workspace.as_str(),
            workspace.as_str()
        ))),
        None if REQUIRED.load(Ordering::Relaxed) => Err(Status::internal(
            "the workspace was checked outside the call that asked for it; this is a bug in trellis, please report it",
        )),
        None => Ok(()),
    }
}

/// Verbs of the calls a read key may make.
const READ_VERBS: &[&str] = &[
    "Get",
    "List",
    "Score",
    "Suggest",
    "Match",
    "Find",
    "Audit",
    "Recommend",
    "Plan",
];
const WRITE_METHODS: &[&str] = &[
    "Ingest",
    "PutStrategy",
    "CreateSource",
    "UpdateSource",
    "SetSourceSecrets",
    "CheckSource",
    "SyncSource",
    "MergePeople",
    "UnmergePeople",
    "RecordFeedback",
];
const ADMIN_METHODS: &[&str] = &["DeleteSource", "ForgetPerson", "ReviewMerges"];

/// The role a method needs, from its name. A method no list knows needs admin, so that a new
/// call is never open to read keys by accident.
pub fn role_for_method(method: &str) -> Role {
    if ADMIN_METHODS.contains(&method) {
        Role::Admin
    } else if WRITE_METHODS.contains(&method) {
        Role::Write
    } else if READ_VERBS.iter().any(|verb| {
        method
            .strip_prefix(verb)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    }) {
        Role::Read
    } else {
        Role::Admin
    }
}

/// The role a request path needs; `None` for the services that stay open (health, reflection).
pub fn role_for_path(path: &str) -> Option<Role> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
        return None;
    }
    Some(role_for_method(method))
}

/// The guard in front of the services; a [`tower_layer::Layer`].
#[derive(Clone)]
pub struct AuthLayer {
    inner: Arc<Guard>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Guard {
    settings: AuthSettings,
    keys: Arc<dyn KeyStore>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    messages: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Peers refused until the given moment, for failing authentication too often.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// A stream's share of its key's message rate ([`AuthSettings::stream_messages_per_second`]).
#[derive(Clone)]
pub struct MessageBudget {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    key_id: String,
}

impl MessageBudget {
    /// Waits until the key may stream one more message.
    pub async fn spend_one(&self) {
        self.limiter.until_key_ready(&self.key_id).await;
    }
}

impl std::fmt::Debug for MessageBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBudget")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    static BUDGET: MessageBudget;
}

/// The message budget of the current call's key, when keys are required and streamed messages
/// are limited. A streaming handler takes it before moving work to other tasks.
pub fn message_budget() -> Option<MessageBudget> {
    BUDGET.try_with(MessageBudget::clone).ok()
}

/// Spends one message of `budget`, if there is one.
pub async fn spend(budget: &Option<MessageBudget>) {
    if let Some(budget) = budget {
        budget.spend_one().await;
    }
}

impl AuthLayer {
    pub fn new(settings: AuthSettings, keys: Arc<dyn KeyStore>) -> Self {
        if settings.required {
            REQUIRED.store(true, Ordering::Relaxed);
        }
        let limiter = NonZeroU32::new(settings.requests_per_second).map(|rate| {
            let burst = NonZeroU32::new(settings.burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let messages = NonZeroU32::new(settings.stream_messages_per_second).map(|rate| {
            let burst = NonZeroU32::new(rate.get().saturating_mul(2)).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        let failures = NonZeroU32::new(settings.failed_auth_per_minute)
            .map(|rate| RateLimiter::keyed(Quota::per_minute(rate).allow_burst(rate)));
        Self {
            inner: Arc::new(Guard {
                settings,
                keys,
                limiter,
                messages,
                failures,
                blocked: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            guard: Arc::clone(&self.inner),
            inner,
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Clone)]
pub struct AuthService<S> {
    guard: Arc<Guard>,
    inner: S,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone is the one that was not polled ready; keep the ready one for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            if !guard.settings.required {
                return inner.call(request).await.map(decode_errors_are_invalid);
            }
            let Some(needed) = role_for_path(request.uri().path()) else {
                return inner.call(request).await.map(decode_errors_are_invalid);
            };
            let method = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let bearer = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            let peer = peer_of(request.extensions());
            match guard.admit_from(peer, bearer, needed, &method).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal.clone());
                    let call = CALLER.scope(principal.clone(), inner.call(request));
                    let answer = match &guard.messages {
                        Some(limiter) => {
                            let budget = MessageBudget {
                                limiter: Arc::clone(limiter),
                                key_id: principal.key_id,
                            };
                            BUDGET.scope(budget, call).await
                        }
                        None => call.await,
                    };
                    answer.map(decode_errors_are_invalid)
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// tonic answers a request message that does not decode with INTERNAL, as if the server were at
/// fault; it is the caller's message that is wrong. Such an answer (trailers only, before any
/// handler ran) becomes INVALID_ARGUMENT, its message kept.
fn decode_errors_are_invalid(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let internal = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"13");
    let decode = headers.get("grpc-message").is_some_and(|message| {
        // gRPC percent-encodes the message.
        percent_encoding::percent_decode(message.as_bytes())
            .decode_utf8_lossy()
            .starts_with(crate::error::DECODE_ERROR_PREFIX)
    });
    if internal && decode {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}

/// The address a call came from, over TCP or TLS.
fn peer_of(extensions: &http::Extensions) -> Option<IpAddr> {
    let tcp = extensions.get::<TcpConnectInfo>().or_else(|| {
        extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(TlsConnectInfo::get_ref)
    })?;
    tcp.remote_addr().map(|address| address.ip())
}

/// Peers remembered as refused at most; past it, the longest-expired are forgotten first.
const BLOCKED_PEERS: usize = 100_000;

impl Guard {
    /// [`Guard::admit`] for a call from `peer`, which is refused for a while once it has failed
    /// authentication [`AuthSettings::failed_auth_per_minute`] times: guessing keys from one
    /// address gets nowhere fast, and a key that is right does not help while it is blocked.
    async fn admit_from(
        &self,
        peer: Option<IpAddr>,
        bearer: Option<String>,
        needed: Role,
        method: &str,
    ) -> Result<Principal, Status> {
        let (Some(failures), Some(peer)) = (&self.failures, peer) else {
            return self.admit(bearer, needed, method).await;
        };
        if let Some(wait) = self.blocked_for(peer) {
            return Err(too_many_failures(wait));
        }
        let outcome = self.admit(bearer, needed, method).await;
        if let Err(status) = &outcome
            && status.code() == tonic::Code::Unauthenticated
            && let Err(not_until) = failures.check_key(&peer)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::warn!(%peer, wait_ms = wait.as_millis() as u64, "a peer failed authentication too often; its calls are refused for a while");
            self.block(peer, wait);
            return Err(too_many_failures(wait));
        }
        outcome
    }

    /// How long `peer` is still refused, if it is.
    fn blocked_for(&self, peer: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut blocked = self
            .blocked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match blocked.get(&peer) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(&peer);
                None
            }
            None => None,
        }
    }

    fn block(&self, peer: IpAddr, wait: Duration) {
        let now = Instant::now();
        let mut blocked = self
            .blocked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if blocked.len() >= BLOCKED_PEERS {
            blocked.retain(|_, until| *until > now);
            if let Some(failures) = &self.failures {
                failures.retain_recent();
            }
        }
        if blocked.len() < BLOCKED_PEERS {
            blocked.insert(peer, now + wait);
        }
    }

    /// Authenticates the bearer key, checks its role and its rate limit.
    async fn admit(
        &self,
        bearer: Option<String>,
        needed: Role,
        method: &str,
    ) -> Result<Principal, Status> {
        let Some(bearer) = bearer else {
            return Err(Status::unauthenticated(
                "this server requires an api key: send the metadata `authorization: Bearer trk_…`; an operator creates one with `trellis keys create --workspace W --role read|write|admin`",
            ));
        };
        let presented = bearer
            .strip_prefix("Bearer ")
            .or_else(|| bearer.strip_prefix("bearer "))
            .unwrap_or_default()
            .trim();
        let Some((id, secret)) = keys::split(presented) else {
            return Err(Status::unauthenticated(
                "the authorization metadata is not `Bearer trk_<id>_<secret>`; send the key exactly as `trellis keys create` printed it",
            ));
        };
        let unknown = || {
            Status::unauthenticated(format!(
                "api key {id} is not known to this server; ask an operator for a key (`trellis keys create`)"
            ))
        };
        let store = Arc::clone(&self.keys);
        let lookup_id = id.to_owned();
        let stored = tokio::task::spawn_blocking(move || store.key(&lookup_id))
            .await
            .map_err(|error| Status::internal(format!("a worker task failed: {error}")))?
            .map_err(|error| {
                tracing::error!(%error, "reading an api key failed");
                Status::unavailable(format!(
                    "cannot check the api key now: {error}; retry shortly"
                ))
            })?
            .ok_or_else(unknown)?;
        if !keys::matches(&stored, secret) {
            return Err(unknown());
        }
        if stored.revoked_at.is_some() {
            return Err(Status::unauthenticated(format!(
                "api key {id} was revoked; ask an operator for a new one (`trellis keys create`)"
            )));
        }
        if stored.role < needed {
            return Err(Status::permission_denied(format!(
                "{method} needs a {needed} key; api key {id} is a {} key of workspace {:?}; use a key created with `trellis keys create --workspace {} --role {needed}`",
                stored.role,
                stored.workspace.as_str(),
                stored.workspace.as_str(),
            )));
        }
        if let Some(limiter) = &self.limiter
            && let Err(not_until) = limiter.check_key(&stored.id)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "api key {id} is over its rate limit of {} calls per second; retry in {} ms",
                    self.settings.requests_per_second,
                    wait.as_millis().max(1)
                ),
                ErrorDetails::with_retry_info(Some(wait)),
            ));
        }
        Ok(Principal {
            key_id: stored.id,
            workspace: stored.workspace,
            role: stored.role,
        })
    }
}

fn too_many_failures(wait: Duration) -> Status {
    let wait = wait.max(Duration::from_secs(1));
    Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!(
            "too many failed api key checks from this address; calls from it are refused for {} s (set [auth] failed_auth_per_minute to change the limit)",
            wait.as_secs()
        ),
        ErrorDetails::with_retry_info(Some(wait)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_api_has_the_role_its_verb_says() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut seen = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let name = method.name();
                    let role =
                        role_for_path(&format!("/{}.{}/{name}", file.package(), service.name()));
                    let expected = if ADMIN_METHODS.contains(&name) {
                        Role::Admin
                    } else if WRITE_METHODS.contains(&name) {
                        Role::Write
                    } else {
                        Role::Read
                    };
                    assert_eq!(
                        role,
                        Some(expected),
                        "{name}: classify it in WRITE_METHODS, ADMIN_METHODS or READ_VERBS"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen >= 30, "the descriptor set has the whole API ({seen})");
        assert_eq!(role_for_path("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            role_for_path("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            None
        );
        assert_eq!(
            role_for_method("Listen"),
            Role::Admin,
            "a verb must be a whole word"
        );
        assert_eq!(role_for_method("PurgeEverything"), Role::Admin);
    }
}
