//! A local HTTP server that replays recorded HTTP exchanges (vcrpy cassettes, the YAML format
//! of Mastodon.py's test suite): each recorded GET, by path and query, answers with its
//! recorded status, headers and body, with the recorded host rewritten to the server's own
//! address. Requests nobody recorded answer 404 and are kept as misses for the test to check.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Deserialize;
use trellis_plugin_sdk::egress::{self, EgressPolicy};

/// One recorded answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Deserialize)]
struct Cassette {
    interactions: Vec<Interaction>,
}

#[derive(Debug, Deserialize)]
struct Interaction {
    request: Request,
    response: Response,
}

#[derive(Debug, Deserialize)]
struct Request {
    method: String,
    uri: String,
}

#[derive(Debug, Deserialize)]
struct Response {
    status: Status,
    #[serde(default)]
    headers: BTreeMap<String, Vec<String>>,
    body: Body,
}

#[derive(Debug, Deserialize)]
struct Status {
    code: u16,
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    string: String,
}

/// Headers worth replaying; the transport ones (length, encoding) are the server's own.
const REPLAYED_HEADERS: [&str; 4] = ["link", "retry-after", "x-ratelimit-reset", "content-type"];

/// `path?query` with the path's trailing slash dropped and the query's pairs sorted, so that
/// the same request matches however its parameters are ordered.
pub fn key(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let path = match path.trim_end_matches('/') {
        "" => "/",
        path => path,
    };
    let mut pairs: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
    pairs.sort_unstable();
    if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

/// `scheme://host[:port]` of a URL, and the rest.
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |at| after_scheme + at);
    (&url[..end], &url[end..])
}

/// The recorded GETs of a cassette by [`key`], the first answer of each, with the recorded
/// host replaced by `origin`.
pub fn load(path: &Path, origin: &str) -> BTreeMap<String, Exchange> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let cassette: Cassette = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not a cassette: {error}", path.display()));
    let mut routes = BTreeMap::new();
    for interaction in cassette.interactions {
        if !interaction.request.method.eq_ignore_ascii_case("GET") {
            continue;
        }
        let (recorded, path_and_query) = split_origin(&interaction.request.uri);
        let rewrite = |text: &str| text.replace(recorded, origin);
        let headers = interaction
            .response
            .headers
            .iter()
            .filter(|(name, _)| REPLAYED_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |value| (name.clone(), rewrite(value)))
            })
            .collect();
        routes.entry(key(path_and_query)).or_insert(Exchange {
            status: interaction.response.status.code,
            headers,
            body: rewrite(&interaction.response.body.string),
        });
    }
    routes
}

/// The replaying server, stopped when dropped.
pub struct Replay {
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    routes: Arc<Mutex<BTreeMap<String, Exchange>>>,
    requests: Arc<Mutex<Vec<String>>>,
    misses: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Replay {
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a local port"));
        let port = server.server_addr().to_ip().expect("an ip address").port();
        let routes: Arc<Mutex<BTreeMap<String, Exchange>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let misses: Arc<Mutex<Vec<String>>> = Arc::default();
        let thread = {
            let (server, routes, requests, misses) = (
                Arc::clone(&server),
                Arc::clone(&routes),
                Arc::clone(&requests),
                Arc::clone(&misses),
            );
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let url = request.url().to_owned();
                    requests.lock().unwrap().push(url.clone());
                    let found = routes.lock().unwrap().get(&key(&url)).cloned();
                    let exchange = found.unwrap_or_else(|| {
                        misses.lock().unwrap().push(url.clone());
                        Exchange {
                            status: 404,
                            headers: Vec::new(),
                            body: format!(r#"{{"error":"not recorded: {url}"}}"#),
                        }
                    });
                    let mut response = tiny_http::Response::from_string(exchange.body)
                        .with_status_code(exchange.status);
                    for (name, value) in &exchange.headers {
                        response.add_header(
                            tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                                .expect("a valid header"),
                        );
                    }
                    let _ = request.respond(response);
                }
            })
        };
        Self {
            origin: format!("http://127.0.0.1:{port}"),
            routes,
            requests,
            misses,
            server,
            thread: Some(thread),
        }
    }

    /// `host:port` of the server, as handles are qualified with it.
    pub fn host(&self) -> &str {
        self.origin.trim_start_matches("http://")
    }

    /// The egress policy that lets a connector reach this server (on loopback), and no other
    /// non-public address.
    pub fn policy(&self) -> EgressPolicy {
        EgressPolicy::allowing([self.host()])
    }

    /// [`Self::policy`] as this thread's current policy, while the guard lives.
    pub fn allowed(&self) -> egress::PolicyGuard {
        egress::enter(self.policy())
    }

    /// Serves the recorded GETs of `cassettes` from now on, instead of what it served before.
    pub fn serve(&self, cassettes: &[&Path]) {
        let mut routes = BTreeMap::new();
        for cassette in cassettes {
            for (key, exchange) in load(cassette, &self.origin) {
                routes.entry(key).or_insert(exchange);
            }
        }
        *self.routes.lock().unwrap() = routes;
    }

    /// Also answers `path_and_query` with `exchange`.
    pub fn add(&self, path_and_query: &str, exchange: Exchange) {
        self.routes
            .lock()
            .unwrap()
            .insert(key(path_and_query), exchange);
    }

    /// What is served for `path_and_query`.
    pub fn exchange(&self, path_and_query: &str) -> Option<Exchange> {
        self.routes
            .lock()
            .unwrap()
            .get(&key(path_and_query))
            .cloned()
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests nobody recorded.
    pub fn misses(&self) -> Vec<String> {
        self.misses.lock().unwrap().clone()
    }
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("origin", &self.origin)
            .finish()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
