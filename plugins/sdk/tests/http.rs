//! The SDK's HTTP agent under the egress policy, against local servers only (nothing leaves the
//! machine: every refused address is refused before a connection is tried).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use trellis_plugin_sdk::ErrorKind;
use trellis_plugin_sdk::egress::{self, EgressPolicy};
use trellis_plugin_sdk::http::{self, agent, agent_with, describe, refusal, request_error, ureq};

const PEER_SECRET: &str = "internal-service-token-7d41";

/// A local server: `/` answers 200 "hello", `/redirect` answers 302 to `location`, `/fail`
/// answers 500 with a body that must never reach an error text; counts the requests.
struct Local {
    port: u16,
    requests: Arc<AtomicUsize>,
}

fn serve(location: Option<String>) -> Local {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = match (request.url(), &location) {
                ("/redirect", Some(location)) => tiny_http::Response::from_string("moved")
                    .with_status_code(302)
                    .with_header(
                        tiny_http::Header::from_bytes("Location", location.as_bytes()).unwrap(),
                    ),
                ("/fail", _) => {
                    tiny_http::Response::from_string(format!("database down: {PEER_SECRET}"))
                        .with_status_code(500)
                }
                _ => tiny_http::Response::from_string("hello"),
            };
            let _ = request.respond(response);
        }
    });
    Local { port, requests }
}

type Builder = ureq::config::ConfigBuilder<ureq::typestate::AgentScope>;

fn quick(config: Builder) -> Builder {
    config.timeout_global(Some(Duration::from_secs(10)))
}

#[test]
fn a_loopback_address_is_refused_by_default_and_reached_when_allowed() {
    let local = serve(None);
    let url = format!("http://127.0.0.1:{}/", local.port);
    let error = agent_with(&EgressPolicy::default(), quick)
        .get(&url)
        .call()
        .unwrap_err();
    let refused = refusal(&error).expect("the policy refused it");
    assert_eq!(refused.kind, "loopback");
    assert_eq!(local.requests.load(Ordering::SeqCst), 0, "nothing was sent");
    let text = describe(&error);
    assert!(text.contains("[egress] allow"), "{text}");
    assert!(text.contains("allow_private = true"), "{text}");
    let error = request_error("feeds[0]", &url, &error);
    assert_eq!(error.kind, ErrorKind::Config);
    assert_eq!(error.field.as_deref(), Some("feeds[0]"));

    let mut answer = agent_with(&EgressPolicy::allowing_private(), quick)
        .get(&url)
        .call()
        .expect("allowed");
    assert_eq!(answer.body_mut().read_to_string().unwrap(), "hello");
    let mut answer = agent_with(
        &EgressPolicy::allowing([format!("127.0.0.1:{}", local.port)]),
        quick,
    )
    .get(&url)
    .call()
    .expect("allowed by address and port");
    assert_eq!(answer.body_mut().read_to_string().unwrap(), "hello");
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_like_the_address() {
    let local = serve(None);
    // localhost resolves (through /etc/hosts) to 127.0.0.1 and ::1: no DNS query leaves.
    for url in [
        format!("http://localhost:{}/", local.port),
        format!("http://[::1]:{}/", local.port),
        format!("http://[::ffff:127.0.0.1]:{}/", local.port),
    ] {
        let error = agent_with(&EgressPolicy::default(), quick)
            .get(&url)
            .call()
            .unwrap_err();
        assert_eq!(
            refusal(&error).map(|refused| refused.kind),
            Some("loopback"),
            "{url}: {error}"
        );
    }
    assert_eq!(local.requests.load(Ordering::SeqCst), 0);
    let allowed = EgressPolicy::allowing([format!("localhost:{}", local.port)]);
    agent_with(&allowed, quick)
        .get(&format!("http://localhost:{}/", local.port))
        .call()
        .expect("localhost allowed by name");
}

#[test]
fn a_redirect_to_a_private_address_is_refused_at_the_hop_without_connecting() {
    let target = serve(None);
    for location in [
        format!("http://localhost:{}/", target.port),
        format!("http://127.0.0.1:{}/", target.port),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let first = serve(Some(location.clone()));
        // The first server, and only it, is allowed.
        let policy = EgressPolicy::allowing([format!("127.0.0.1:{}", first.port)]);
        let started = std::time::Instant::now();
        let error = agent_with(&policy, quick)
            .get(&format!("http://127.0.0.1:{}/redirect", first.port))
            .call()
            .unwrap_err();
        assert!(refusal(&error).is_some(), "{location}: {error}");
        assert_eq!(first.requests.load(Ordering::SeqCst), 1, "{location}");
        // Refused before any connection was tried (10.0.0.1 would have waited for a timeout).
        assert!(started.elapsed() < Duration::from_secs(5), "{location}");
    }
    assert_eq!(
        target.requests.load(Ordering::SeqCst),
        0,
        "the private target was never reached"
    );
}

#[test]
fn the_agent_takes_the_current_policy_of_the_call() {
    let local = serve(None);
    let url = format!("http://127.0.0.1:{}/", local.port);
    assert!(
        agent(quick).get(&url).call().is_err(),
        "refused without a policy"
    );
    let _policy = egress::enter(EgressPolicy::allowing_private());
    agent(quick)
        .get(&url)
        .call()
        .expect("allowed by the current policy");
}

#[test]
fn error_texts_never_quote_what_the_peer_answered() {
    // A location above the root: ureq refuses to follow it before resolving anything.
    let first = serve(Some(format!("../../{PEER_SECRET}")));
    let policy = EgressPolicy::allowing_private();
    // A status treated as an error: the status, not the body.
    let error = agent_with(&policy, |config| quick(config).http_status_as_error(true))
        .get(&format!("http://127.0.0.1:{}/fail", first.port))
        .call()
        .unwrap_err();
    let text = request_error("base_url", "http://forum", &error).to_string();
    assert!(text.contains("500"), "{text}");
    assert!(!text.contains(PEER_SECRET), "{text}");
    // A redirect to a location that is not a URL: ureq's own text would quote it.
    let error = agent_with(&policy, quick)
        .get(&format!("http://127.0.0.1:{}/redirect", first.port))
        .call()
        .unwrap_err();
    assert!(
        error.to_string().contains(PEER_SECRET),
        "ureq's own text quotes it: {error}"
    );
    let text = describe(&error);
    assert!(!text.contains(PEER_SECRET), "{text}");
    // JSON of the wrong shape: serde quotes the value it did not expect.
    let wrong: Result<u64, _> = serde_json::from_str(&format!("\"{PEER_SECRET}\""));
    let text = http::describe_json_error(&wrong.unwrap_err());
    assert!(!text.contains(PEER_SECRET), "{text}");
}
