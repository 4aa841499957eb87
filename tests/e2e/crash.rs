//! Crash safety of ingest: the server is killed with SIGKILL while a client is still streaming
//! records. After a restart on the same database, every batch the server had committed is there,
//! nothing after it is, and sending the whole stream again stores each record exactly once.
//! (A SIGKILL in the middle of a sync is tested in `sources.rs`.)

use std::time::{Duration, Instant};

use tokio_stream::wrappers::ReceiverStream;

use super::{Server, pb, reference};

/// Records the test streams in all, and the batch size the server commits them in (its
/// default `ingest_batch`).
const TOTAL: usize = 2_000;
const BATCH: usize = 500;
/// Sent before the kill: three whole batches and part of a fourth, which is never committed.
const SENT_BEFORE_KILL: usize = 3 * BATCH + 200;

fn conversation(index: usize) -> pb::IngestRequest {
    pb::IngestRequest {
        workspace: String::new(),
        record: Some(pb::ingest_request::Record::Conversation(pb::Conversation {
            r#ref: reference("crash", &format!("c{index}")),
            title: format!("Conversation {index} about tracing"),
            body: format!("Spans and sampling in service {index}; context propagation."),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_767_225_600 + index as i64 * 60,
                nanos: 0,
            }),
            ..Default::default()
        })),
    }
}

async fn indexed_conversations(server: &Server) -> u64 {
    pb::server_service_client::ServerServiceClient::new(server.channel.clone())
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .expect("the server status")
        .into_inner()
        .workspaces
        .iter()
        .map(|workspace| workspace.conversations)
        .sum()
}

async fn stored(server: &Server, index: usize) -> bool {
    match server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("crash", &format!("c{index}")),
        })
        .await
    {
        Ok(_) => true,
        Err(status) if status.code() == tonic::Code::NotFound => false,
        Err(status) => panic!("reading c{index}: {status:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_during_ingest_keeps_every_committed_batch_and_a_resend_stores_each_record_once()
{
    let dir = crate::test_dir().expect("a temporary folder");
    let db = dir.path().join("crash.db");
    let server = Server::start_with(&db, &[("TRELLIS__SEMANTIC__MODE", "off")]).await;

    // Stream records without closing the stream, so the last partial batch stays in flight.
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let mut ingest = server.ingest();
    let call = tokio::spawn(async move { ingest.ingest(ReceiverStream::new(receiver)).await });
    for index in 0..SENT_BEFORE_KILL {
        sender
            .send(conversation(index))
            .await
            .expect("the server reads the stream");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let committed = loop {
        let indexed = indexed_conversations(&server).await;
        if indexed >= (3 * BATCH) as u64 {
            break indexed;
        }
        assert!(
            Instant::now() < deadline,
            "three batches were not committed within 60 s ({indexed} indexed)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        committed,
        (3 * BATCH) as u64,
        "the fourth batch is not complete, so it is not committed"
    );

    let mut server = server;
    server.child.kill().expect("SIGKILL is delivered");
    server.child.wait().expect("the server is gone");
    drop(server);
    let _ = call.await;
    drop(sender);

    let server = Server::start_with(&db, &[("TRELLIS__SEMANTIC__MODE", "off")]).await;
    assert_eq!(
        indexed_conversations(&server).await,
        committed,
        "every committed record survived the kill, and nothing more"
    );
    for index in 0..3 * BATCH {
        assert!(stored(&server, index).await, "c{index} was committed");
    }
    for index in 3 * BATCH..SENT_BEFORE_KILL {
        assert!(
            !stored(&server, index).await,
            "c{index} was never committed"
        );
    }

    // The client sends everything again: what was stored is unchanged, the rest is inserted.
    let response = server
        .ingest()
        .ingest(tokio_stream::iter((0..TOTAL).map(conversation)))
        .await
        .expect("the resend is accepted")
        .into_inner();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(response.unchanged, (3 * BATCH) as u64);
    assert_eq!(response.inserted, (TOTAL - 3 * BATCH) as u64);
    assert_eq!(response.updated, 0);
    assert_eq!(indexed_conversations(&server).await, TOTAL as u64);
}
