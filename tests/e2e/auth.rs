//! Access control end to end: keys made with `trellis keys create` on the server's database, a
//! server started with `[auth] required = true`, and every RPC of every service called with no
//! key, a key of another workspace, a key of too low a role, and a key revoked while the server
//! runs. The table of RPCs is checked against the API's descriptors, so a new RPC must join it.

use std::path::Path;
use std::time::Duration;

use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use super::{Server, pb, trellis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Read,
    Write,
    Admin,
}

/// Every RPC of `trellis.v1`, with the role it needs and whether its request names a workspace.
const RPCS: &[(&str, &str, Role, bool)] = &[
    ("StrategyService", "PutStrategy", Role::Write, true),
    ("StrategyService", "GetStrategy", Role::Read, true),
    ("StrategyService", "ListStrategyVersions", Role::Read, true),
    ("IngestService", "Ingest", Role::Write, true),
    ("IngestService", "GetConversation", Role::Read, true),
    ("InsightService", "ScoreConversations", Role::Read, true),
    (
        "InsightService",
        "ListStrategicConversations",
        Role::Read,
        true,
    ),
    ("InsightService", "AuditCommunityDesign", Role::Read, true),
    ("InsightService", "SuggestDiscussions", Role::Read, true),
    ("InsightService", "SuggestParticipants", Role::Read, true),
    ("InsightService", "FindSupportingAssets", Role::Read, true),
    ("InsightService", "FindProspects", Role::Read, true),
    ("InsightService", "RecommendPlatformMix", Role::Read, true),
    ("InsightService", "PlanActions", Role::Read, true),
    ("PeopleService", "GetPerson", Role::Read, true),
    ("PeopleService", "ListPeople", Role::Read, true),
    ("PeopleService", "MatchPerson", Role::Read, true),
    ("PeopleService", "MatchPeople", Role::Read, true),
    ("PeopleService", "MergePeople", Role::Write, true),
    ("PeopleService", "UnmergePeople", Role::Write, true),
    ("PeopleService", "ListMerges", Role::Read, true),
    ("PeopleService", "ForgetPerson", Role::Admin, true),
    ("PeopleService", "ReviewMerges", Role::Admin, true),
    ("ServerService", "GetServerStatus", Role::Read, false),
    ("SourceService", "ListConnectors", Role::Read, false),
    ("SourceService", "CreateSource", Role::Write, true),
    ("SourceService", "GetSource", Role::Read, true),
    ("SourceService", "UpdateSource", Role::Write, true),
    ("SourceService", "SetSourceSecrets", Role::Write, true),
    ("SourceService", "DeleteSource", Role::Admin, true),
    ("SourceService", "ListSources", Role::Read, true),
    ("SourceService", "CheckSource", Role::Write, true),
    ("SourceService", "SyncSource", Role::Write, true),
    ("FeedbackService", "RecordFeedback", Role::Write, true),
    ("FeedbackService", "ListFeedback", Role::Read, true),
];

/// RPCs in the API whose handler this build does not serve yet (they answer UNIMPLEMENTED
/// after the key and role checks). Once served, they must leave this list.
const NOT_SERVED_YET: &[&str] = &[];

#[test]
fn the_table_covers_every_rpc_of_the_api() {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut api: Vec<(String, String)> = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|file| file.package() == "trellis.v1")
    {
        for service in &file.service {
            for method in &service.method {
                api.push((service.name().to_owned(), method.name().to_owned()));
            }
        }
    }
    api.sort();
    let mut table: Vec<(String, String)> = RPCS
        .iter()
        .map(|(service, method, _, _)| ((*service).to_owned(), (*method).to_owned()))
        .collect();
    table.sort();
    assert_eq!(
        table, api,
        "RPCS in tests/e2e/auth.rs must list every RPC of trellis.v1"
    );
}

fn with_key<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("valid metadata"),
        );
    }
    request
}

/// Calls one RPC with a minimal request in `workspace`; `Ok` when the call got past access
/// control, whatever the handler then made of the request.
async fn call(channel: &Channel, rpc: &str, workspace: &str, key: Option<&str>) -> Status {
    let w = workspace.to_owned();
    let mut strategy = pb::strategy_service_client::StrategyServiceClient::new(channel.clone());
    let mut ingest = pb::ingest_service_client::IngestServiceClient::new(channel.clone());
    let mut insight = pb::insight_service_client::InsightServiceClient::new(channel.clone());
    let mut people = pb::people_service_client::PeopleServiceClient::new(channel.clone());
    let mut server = pb::server_service_client::ServerServiceClient::new(channel.clone());
    let mut sources = pb::source_service_client::SourceServiceClient::new(channel.clone());
    let mut feedback = pb::feedback_service_client::FeedbackServiceClient::new(channel.clone());
    macro_rules! unary {
        ($client:ident . $method:ident($message:ident)) => {
            $client
                .$method(with_key(
                    pb::$message {
                        workspace: w,
                        ..Default::default()
                    },
                    key,
                ))
                .await
                .map(|_| ())
        };
    }
    let outcome: Result<(), Status> = match rpc {
        "PutStrategy" => unary!(strategy.put_strategy(PutStrategyRequest)),
        "GetStrategy" => unary!(strategy.get_strategy(GetStrategyRequest)),
        "ListStrategyVersions" => {
            unary!(strategy.list_strategy_versions(ListStrategyVersionsRequest))
        }
        "Ingest" => {
            let message = pb::IngestRequest {
                workspace: w,
                ..Default::default()
            };
            ingest
                .ingest(with_key(tokio_stream::iter(vec![message]), key))
                .await
                .map(|_| ())
        }
        "GetConversation" => unary!(ingest.get_conversation(GetConversationRequest)),
        "ScoreConversations" => unary!(insight.score_conversations(ScoreConversationsRequest)),
        "ListStrategicConversations" => {
            unary!(insight.list_strategic_conversations(ListStrategicConversationsRequest))
        }
        "AuditCommunityDesign" => {
            unary!(insight.audit_community_design(AuditCommunityDesignRequest))
        }
        "SuggestDiscussions" => unary!(insight.suggest_discussions(SuggestDiscussionsRequest)),
        "SuggestParticipants" => unary!(insight.suggest_participants(SuggestParticipantsRequest)),
        "FindSupportingAssets" => {
            unary!(insight.find_supporting_assets(FindSupportingAssetsRequest))
        }
        "FindProspects" => unary!(insight.find_prospects(FindProspectsRequest)),
        "RecommendPlatformMix" => {
            unary!(insight.recommend_platform_mix(RecommendPlatformMixRequest))
        }
        "PlanActions" => unary!(insight.plan_actions(PlanActionsRequest)),
        "GetPerson" => unary!(people.get_person(GetPersonRequest)),
        "ListPeople" => unary!(people.list_people(ListPeopleRequest)),
        "MatchPerson" => unary!(people.match_person(MatchPersonRequest)),
        "MatchPeople" => {
            let message = pb::MatchPeopleRequest {
                workspace: w,
                contact_id: "c1".into(),
                ..Default::default()
            };
            match people
                .match_people(with_key(tokio_stream::iter(vec![message]), key))
                .await
            {
                Err(status) => Err(status),
                // A bulk match answers each contact on its own: a refused workspace is the
                // contact's error, not the stream's.
                Ok(response) => match response.into_inner().message().await {
                    Ok(Some(answer)) if answer.error.contains("cannot reach workspace") => {
                        Err(Status::permission_denied(answer.error))
                    }
                    Ok(_) => Ok(()),
                    Err(status) => Err(status),
                },
            }
        }
        "MergePeople" => unary!(people.merge_people(MergePeopleRequest)),
        "UnmergePeople" => unary!(people.unmerge_people(UnmergePeopleRequest)),
        "ListMerges" => unary!(people.list_merges(ListMergesRequest)),
        "ForgetPerson" => unary!(people.forget_person(ForgetPersonRequest)),
        "ReviewMerges" => unary!(people.review_merges(ReviewMergesRequest)),
        "RecordFeedback" => unary!(feedback.record_feedback(RecordFeedbackRequest)),
        "ListFeedback" => unary!(feedback.list_feedback(ListFeedbackRequest)),
        "GetServerStatus" => server
            .get_server_status(with_key(pb::GetServerStatusRequest {}, key))
            .await
            .map(|_| ()),
        "ListConnectors" => sources
            .list_connectors(with_key(pb::ListConnectorsRequest::default(), key))
            .await
            .map(|_| ()),
        "CreateSource" => unary!(sources.create_source(CreateSourceRequest)),
        "GetSource" => unary!(sources.get_source(GetSourceRequest)),
        "UpdateSource" => unary!(sources.update_source(UpdateSourceRequest)),
        "SetSourceSecrets" => unary!(sources.set_source_secrets(SetSourceSecretsRequest)),
        "DeleteSource" => unary!(sources.delete_source(DeleteSourceRequest)),
        "ListSources" => unary!(sources.list_sources(ListSourcesRequest)),
        "CheckSource" => unary!(sources.check_source(CheckSourceRequest)),
        "SyncSource" => unary!(sources.sync_source(SyncSourceRequest)),
        other => panic!("no minimal request for {other}; add one to call()"),
    };
    outcome.err().unwrap_or_else(|| Status::ok("passed"))
}

/// `trellis` for a `keys` command on the storage a server started on `db` uses (the SQLite file,
/// or its PostgreSQL schema when the suite runs on PostgreSQL).
fn keys_command(db: &Path) -> std::process::Command {
    let mut command = trellis();
    command.envs(super::storage_settings(db));
    command
}

/// `trellis keys create` on the database; returns the key.
pub(super) fn create_key(db: &Path, workspace: &str, role: &str) -> String {
    let output = keys_command(db)
        .args([
            "keys",
            "create",
            "--workspace",
            workspace,
            "--role",
            role,
            "--json",
            "--db",
        ])
        .arg(db)
        .output()
        .expect("the trellis binary runs");
    assert!(
        output.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("keys create --json prints JSON");
    value["key"]
        .as_str()
        .expect("the key is printed")
        .to_owned()
}

fn key_id(key: &str) -> &str {
    key.strip_prefix("trk_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .expect("a key is trk_<id>_<secret>")
}

/// Keys required; these tests fail authentication on purpose, many times, from one address.
const REQUIRED: &[(&str, &str)] = &[
    ("TRELLIS__AUTH__REQUIRED", "true"),
    ("TRELLIS__AUTH__FAILED_AUTH_PER_MINUTE", "0"),
];

#[tokio::test]
async fn every_rpc_refuses_missing_foreign_underpowered_and_revoked_keys() {
    let dir = crate::test_dir().expect("tempdir");
    let db = dir.path().join("t.db");
    let read = create_key(&db, "default", "read");
    let write = create_key(&db, "default", "write");
    let admin = create_key(&db, "default", "admin");
    let foreign_admin = create_key(&db, "other", "admin");
    let server = Server::start_with(&db, REQUIRED).await;
    let channel = &server.channel;

    for &(_, rpc, needed, names_workspace) in RPCS {
        let status = call(channel, rpc, "", None).await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{rpc} without a key: {status:?}"
        );
        assert!(
            status.message().contains("trellis keys create"),
            "{rpc}: {status:?}"
        );

        let status = call(channel, rpc, "", Some("trk_00_00")).await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{rpc} with an unknown key"
        );

        // A key of another workspace reaches nothing in this one, whatever its role.
        let status = call(channel, rpc, "", Some(&foreign_admin)).await;
        if NOT_SERVED_YET.contains(&rpc) {
            assert_eq!(
                status.code(),
                Code::Unimplemented,
                "{rpc} is served now: take it off NOT_SERVED_YET"
            );
        } else if names_workspace {
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{rpc} with another workspace's key: {status:?}"
            );
            assert!(
                status.message().contains("workspace \"other\""),
                "{rpc}: {status:?}"
            );
            let status = call(channel, rpc, "default", Some(&foreign_admin)).await;
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{rpc} naming the default workspace"
            );
        }

        for (role, key) in [
            (Role::Read, &read),
            (Role::Write, &write),
            (Role::Admin, &admin),
        ] {
            let status = call(channel, rpc, "", Some(key)).await;
            if role < needed {
                assert_eq!(
                    status.code(),
                    Code::PermissionDenied,
                    "{rpc} with a {role:?} key: {status:?}"
                );
                assert!(status.message().contains("--role"), "{rpc}: {status:?}");
            } else {
                assert!(
                    !matches!(
                        status.code(),
                        Code::PermissionDenied | Code::Unauthenticated
                    ),
                    "{rpc} with a {role:?} key of its workspace is let through: {status:?}"
                );
            }
        }
    }

    // The status of the server shows a key only its own workspace.
    let status = pb::server_service_client::ServerServiceClient::new(channel.clone())
        .get_server_status(with_key(
            pb::GetServerStatusRequest {},
            Some(&foreign_admin),
        ))
        .await
        .expect("status")
        .into_inner();
    assert!(
        status
            .workspaces
            .iter()
            .all(|workspace| workspace.workspace == "other"),
        "{:?}",
        status.workspaces
    );

    // Health checking stays open.
    tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no key");

    // Revoked while the server runs: refused on the very next call, on every RPC.
    let output = keys_command(&db)
        .args(["keys", "revoke", key_id(&admin), "--json", "--db"])
        .arg(&db)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let revoked: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("revoke --json prints JSON");
    assert_eq!(revoked["id"], key_id(&admin), "{revoked}");
    assert_eq!(revoked["revoked"], true, "{revoked}");
    assert!(revoked["revoked_at"].as_u64().is_some(), "{revoked}");
    assert_eq!(revoked["workspace"], "default", "{revoked}");
    let again = keys_command(&db)
        .args(["keys", "revoke", key_id(&admin), "--json", "--db"])
        .arg(&db)
        .output()
        .expect("runs");
    assert!(!again.status.success(), "a key is revoked once");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("revoked already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for &(_, rpc, _, _) in RPCS {
        let status = call(channel, rpc, "", Some(&admin)).await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{rpc} with a revoked key: {status:?}"
        );
        assert!(status.message().contains("revoked"), "{rpc}: {status:?}");
    }
    let listed = keys_command(&db)
        .args(["keys", "list", "--json", "--db"])
        .arg(&db)
        .output()
        .expect("runs")
        .stdout;
    let secret = admin.rsplit('_').next().expect("a secret");
    assert!(
        !String::from_utf8_lossy(&listed).contains(secret),
        "list never shows a secret"
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn a_key_over_its_rate_limit_is_told_when_to_retry() {
    let dir = crate::test_dir().expect("tempdir");
    let db = dir.path().join("t.db");
    let read = create_key(&db, "default", "read");
    let other = create_key(&db, "default", "read");
    let server = Server::start_with(
        &db,
        &[
            ("TRELLIS__AUTH__REQUIRED", "true"),
            ("TRELLIS__AUTH__REQUESTS_PER_SECOND", "1"),
            ("TRELLIS__AUTH__BURST", "2"),
        ],
    )
    .await;
    let mut limited = None;
    for _ in 0..5 {
        let status = call(&server.channel, "ListSources", "", Some(&read)).await;
        if status.code() == Code::ResourceExhausted {
            limited = Some(status);
            break;
        }
    }
    let status = limited.expect("the third call within a second is over the limit");
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
    // Limits are per key: another key is unaffected.
    let status = call(&server.channel, "ListSources", "", Some(&other)).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
}

#[tokio::test]
async fn messages_over_the_configured_size_are_refused() {
    let dir = crate::test_dir().expect("tempdir");
    let server = Server::start_with(
        &dir.path().join("t.db"),
        &[("TRELLIS__SERVER__MAX_MESSAGE_BYTES", "4096")],
    )
    .await;
    let mut insight = pb::insight_service_client::InsightServiceClient::new(server.channel.clone());
    let status = insight
        .score_conversations(pb::ScoreConversationsRequest {
            texts: vec![pb::TextInput {
                title: "big".into(),
                body: "word ".repeat(2000),
            }],
            ..Default::default()
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("4096"), "{status:?}");
}

#[tokio::test]
async fn tls_from_configuration_serves_clients_that_trust_it_and_refuses_plaintext() {
    use std::io::BufRead;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

    let dir = crate::test_dir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let child = trellis()
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("t.db"))
        .env("TRELLIS__SERVER__TLS_CERT", &cert)
        .env("TRELLIS__SERVER__TLS_KEY", &key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let mut guard = super::ChildGuard(Some(child));
    let stdout = guard
        .0
        .as_mut()
        .and_then(|child| child.stdout.take())
        .expect("piped");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .expect("reads");
    let addr = line
        .trim()
        .strip_prefix("trellis listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    let port = addr.rsplit(':').next().expect("a port");

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certified.cert.pem()))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("valid")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("a client that trusts the certificate connects");
    let status = pb::server_service_client::ServerServiceClient::new(channel)
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .expect("served over TLS")
        .into_inner();
    assert!(!status.version.is_empty());

    let plaintext = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("valid")
            .connect()
            .await?;
        pb::server_service_client::ServerServiceClient::new(channel)
            .get_server_status(pb::GetServerStatusRequest {})
            .await
            .map_err(Into::<Box<dyn std::error::Error + Send + Sync>>::into)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), plaintext)
        .await
        .expect("a plaintext client is answered or refused in time");
    assert!(outcome.is_err(), "a plaintext client is not served");
}

#[tokio::test]
async fn the_command_line_sends_the_key_it_is_given() {
    let dir = crate::test_dir().expect("tempdir");
    let db = dir.path().join("t.db");
    let read = create_key(&db, "default", "read");
    let server = Server::start_with(&db, REQUIRED).await;
    let without = server.cli(&["sources", "list"]);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = trellis()
        .args(["sources", "list", "--addr", &server.addr, "--json"])
        .env("TRELLIS_API_KEY", &read)
        .output()
        .expect("runs");
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
}
