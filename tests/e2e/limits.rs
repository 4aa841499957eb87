//! Bounds on what a caller sends, over real gRPC: times outside 1970 to 9999 are refused naming
//! their field (never wrapped into another time), a message that does not decode is the caller's
//! INVALID_ARGUMENT (not the server's INTERNAL), a streamed ingest that breaks off stores what
//! came before and says exactly how far it got, and a page of strategy versions fits in a
//! message however large the strategies.

use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::{conversation, example_strategy_pb, fresh, ingest, pb, reference, violations};

/// Sends messages as the bytes given (some of which are not valid protobuf) and reads the
/// answer as the message `T`.
struct RawCodec<T>(std::marker::PhantomData<T>);

struct RawEncoder;
struct MessageDecoder<T>(std::marker::PhantomData<T>);

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<T: prost::Message + Default + Send + 'static> Decoder for MessageDecoder<T> {
    type Item = T;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<T>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        T::decode(bytes)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}

impl<T: prost::Message + Default + Send + 'static> Codec for RawCodec<T> {
    type Encode = Vec<u8>;
    type Decode = T;
    type Encoder = RawEncoder;
    type Decoder = MessageDecoder<T>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> MessageDecoder<T> {
        MessageDecoder(std::marker::PhantomData)
    }
}

/// Bytes that are not an `IngestRequest`: field 1 (workspace, a string) holding invalid UTF-8.
const NOT_A_MESSAGE: &[u8] = &[0x0a, 0x02, 0xc3, 0x28];

async fn raw_grpc(server: &super::Server) -> tonic::client::Grpc<tonic::transport::Channel> {
    let mut grpc = tonic::client::Grpc::new(server.channel.clone());
    grpc.ready().await.expect("the channel is ready");
    grpc
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_does_not_decode_is_invalid_argument() {
    let (_dir, server) = fresh().await;
    let mut grpc = raw_grpc(&server).await;
    let status = grpc
        .unary::<Vec<u8>, pb::GetStrategyResponse, _>(
            tonic::Request::new(NOT_A_MESSAGE.to_vec()),
            "/trellis.v1.StrategyService/GetStrategy".parse().unwrap(),
            RawCodec::<pb::GetStrategyResponse>(std::marker::PhantomData),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("decode"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_stream_that_breaks_off_stores_what_came_before_and_says_how_far_it_got() {
    let (_dir, server) = fresh().await;
    // 700 good records (more than one batch of 500), one refused by the rules among them, then
    // a message that does not decode, then records that must not be stored.
    let mut messages: Vec<Vec<u8>> = (0..700)
        .map(|n| {
            let title = if n == 650 { "" } else { "a thread" };
            let body = if n == 650 { "" } else { "about tracing" };
            conversation("forum", &format!("c{n}"), title, body).encode_to_vec()
        })
        .collect();
    messages.push(NOT_A_MESSAGE.to_vec());
    messages.push(conversation("forum", "after", "a thread", "after the break").encode_to_vec());
    let mut grpc = raw_grpc(&server).await;
    let status = grpc
        .client_streaming::<_, Vec<u8>, pb::IngestResponse, _>(
            tonic::Request::new(tokio_stream::iter(messages)),
            "/trellis.v1.IngestService/Ingest".parse().unwrap(),
            RawCodec::<pb::IngestResponse>(std::marker::PhantomData),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let found = violations(&status);
    assert_eq!(found[0].0, "records[700]", "{found:?}");
    assert!(found[0].1.contains("resend from position 700"), "{found:?}");
    assert!(found[0].1.contains("699 inserted"), "{found:?}");
    assert!(
        found.iter().any(|(field, _)| field == "records[650].title"),
        "the refusal before the break is reported: {found:?}"
    );
    // What came before the break is stored, including the 200 of the open batch.
    for id in ["c0", "c499", "c500", "c699"] {
        server
            .ingest()
            .get_conversation(pb::GetConversationRequest {
                workspace: String::new(),
                r#ref: reference("forum", id),
            })
            .await
            .unwrap_or_else(|status| panic!("{id} is stored: {status:?}"));
    }
    let after = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: reference("forum", "after"),
        })
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn times_outside_1970_to_9999_are_refused_naming_the_field() {
    let (_dir, server) = fresh().await;
    let at = |seconds: i64| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let with_time = |id: &str, seconds: i64| {
        let mut message = conversation("forum", id, "a thread", "about tracing");
        if let Some(pb::ingest_request::Record::Conversation(conversation)) = &mut message.record {
            conversation.created_at = at(seconds);
        }
        message
    };
    let answer = ingest(
        &server,
        vec![
            // i64::MAX seconds wrapped to -1 ms before.
            with_time("wraps", i64::MAX),
            with_time("year-10000", 253_402_300_800),
            with_time("before-1970", -86_400),
            with_time("fine", 1_700_000_000),
        ],
    )
    .await;
    let refused: Vec<(u64, &str)> = answer
        .errors
        .iter()
        .map(|error| (error.position, error.field.as_str()))
        .collect();
    assert_eq!(
        refused,
        [(0, "created_at"), (1, "created_at"), (2, "created_at")],
        "{answer:?}"
    );
    assert_eq!(answer.inserted, 1);

    super::put_example_strategy(&server).await;
    let status = server
        .insight()
        .suggest_discussions(pb::SuggestDiscussionsRequest {
            workspace: String::new(),
            person: reference("forum", "someone"),
            as_of: at(i64::MAX / 2),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violations(&status)[0].0, "as_of");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_strategy_versions_fits_in_a_message_however_large_the_strategies() {
    let (_dir, server) = fresh().await;
    // Six versions of about 900 KB each (the limit is 1 MiB of text): more than the 8 MiB a
    // message may hold, together.
    let mut strategy = example_strategy_pb();
    let per_facet = 900 * 1024 / strategy.facets.len();
    let phrase = |n: usize| format!("phrase {n} {}", "of a long example ".repeat(50));
    for facet in &mut strategy.facets {
        let items = (per_facet / phrase(0).len()).min(200);
        facet.examples = (0..items.min(100)).map(phrase).collect();
        facet.keywords = (100..100 + items.saturating_sub(100)).map(phrase).collect();
    }
    assert!(
        strategy.encoded_len() > 800 * 1024,
        "{}",
        strategy.encoded_len()
    );
    for _ in 0..6 {
        server
            .strategies()
            .put_strategy(pb::PutStrategyRequest {
                workspace: String::new(),
                strategy: Some(strategy.clone()),
            })
            .await
            .expect("a large strategy within the limits is accepted");
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .strategies()
            .list_strategy_versions(pb::ListStrategyVersionsRequest {
                workspace: String::new(),
                page_size: 20,
                page_token: page_token.clone(),
            })
            .await
            .expect("a page fits in a message")
            .into_inner();
        assert!(!page.strategy_versions.is_empty());
        assert!(
            page.encoded_len() <= 5 * 1024 * 1024,
            "{}",
            page.encoded_len()
        );
        seen.extend(page.strategy_versions.iter().map(|version| version.version));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1], "every version once, newest first");

    // Past the limits: each refusal names the field and the limit.
    let mut too_many = example_strategy_pb();
    too_many.exclusions = (0..201).map(|n| format!("topic {n}")).collect();
    too_many.facets[0].name = "\u{200B}\u{200D}".into();
    let status = server
        .strategies()
        .put_strategy(pb::PutStrategyRequest {
            workspace: String::new(),
            strategy: Some(too_many),
        })
        .await
        .unwrap_err();
    let found = violations(&status);
    assert!(
        found
            .iter()
            .any(|(field, text)| field == "strategy.exclusions" && text.contains("limit is 200")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(field, text)| field == "strategy.facets[0].name" && text.contains("zero-width")),
        "{found:?}"
    );
}
