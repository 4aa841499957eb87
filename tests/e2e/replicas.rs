//! Several replicas on one PostgreSQL database: real `trellis serve` processes sharing one
//! schema. A write made through one is served by the others within the configured follow
//! interval; a source is synced by one replica at a time, and when that replica is killed
//! another takes the sync over from its last checkpoint.
//!
//! These need `TRELLIS_TEST_POSTGRES_URL` (`.ci/run` sets it for both runs of this suite);
//! without it they say they are skipped, except under `CI=true`, where they fail.

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::Code;
use trellis_core::domain::WorkspaceId;

use super::sources::{
    create_source, get_source, plugin_dir, sources, start_with_plugins_and, sync_until_checkpoints,
    wait_for_sync_end, write_conversations,
};
use super::{Server, conversation, ingest, pb, postgres_schema};

const FOLLOW_INTERVAL_MS: &str = "200";

/// The settings that put a server on the shared test database, in the schema that stands for
/// `db`, with a short follow interval and a short sync lease.
fn replica_settings(db: &Path) -> Option<Vec<(&'static str, String)>> {
    let url = match std::env::var("TRELLIS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("TRELLIS_TEST_POSTGRES_URL is not set under CI=true; .ci/run sets it")
        }
        _ => {
            eprintln!(
                "skipped: replicas need PostgreSQL; set TRELLIS_TEST_POSTGRES_URL (scripts/postgres-test-cluster.sh)"
            );
            return None;
        }
    };
    Some(vec![
        ("TRELLIS__STORAGE__ENGINE", "postgres".to_owned()),
        ("TRELLIS__STORAGE__URL", url),
        ("TRELLIS__STORAGE__POOL_SIZE", "4".to_owned()),
        ("TRELLIS__STORAGE__SCHEMA", postgres_schema(db)),
        (
            "TRELLIS__REPLICATION__FOLLOW_INTERVAL_MS",
            FOLLOW_INTERVAL_MS.to_owned(),
        ),
        ("TRELLIS__SYNC__LEASE_SECONDS", "3".to_owned()),
    ])
}

async fn start_replica(db: &Path, plugins: &Path, settings: &[(&'static str, String)]) -> Server {
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    start_with_plugins_and(db, plugins, &settings).await
}

/// The conversations to nourish that a replica's engine lists; empty while it has no strategy.
async fn strategic_keys(server: &Server) -> Vec<(String, String)> {
    let listed = server
        .insight()
        .list_strategic_conversations(pb::ListStrategicConversationsRequest {
            limit: 100,
            ..Default::default()
        })
        .await;
    let Ok(listed) = listed else {
        return Vec::new();
    };
    let mut keys: Vec<(String, String)> = listed
        .into_inner()
        .conversations
        .into_iter()
        .filter_map(|item| item.conversation)
        .map(|reference| (reference.source, reference.external_id))
        .collect();
    keys.sort();
    keys
}

/// Conversations in a replica's in-memory index (not its database, which all replicas share).
async fn indexed(server: &Server) -> u64 {
    pb::server_service_client::ServerServiceClient::new(server.channel.clone())
        .get_server_status(pb::GetServerStatusRequest::default())
        .await
        .expect("the status is served")
        .into_inner()
        .workspaces
        .iter()
        .find(|status| status.workspace == "default")
        .map_or(0, |status| status.conversations)
}

/// Polls `server` until its index holds `count` conversations; returns how long that took.
async fn time_until_indexed(server: &Server, count: u64) -> Duration {
    let started = Instant::now();
    loop {
        let now = indexed(server).await;
        if now == count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replica indexes {now} conversations, not {count}, 10 s on"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_through_one_replica_are_served_by_the_other_within_the_follow_interval() {
    let dir = crate::test_dir().unwrap();
    let db = dir.path().join("shared.db");
    let Some(settings) = replica_settings(&db) else {
        return;
    };
    let plugins = plugin_dir(dir.path());
    let first = start_replica(&db, &plugins, &settings).await;
    let second = start_replica(&db, &plugins, &settings).await;

    super::put_example_strategy(&first).await;
    super::ingest_example(&first);
    let example = indexed(&first).await;
    assert!(example > 0);
    time_until_indexed(&second, example).await;
    // Both replicas now answer the same: the strategy, and the same conversations to nourish.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, b) = (strategic_keys(&first).await, strategic_keys(&second).await);
        if a == b && !a.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas still disagree:\n{a:?}\n{b:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    ingest(
        &first,
        vec![conversation(
            "forum",
            "replicated-1",
            "How do we trace a request across services?",
            "Our traces stop at the message queue; how do we propagate context through it?",
        )],
    )
    .await;
    let delay = time_until_indexed(&second, example + 1).await;
    eprintln!(
        "a write through one replica was served by the other {} ms later (follow interval {FOLLOW_INTERVAL_MS} ms)",
        delay.as_millis()
    );

    // And the other way round: the second replica writes, the first serves it.
    ingest(
        &second,
        vec![conversation(
            "forum",
            "replicated-2",
            "Sampling traces without losing the slow ones",
            "Which sampling keeps the slow requests we care about?",
        )],
    )
    .await;
    assert_eq!(
        indexed(&second).await,
        example + 2,
        "a replica reads its own writes at once"
    );
    time_until_indexed(&first, example + 2).await;

    // Both have applied the whole log now: each says where it stands, and no lag.
    let (a, b) = (
        replication(&first)
            .await
            .expect("the first follows the log"),
        replication(&second)
            .await
            .expect("the second follows the log"),
    );
    assert_eq!(a, b, "both at the head");
    assert_eq!(a.lag, 0);
    assert!(a.head >= 4, "a strategy and three batches at least: {a:?}");
    assert_eq!(a.applied, a.head);
    let health = first.cli_json(&["health"]);
    assert_eq!(health["follows_change_log"], true, "{health}");
    let default = health["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|workspace| workspace["workspace"] == "default")
        .expect("trellis health lists the default workspace");
    assert_eq!(default["change_log_head"], a.head, "{health}");
    assert_eq!(default["applied_change"], a.head, "{health}");
    assert_eq!(default["replication_lag"], 0, "{health}");

    // A replica that follows only once a minute lags behind writes made elsewhere, and says by
    // how much.
    let mut slow_settings = settings.clone();
    for (key, value) in &mut slow_settings {
        if *key == "TRELLIS__REPLICATION__FOLLOW_INTERVAL_MS" {
            *value = "60000".to_owned();
        }
    }
    let slow = start_replica(&db, &plugins, &slow_settings).await;
    let loaded = replication(&slow)
        .await
        .expect("the slow one follows the log");
    assert_eq!(
        loaded.lag, 0,
        "it loaded the workspace at the head: {loaded:?}"
    );
    for id in ["replicated-3", "replicated-4"] {
        ingest(
            &first,
            vec![conversation(
                "forum",
                id,
                "Tail-based sampling",
                "Keeping every slow trace without keeping them all.",
            )],
        )
        .await;
    }
    let behind = replication(&slow).await.unwrap();
    assert_eq!(behind.head, loaded.head + 2, "{behind:?}");
    assert_eq!(behind.applied, loaded.applied, "{behind:?}");
    assert_eq!(behind.lag, 2, "{behind:?}");
    let health = slow.cli_json(&["health"]);
    assert!(
        health["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|workspace| workspace["replication_lag"] == 2),
        "{health}"
    );

    for server in [first, second, slow] {
        let status = server.terminate().await;
        assert!(status.success(), "{status}");
    }
}

/// Where a replica stands in the default workspace's change log, as its status says; `None`
/// when it follows no log.
#[derive(Debug, PartialEq)]
struct Replication {
    applied: u64,
    head: u64,
    lag: u64,
}

async fn replication(server: &Server) -> Option<Replication> {
    let status = pb::server_service_client::ServerServiceClient::new(server.channel.clone())
        .get_server_status(pb::GetServerStatusRequest::default())
        .await
        .expect("the status is served")
        .into_inner();
    if !status.follows_change_log {
        return None;
    }
    status
        .workspaces
        .iter()
        .find(|workspace| workspace.workspace == "default")
        .map(|workspace| Replication {
            applied: workspace.applied_change,
            head: workspace.change_log_head,
            lag: workspace.replication_lag,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_replica_syncs_a_source_and_another_takes_it_over_when_it_is_killed() {
    const TOTAL: usize = 20_000;
    let dir = crate::test_dir().unwrap();
    let db = dir.path().join("shared.db");
    let Some(settings) = replica_settings(&db) else {
        return;
    };
    let plugins = plugin_dir(dir.path());
    let data = dir.path().join("big.jsonl");
    write_conversations(&data, TOTAL);
    let first = start_replica(&db, &plugins, &settings).await;
    let second = start_replica(&db, &plugins, &settings).await;

    // 100 batches of 200 records, 30 ms apart: a sync of a few seconds.
    create_source(
        &first,
        "big",
        serde_json::json!({"path": data, "batch_size": 200, "throttle_ms": 30}),
    )
    .await;
    let (stream, _) = sync_until_checkpoints(&first, "big", 10).await;

    // While the first replica holds the source, the second may not sync it.
    let refused = sources(&second)
        .sync_source(pb::SyncSourceRequest {
            workspace: String::new(),
            id: "big".into(),
            full_refresh: false,
        })
        .await;
    let refused = match refused {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            stream
                .message()
                .await
                .expect_err("the second replica refuses to sync a source another replica syncs")
        }
    };
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("being synced by the replica"),
        "{refused:?}"
    );

    drop(stream);
    let mut first = first;
    first.child.kill().expect("SIGKILL is delivered");
    first.child.wait().unwrap();
    let killed = Instant::now();
    drop(first);
    let synced_at_kill = get_source(&second, "big").await.records_synced;
    assert!(
        synced_at_kill < TOTAL as u64,
        "killed mid-sync: {synced_at_kill}"
    );

    // The lease (3 s) runs out and the second replica's scheduler takes the sync over.
    let done = wait_for_sync_end(&second, "big").await;
    eprintln!(
        "the second replica finished the sync {} ms after the first was killed ({synced_at_kill} of {TOTAL} records were committed then)",
        killed.elapsed().as_millis()
    );
    assert_eq!(done.status, pb::SyncStatus::Succeeded as i32, "{done:?}");
    assert_eq!(
        done.records_synced, TOTAL as u64,
        "every record is covered by exactly one committed checkpoint: the takeover resumed from the last one"
    );
    let status = second.terminate().await;
    assert!(status.success(), "{status}");

    let counts = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let options = trellis_store::PostgresOptions {
                    url: std::env::var("TRELLIS_TEST_POSTGRES_URL").unwrap(),
                    pool_size: 1,
                    schema: Some(postgres_schema(&db)),
                };
                let store = trellis_store::PostgresStore::open(&options).unwrap();
                trellis_core::store::Store::counts(&store, &WorkspaceId::default_workspace())
                    .unwrap()
            })
            .join()
            .unwrap()
    });
    assert_eq!(counts.conversations, TOTAL as u64, "no gap, no duplicate");
}
