//! Where connectors may send requests: the operator's outbound policy, one for the whole server.
//!
//! A source's config is written by a tenant, and a connector fetches what the config names. Left
//! alone, `http://127.0.0.1:8500/` or `http://169.254.169.254/` in a config would make the server
//! fetch its own loopback services or its cloud's metadata endpoint for whoever holds a write
//! key. So every address a connector connects to is checked against one [`EgressPolicy`]:
//! loopback, unspecified, link-local, private, shared (carrier-grade NAT), unique-local,
//! multicast, broadcast and reserved ranges, v4 and v6 (including the IPv6 forms that embed an
//! IPv4 address), are refused unless the operator allows them, by name or network
//! (`[egress] allow`) or all at once (`[egress] allow_private`).
//!
//! The check is made on the addresses a name resolves to, at connection time, for every
//! connection (so for every redirect too): a name that resolves to 127.0.0.1 is refused like the
//! literal, and what is checked is what is connected to. The HTTP agent of [`crate::http`] does
//! it; this module holds the policy itself, which the host uses as well, and so carries no HTTP
//! client.
//!
//! The host hands the policy to the plugin inside every call's config, under the reserved key
//! [`HOST_KEY`] ([`HostSettings`]); the SDK takes it out before the config is validated and
//! deserialised, and makes it the [`current`] policy for the duration of the call. A tenant
//! cannot set it: the host replaces the key in every config it sends, and a config that gives it
//! is refused when the source is saved.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The top-level config key reserved for what the host hands the plugin ([`HostSettings`]).
pub const HOST_KEY: &str = "$trellis";

/// What the host hands the plugin with every call, under [`HOST_KEY`] of the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettings {
    /// Where the plugin may connect to.
    #[serde(default)]
    pub egress: EgressPolicy,
}

impl HostSettings {
    /// Puts these settings in `config` (an object) under [`HOST_KEY`], replacing whatever was
    /// there: the host's side.
    pub fn put(&self, config: &mut Value) {
        if let Value::Object(object) = config {
            let settings = serde_json::to_value(self).unwrap_or(Value::Null);
            object.insert(HOST_KEY.to_owned(), settings);
        }
    }

    /// Takes the settings out of `config`: the plugin's side. `Ok(None)` when the host gave
    /// none; an error when they do not parse (a host of another version).
    pub fn take(config: &mut Value) -> Result<Option<Self>, String> {
        let Some(value) = config
            .as_object_mut()
            .and_then(|object| object.remove(HOST_KEY))
        else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|error| format!("the host's settings under {HOST_KEY} do not parse: {error}"))
    }
}

/// The outbound policy: which addresses outside the public internet connectors may reach.
/// The default refuses them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressPolicy {
    /// Lets connectors reach every loopback, private, link-local and other non-public address.
    #[serde(default)]
    pub allow_private: bool,
    /// What connectors may reach even so: host names as a URL gives them
    /// (`forum.intranet.example`), addresses (`10.1.2.3`, `fd00::5`) and networks
    /// (`10.20.0.0/16`, `fd00::/8`), each optionally with a port (`localhost:8080`,
    /// `127.0.0.1:8080`, `[::1]:8080`; not on networks).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// One parsed `allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Host {
        name: String,
        port: Option<u16>,
    },
    Network {
        network: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl Allowed {
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let fix = "write a host name, an address or a network, e.g. \"forum.intranet.example\", \"10.1.2.3:8080\" or \"10.20.0.0/16\"";
        if entry.is_empty() {
            return Err(format!("an empty entry; {fix}"));
        }
        if let Some((network, prefix)) = entry.split_once('/') {
            let network = network.trim_start_matches('[').trim_end_matches(']');
            let network: IpAddr = network
                .parse()
                .map_err(|_| format!("{entry:?} is not a network; {fix}"))?;
            let longest = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|prefix| *prefix <= longest)
                .ok_or_else(|| {
                    format!("{entry:?}: the prefix length must be from 0 to {longest}")
                })?;
            // Addresses are compared in their canonical form: ::ffff:a.b.c.d as a.b.c.d.
            let canonical = network.to_canonical();
            let (network, prefix) = if network.is_ipv6() && canonical.is_ipv4() && prefix >= 96 {
                (canonical, prefix - 96)
            } else {
                (network, prefix)
            };
            return Ok(Allowed::Network {
                network,
                prefix,
                port: None,
            });
        }
        let address = |address: IpAddr, port: Option<u16>| {
            let address = address.to_canonical();
            Allowed::Network {
                network: address,
                prefix: if address.is_ipv4() { 32 } else { 128 },
                port,
            }
        };
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Ok(address(ip, None));
        }
        let port_of = |text: &str| {
            text.parse::<u16>()
                .map_err(|_| format!("{entry:?}: {text:?} is not a port"))
        };
        if let Some(rest) = entry.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{entry:?} opens a [ it does not close; {fix}"))?;
            let ip: Ipv6Addr = inside
                .parse()
                .map_err(|_| format!("{entry:?}: {inside:?} is not an IPv6 address; {fix}"))?;
            let port = match after {
                "" => None,
                after => Some(port_of(after.strip_prefix(':').ok_or_else(|| {
                    format!("{entry:?}: write the port after a colon, e.g. [::1]:8080")
                })?)?),
            };
            return Ok(address(IpAddr::V6(ip), port));
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port_of(port)?)),
            None => (entry, None),
        };
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(address(IpAddr::V4(ip), port));
        }
        let name = normalise_host(host);
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            });
        if !valid {
            return Err(format!("{entry:?} is not a host name; {fix}"));
        }
        Ok(Allowed::Host { name, port })
    }

    fn matches(&self, host: &str, port: u16, address: IpAddr) -> bool {
        match self {
            Allowed::Host {
                name,
                port: allowed_port,
            } => name == host && allowed_port.is_none_or(|allowed| allowed == port),
            Allowed::Network {
                network,
                prefix,
                port: allowed_port,
            } => {
                allowed_port.is_none_or(|allowed| allowed == port)
                    && in_network(address, *network, *prefix)
            }
        }
    }
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// A host as a URL gives it, for comparing: lowercase, without IPv6 brackets or a final dot.
fn normalise_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A connection the policy refuses. Its text names the host as the config gave it and the kind
/// of address, never anything the peer said (it was never asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRefused {
    /// The host as the URL gives it.
    pub host: String,
    /// The kind of address, e.g. `loopback` or `private`.
    pub kind: &'static str,
    /// The host is an address itself, not a name.
    literal: bool,
}

impl std::fmt::Display for EgressRefused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.literal { "is" } else { "resolves to" };
        // Every kind starts with a consonant sound but this one.
        let article = if self.kind == "unspecified" {
            "an"
        } else {
            "a"
        };
        write!(
            formatter,
            "refused by the egress policy: {host} {verb} {article} {kind} address, which connectors may not reach; an operator can allow it with [egress] allow = [\"{host}\"] or allow_private = true",
            host = self.host,
            kind = self.kind,
        )
    }
}

impl std::error::Error for EgressRefused {}

/// An [`EgressPolicy`] with its `allow` entries parsed, ready to check addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPolicy {
    allow_private: bool,
    allow: Vec<Allowed>,
}

impl EgressPolicy {
    /// A policy that lets connectors reach every address: for tests against local servers, and
    /// for operators who put Trellis where nothing private is within reach.
    pub fn allowing_private() -> Self {
        Self {
            allow_private: true,
            allow: Vec::new(),
        }
    }

    /// A policy that refuses non-public addresses except `allow`.
    pub fn allowing<S: Into<String>>(allow: impl IntoIterator<Item = S>) -> Self {
        Self {
            allow_private: false,
            allow: allow.into_iter().map(Into::into).collect(),
        }
    }

    /// The policy with its entries parsed; the error names the first entry that does not parse
    /// and how to write it.
    pub fn checked(&self) -> Result<CheckedPolicy, String> {
        let allow = self
            .allow
            .iter()
            .map(|entry| Allowed::parse(entry))
            .collect::<Result<_, _>>()?;
        Ok(CheckedPolicy {
            allow_private: self.allow_private,
            allow,
        })
    }

    /// The policy with the entries that parse (the host checks them when it starts; one that
    /// does not parse allows nothing).
    pub fn lenient(&self) -> CheckedPolicy {
        CheckedPolicy {
            allow_private: self.allow_private,
            allow: self
                .allow
                .iter()
                .filter_map(|entry| Allowed::parse(entry).ok())
                .collect(),
        }
    }
}

impl CheckedPolicy {
    /// Whether a connection to `address`, port `port`, for a URL whose host is `host` (a name
    /// or an address, as the URL gives it), is allowed.
    pub fn permits(&self, host: &str, port: u16, address: IpAddr) -> Result<(), EgressRefused> {
        let address = address.to_canonical();
        let Some(kind) = non_public(address) else {
            return Ok(());
        };
        if self.allow_private {
            return Ok(());
        }
        let host = normalise_host(host);
        if self
            .allow
            .iter()
            .any(|allowed| allowed.matches(&host, port, address))
        {
            return Ok(());
        }
        Err(EgressRefused {
            literal: host.parse::<IpAddr>().is_ok(),
            host,
            kind,
        })
    }
}

/// The kind of a non-public address (loopback, private...), or `None` for a public one.
/// IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses are judged by the IPv4 address
/// they carry.
pub fn non_public(address: IpAddr) -> Option<&'static str> {
    match address.to_canonical() {
        IpAddr::V4(address) => non_public_v4(address),
        IpAddr::V6(address) => non_public_v6(address),
    }
}

fn non_public_v4(address: Ipv4Addr) -> Option<&'static str> {
    match address.octets() {
        [0, ..] => Some("unspecified"),
        [10, ..] | [192, 168, ..] => Some("private"),
        [172, second, ..] if second & 0xf0 == 16 => Some("private"),
        [100, second, ..] if second & 0xc0 == 64 => Some("shared (carrier-grade NAT)"),
        [127, ..] => Some("loopback"),
        [169, 254, ..] => Some("link-local"),
        [192, 0, 0, _] => Some("reserved"),
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Some("documentation"),
        [198, second, ..] if second & 0xfe == 18 => Some("benchmarking"),
        [255, 255, 255, 255] => Some("broadcast"),
        [first, ..] if first & 0xf0 == 224 => Some("multicast"),
        [first, ..] if first >= 240 => Some("reserved"),
        _ => None,
    }
}

fn non_public_v6(address: Ipv6Addr) -> Option<&'static str> {
    if address.is_unspecified() {
        return Some("unspecified");
    }
    if address.is_loopback() {
        return Some("loopback");
    }
    let segments = address.segments();
    let octets = address.octets();
    let embedded =
        |at: usize| Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
    // ::a.b.c.d, the deprecated IPv4-compatible form: never routed, whatever it carries.
    if segments[..6] == [0; 6] {
        return Some(non_public_v4(embedded(12)).unwrap_or("reserved"));
    }
    // 64:ff9b::/96, NAT64: a gateway connects to the IPv4 address it carries.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(embedded(12));
    }
    // 64:ff9b:1::/48, NAT64 for local use.
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Some("private");
    }
    // 2002::/16, 6to4: the IPv4 address of the relay follows the prefix.
    if segments[0] == 0x2002 {
        return non_public_v4(embedded(2));
    }
    match segments[0] {
        0x0100 if segments[1..4] == [0, 0, 0] => Some("reserved"),
        0x2001 if segments[1] == 0x0db8 => Some("documentation"),
        first if first & 0xfe00 == 0xfc00 => Some("unique-local"),
        first if first & 0xffc0 == 0xfe80 => Some("link-local"),
        first if first & 0xffc0 == 0xfec0 => Some("site-local"),
        first if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

thread_local! {
    static CURRENT: RefCell<Option<EgressPolicy>> = const { RefCell::new(None) };
}

/// The policy of the call running on this thread: the one the host handed the plugin with the
/// call's config; without one (a test calling a connector directly, a host that sent none), the
/// default, which refuses every non-public address.
pub fn current() -> EgressPolicy {
    CURRENT.with(|current| current.borrow().clone().unwrap_or_default())
}

/// Makes `policy` this thread's [`current`] policy until the returned guard is dropped, when
/// the one before comes back. The SDK does it around every call into a connector; a test that
/// calls a connector directly against a local server does it too:
///
/// ```
/// use trellis_plugin_sdk::egress::{self, EgressPolicy};
/// let _policy = egress::enter(EgressPolicy::allowing(["127.0.0.1"]));
/// assert!(!egress::current().allow_private);
/// ```
pub fn enter(policy: EgressPolicy) -> PolicyGuard {
    let previous = CURRENT.with(|current| current.replace(Some(policy)));
    PolicyGuard {
        previous,
        _on_this_thread: PhantomData,
    }
}

/// Puts the previous policy back when dropped; see [`enter`].
#[derive(Debug)]
#[must_use = "the policy applies only while the guard lives"]
pub struct PolicyGuard {
    previous: Option<EgressPolicy>,
    /// The guard restores this thread's policy, so it stays on this thread.
    _on_this_thread: PhantomData<*const ()>,
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(policy: &EgressPolicy, host: &str, port: u16, address: &str) -> bool {
        policy
            .checked()
            .unwrap()
            .permits(host, port, address.parse().unwrap())
            .is_err()
    }

    #[test]
    fn every_non_public_range_is_refused_by_default_and_public_addresses_pass() {
        let policy = EgressPolicy::default();
        for address in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            // IPv4 inside IPv6: mapped, compatible, NAT64, 6to4.
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
        ] {
            assert!(refused(&policy, "h", 80, address), "{address} is refused");
        }
        for address in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
        ] {
            assert!(!refused(&policy, "h", 80, address), "{address} is public");
        }
    }

    #[test]
    fn the_operator_allows_by_name_address_network_or_everything() {
        assert!(!refused(
            &EgressPolicy::allowing_private(),
            "h",
            1,
            "127.0.0.1"
        ));
        let policy = EgressPolicy::allowing([
            "Forum.Intranet.Example.",
            "10.20.0.0/16",
            "fd00::/8",
            "127.0.0.1:8080",
            "[::1]:8443",
            "localhost:9000",
        ]);
        assert!(!refused(&policy, "forum.intranet.example", 443, "10.9.9.9"));
        assert!(!refused(&policy, "x", 80, "10.20.3.4"));
        assert!(refused(&policy, "x", 80, "10.21.3.4"));
        assert!(!refused(&policy, "x", 80, "fd00::7"));
        assert!(!refused(&policy, "127.0.0.1", 8080, "127.0.0.1"));
        assert!(refused(&policy, "127.0.0.1", 8081, "127.0.0.1"));
        assert!(!refused(&policy, "[::1]", 8443, "::1"));
        assert!(!refused(&policy, "localhost", 9000, "127.0.0.1"));
        assert!(refused(&policy, "localhost", 9001, "127.0.0.1"));
        // An allowed name does not allow what another name resolves to.
        assert!(refused(&policy, "other.example", 443, "10.9.9.9"));
    }

    #[test]
    fn entries_that_do_not_parse_are_named() {
        for entry in [
            "",
            "10.0.0.0/33",
            "not a host",
            "[::1",
            "host:port",
            "::1/200",
        ] {
            let error = EgressPolicy::allowing([entry]).checked().unwrap_err();
            assert!(error.contains(entry.trim()), "{entry:?}: {error}");
        }
        assert_eq!(
            EgressPolicy::allowing(["bad entry", "10.0.0.1"])
                .lenient()
                .allow
                .len(),
            1
        );
    }

    #[test]
    fn a_refusal_names_the_host_the_kind_and_the_setting() {
        let refusal = EgressPolicy::default()
            .checked()
            .unwrap()
            .permits("localhost", 80, "127.0.0.1".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            refusal,
            "refused by the egress policy: localhost resolves to a loopback address, which connectors may not reach; an operator can allow it with [egress] allow = [\"localhost\"] or allow_private = true"
        );
        let refusal = EgressPolicy::default()
            .checked()
            .unwrap()
            .permits("[::]", 80, "::".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            refusal.contains(":: is an unspecified address"),
            "{refusal}"
        );
    }

    #[test]
    fn the_host_replaces_what_a_config_gave_and_the_plugin_takes_it_out() {
        let mut config = json!({"feeds": ["x"], HOST_KEY: {"egress": {"allow_private": true}}});
        HostSettings::default().put(&mut config);
        assert_eq!(config[HOST_KEY]["egress"]["allow_private"], false);
        let taken = HostSettings::take(&mut config).unwrap().unwrap();
        assert_eq!(taken, HostSettings::default());
        assert_eq!(config, json!({"feeds": ["x"]}));
        assert_eq!(HostSettings::take(&mut config).unwrap(), None);
        let mut broken = json!({HOST_KEY: {"egress": {"allow": "everything"}}});
        assert!(
            HostSettings::take(&mut broken)
                .unwrap_err()
                .contains(HOST_KEY)
        );
    }

    #[test]
    fn the_current_policy_is_scoped_to_its_guard() {
        assert_eq!(current(), EgressPolicy::default());
        {
            let _outer = enter(EgressPolicy::allowing_private());
            {
                let _inner = enter(EgressPolicy::allowing(["10.0.0.1"]));
                assert_eq!(current().allow, ["10.0.0.1"]);
            }
            assert!(current().allow_private);
        }
        assert_eq!(current(), EgressPolicy::default());
    }
}
