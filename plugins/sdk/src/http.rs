//! HTTP for connectors, under the host's outbound policy (feature `http`).
//!
//! [`agent`] is the blocking [`ureq`] agent a connector fetches with. It differs from one made
//! with `ureq::Agent::config_builder()` in one way: the addresses every connection goes to —
//! after DNS, for the first request and for every redirect, for names and address literals
//! alike — pass through the policy of [`crate::egress`] first, so a source cannot point the
//! server at its own loopback services, its cloud's metadata endpoint or the private network
//! unless the operator allows it. It also ignores the `HTTP_PROXY` family of variables: a proxy
//! resolves names where the policy cannot see them.
//!
//! What a connector says when a request fails matters as much: a tenant who cannot reach an
//! internal service must not read its answers in error messages. [`request_error`],
//! [`describe`] and [`describe_json_error`] say what went wrong without quoting anything the
//! peer sent; keep the URL and the status code in your own messages, never the body.
//!
//! The policy is enforced inside the plugin's process, by this agent. A plugin that builds an
//! HTTP client of its own is not held to it; the process boundary of isolated sources is what
//! confines a plugin that is not trusted.

use ureq::config::{Config, ConfigBuilder};
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::egress::{self, CheckedPolicy, EgressPolicy, EgressRefused};
use crate::error::ConnectorError;

pub use ureq;

/// An agent under the current call's policy ([`egress::current`]); `configure` sets
/// everything else (timeouts, user agent, status codes as errors or not):
///
/// ```no_run
/// use std::time::Duration;
/// let agent = trellis_plugin_sdk::http::agent(|config| {
///     config
///         .timeout_global(Some(Duration::from_secs(30)))
///         .http_status_as_error(false)
/// });
/// ```
///
/// Build it inside a call of the connector (`check`, `discover`, `open_read`, `next_batch`),
/// where the host's policy is current, and keep it for the read.
pub fn agent(
    configure: impl FnOnce(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>,
) -> ureq::Agent {
    agent_with(&egress::current(), configure)
}

/// An agent under `policy`, for tests and tools outside a connector call.
pub fn agent_with(
    policy: &EgressPolicy,
    configure: impl FnOnce(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>,
) -> ureq::Agent {
    let config = configure(ureq::Agent::config_builder())
        // A proxy would resolve the names itself, out of the policy's sight.
        .proxy(None)
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        PolicyResolver {
            policy: policy.lenient(),
            lookup: DefaultResolver::default(),
        },
    )
}

/// Resolves as ureq does, then keeps only the addresses the policy permits. ureq asks it for
/// every connection, redirects included, and connects only to what it returns.
#[derive(Debug)]
struct PolicyResolver {
    policy: CheckedPolicy,
    lookup: DefaultResolver,
}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = self.lookup.resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or_default();
        let mut permitted = self.empty();
        let mut refused = None;
        for address in &found {
            match self.policy.permits(host, address.port(), address.ip()) {
                Ok(()) => permitted.push(*address),
                Err(refusal) => {
                    refused.get_or_insert(refusal);
                }
            }
        }
        if !permitted.is_empty() {
            return Ok(permitted);
        }
        Err(match refused {
            Some(refusal) => ureq::Error::Other(Box::new(refusal)),
            None => ureq::Error::HostNotFound,
        })
    }
}

/// The policy's refusal inside a ureq error, if that is what it is.
pub fn refusal(error: &ureq::Error) -> Option<&EgressRefused> {
    match error {
        ureq::Error::Other(inner) => inner.downcast_ref::<EgressRefused>(),
        ureq::Error::Io(inner) => inner
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .and_then(refusal),
        _ => None,
    }
}

/// What went wrong with a request, in words that quote nothing the peer sent (ureq's own texts
/// can carry a header or a location the peer answered).
pub fn describe(error: &ureq::Error) -> String {
    if let Some(refused) = refusal(error) {
        return refused.to_string();
    }
    match error {
        ureq::Error::StatusCode(status) => format!("the answer was status {status}"),
        ureq::Error::Io(inner) => format!("a network error: {}", inner.kind()),
        ureq::Error::Timeout(_) => "no answer in time".to_owned(),
        ureq::Error::HostNotFound => "the host name does not resolve".to_owned(),
        ureq::Error::ConnectionFailed => "the connection failed".to_owned(),
        ureq::Error::TooManyRedirects => "too many redirects".to_owned(),
        ureq::Error::RedirectFailed => "a redirect could not be followed".to_owned(),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            "the URL, or one the server redirected to, is not valid".to_owned()
        }
        ureq::Error::Protocol(_) => "the answer is not valid HTTP".to_owned(),
        ureq::Error::BodyExceedsLimit(limit) => {
            format!("the answer is larger than {limit} bytes")
        }
        ureq::Error::LargeResponseHeader(_, limit) => {
            format!("the answer's headers are larger than {limit} bytes")
        }
        ureq::Error::Tls(_) | ureq::Error::TlsRequired => {
            "the TLS handshake failed (the certificate, or TLS itself)".to_owned()
        }
        ureq::Error::RequireHttpsOnly(_) => "only https is allowed".to_owned(),
        ureq::Error::Decompress(_, _) => "the answer does not decompress".to_owned(),
        _ => "the request failed".to_owned(),
    }
}

/// The connector error for a request to `url` (the config's `field`) that failed before an
/// answer: a config error naming the setting when the policy refused it, else transient.
pub fn request_error(field: &str, url: &str, error: &ureq::Error) -> ConnectorError {
    if let Some(refused) = refusal(error) {
        return ConnectorError::config(field, format!("{url}: {refused}"));
    }
    let prefix = if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    };
    ConnectorError::transient(format!(
        "{prefix}cannot fetch {url} ({}); retry later",
        describe(error)
    ))
}

/// Why an answer is not the JSON expected, without quoting it (serde's own text quotes the
/// values it did not expect).
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let at = format!("line {}, column {}", error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Io => "it could not be read to the end".to_owned(),
        serde_json::error::Category::Eof => format!("the JSON ends early, at {at}"),
        serde_json::error::Category::Syntax => format!("it is not JSON (at {at})"),
        serde_json::error::Category::Data => {
            format!("the JSON is not of the expected shape (at {at})")
        }
    }
}
