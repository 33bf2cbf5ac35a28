//! Rules for every outbound request that may carry a credential: the CLI's
//! gateway client here, and `coffer ci`'s providers (which reuse these
//! functions).
//!
//! - **No redirects.** On a 307 or 308 an HTTP client that follows
//!   redirects sends the same body again (access key, JWT, token) to
//!   whatever the `Location` header names, and on any 3xx it follows to a
//!   host the caller never chose. A misconfigured or hostile gateway could
//!   so collect credentials for another address. Clients are built with
//!   [`reqwest::redirect::Policy::none`] and a 3xx answer becomes a
//!   [`RedirectRefused`] error that names the status and where the redirect
//!   pointed (scheme, host and port: never the path or query, which may
//!   hold a token).
//! - **Plain `http://` only to loopback** (127.0.0.0/8, ::1, `localhost`)
//!   unless the user allows it explicitly ([`check_plain_http`]), so a
//!   credential never crosses a network unencrypted by accident. The check
//!   is made on the URL before any connection is opened.

use std::fmt;
use std::net::IpAddr;

use reqwest::Url;

/// How the CLI lets a user allow plain HTTP (named in error messages).
pub const INSECURE_HTTP_HINT: &str = "--allow-insecure-http or COFFER_ALLOW_INSECURE_HTTP=1";

/// The redirect policy of every client that may send a credential.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::none()
}

/// True when `url`'s host is `localhost` or a loopback address
/// (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
pub fn is_loopback(url: &Url) -> bool {
    match host_of(url) {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ip(ip)) => ip.to_canonical().is_loopback(),
        None => false,
    }
}

enum Host<'a> {
    Domain(&'a str),
    Ip(IpAddr),
}

/// The URL's host as parsed by the URL parser (IPv6 without brackets).
fn host_of(url: &Url) -> Option<Host<'_>> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Domain(host),
    })
}

/// True when `url`'s host is one of `hosts` (domain names compared without
/// case, IP addresses compared as addresses, so `[fd00:ec2::254]` matches
/// `fd00:ec2:0::254`).
pub fn host_is(url: &Url, hosts: &[&str]) -> bool {
    let Some(host) = host_of(url) else {
        return false;
    };
    hosts
        .iter()
        .any(|allowed| match (&host, allowed.parse::<IpAddr>()) {
            (Host::Domain(d), Err(_)) => d.eq_ignore_ascii_case(allowed),
            (Host::Ip(a), Ok(b)) => *a == b,
            _ => false,
        })
}

/// `scheme://host[:port]` of `url`: where a request goes, without user
/// info, path or query.
pub fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// `url` with any user info (`user:password@`) replaced by `***@`, for
/// error messages that must show a URL the user gave, even one that does
/// not parse.
pub fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

/// A plain `http://` URL to a host that is not loopback, refused before
/// any connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureHttp {
    /// `http://host[:port]`.
    pub origin: String,
}

impl fmt::Display for InsecureHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing plain HTTP to {}: credentials would cross the network unencrypted. \
             Use https://, or, when a TLS proxy or a private network protects the traffic, \
             allow it explicitly with {INSECURE_HTTP_HINT}",
            self.origin
        )
    }
}

impl std::error::Error for InsecureHttp {}

/// `https://` always passes; `http://` passes for loopback hosts, for the
/// hosts in `also_plain` (cloud metadata endpoints that only speak plain
/// HTTP, see `coffer-ci`'s `cloud_id`) and when `allow_insecure_http` is
/// set. Other schemes pass too: the caller's own URL parsing refuses them
/// with a better message.
pub fn check_plain_http(
    url: &Url,
    allow_insecure_http: bool,
    also_plain: &[&str],
) -> Result<(), InsecureHttp> {
    if url.scheme() != "http" || allow_insecure_http || is_loopback(url) || host_is(url, also_plain)
    {
        return Ok(());
    }
    Err(InsecureHttp {
        origin: origin(url),
    })
}

/// A 3xx answer, not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused {
    /// The HTTP status (301, 302, 303, 307, 308, …).
    pub status: u16,
    /// Where the `Location` header pointed: `scheme://host[:port]`, or a
    /// description when it was missing or unusable.
    pub location: String,
}

impl RedirectRefused {
    /// The error for a 3xx answer to a request to `url`.
    pub fn new(status: u16, url: &Url, headers: &reqwest::header::HeaderMap) -> RedirectRefused {
        let location = match headers.get(reqwest::header::LOCATION) {
            None => "nowhere (no Location header)".to_owned(),
            Some(value) => match value.to_str().ok().and_then(|l| url.join(l.trim()).ok()) {
                Some(target) => origin(&target),
                None => "an unreadable Location".to_owned(),
            },
        };
        RedirectRefused { status, location }
    }

    /// The error when `response` is a redirect.
    pub fn check(response: &reqwest::Response) -> Result<(), RedirectRefused> {
        let status = response.status();
        if status.is_redirection() {
            return Err(RedirectRefused::new(
                status.as_u16(),
                response.url(),
                response.headers(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server answered HTTP {} redirecting to {}; redirects are not followed \
             (the request's credentials would be sent again to the new address): \
             configure the final URL instead",
            self.status, self.location
        )
    }
}

impl std::error::Error for RedirectRefused {}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_hosts() {
        for yes in [
            "http://127.0.0.1:8200",
            "http://127.255.1.2/",
            "http://[::1]:1/",
            "http://localhost/",
            "http://LOCALHOST:80/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(is_loopback(&url(yes)), "{yes}");
        }
        for no in [
            "http://10.255.255.1/",
            "http://128.0.0.1/",
            "http://localhost.example.com/",
            "http://mylocalhost/",
            "http://169.254.169.254/",
            "http://[::2]/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback(&url(no)), "{no}");
        }
    }

    #[test]
    fn plain_http_needs_loopback_a_listed_host_or_the_opt_in() {
        assert!(check_plain_http(&url("https://gw.example"), false, &[]).is_ok());
        assert!(check_plain_http(&url("http://127.0.0.2:9"), false, &[]).is_ok());
        let refused =
            check_plain_http(&url("http://u:p@gw.example:8200/v2?t=x"), false, &[]).unwrap_err();
        assert_eq!(refused.origin, "http://gw.example:8200");
        let text = refused.to_string();
        assert!(text.contains("http://gw.example:8200"), "{text}");
        assert!(text.contains("--allow-insecure-http"), "{text}");
        assert!(!text.contains("u:p") && !text.contains("t=x"), "{text}");
        assert!(check_plain_http(&url("http://10.255.255.1/"), true, &[]).is_ok());
        let imds = [
            "169.254.169.254",
            "fd00:ec2::254",
            "metadata.google.internal",
        ];
        for ok in [
            "http://169.254.169.254/latest",
            "http://[fd00:ec2:0::254]/",
            "http://Metadata.Google.Internal/x",
        ] {
            assert!(check_plain_http(&url(ok), false, &imds).is_ok(), "{ok}");
        }
        for no in [
            "http://169.254.169.253/",
            "http://metadata.google.internal.evil/",
        ] {
            assert!(check_plain_http(&url(no), false, &imds).is_err(), "{no}");
        }
    }

    #[test]
    fn user_info_is_redacted_even_in_unparsable_urls() {
        assert_eq!(
            redact_userinfo("https://u:p@gw:bad/x?y@z"),
            "https://***@gw:bad/x?y@z"
        );
        assert_eq!(redact_userinfo("http://a@b@gw/"), "http://***@gw/");
        assert_eq!(redact_userinfo("https://gw/p@x"), "https://gw/p@x");
        assert_eq!(redact_userinfo("gw:8200"), "gw:8200");
    }

    #[test]
    fn redirect_errors_name_status_and_origin_only() {
        let base = url("http://127.0.0.1:8200/api/v2/auth");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LOCATION,
            "https://collector.example:9443/steal?token=t-secret"
                .parse()
                .unwrap(),
        );
        let e = RedirectRefused::new(307, &base, &headers);
        assert_eq!(e.location, "https://collector.example:9443");
        let text = e.to_string();
        assert!(text.contains("HTTP 307"), "{text}");
        assert!(
            !text.contains("t-secret") && !text.contains("steal"),
            "{text}"
        );
        headers.insert(reqwest::header::LOCATION, "/elsewhere".parse().unwrap());
        assert_eq!(
            RedirectRefused::new(302, &base, &headers).location,
            "http://127.0.0.1:8200"
        );
        let e = RedirectRefused::new(301, &base, &reqwest::header::HeaderMap::new());
        assert!(e.location.contains("no Location"), "{e}");
    }
}
