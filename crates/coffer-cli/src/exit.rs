//! Exit statuses: one per kind of failure, so scripts can tell a wrong
//! key from a missing item from a server that is down. The mapping is
//! made here, once, from the client's error kind (the HTTP status).

use coffer_client::ErrorKind;

use crate::output::UsageError;

/// Success.
pub(crate) const OK: u8 = 0;
/// Any other failure.
pub(crate) const OTHER: u8 = 1;
/// Usage: bad flags or arguments (clap's own status).
pub(crate) const USAGE: u8 = 2;
/// Authentication: a login failed or the token is not accepted (HTTP 401).
pub(crate) const AUTH: u8 = 3;
/// Permission: the caller may not do this (HTTP 403).
pub(crate) const PERMISSION: u8 = 4;
/// Not found (HTTP 404).
pub(crate) const NOT_FOUND: u8 = 5;
/// Conflict: it exists already or changed meanwhile (HTTP 409).
pub(crate) const CONFLICT: u8 = 6;
/// Network: connection refused, DNS, TLS or timeout.
pub(crate) const NETWORK: u8 = 7;
/// Cancelled with Ctrl-C at a prompt (128 + SIGINT, as a shell reports it).
pub(crate) const INTERRUPTED: u8 = 130;

/// The status for an error: the first cause in its chain that knows its
/// kind decides.
pub(crate) fn code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<coffer_client::Error>() {
            return match e.kind() {
                ErrorKind::Auth => AUTH,
                ErrorKind::Permission => PERMISSION,
                ErrorKind::NotFound => NOT_FOUND,
                ErrorKind::Conflict => CONFLICT,
                ErrorKind::Network => NETWORK,
                ErrorKind::Other => OTHER,
            };
        }
        if cause.is::<UsageError>() {
            return USAGE;
        }
        if cause.is::<crate::session::Cancelled>() {
            return INTERRUPTED;
        }
    }
    OTHER
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn api(status: u16) -> anyhow::Error {
        anyhow::Error::from(coffer_client::Error::Api {
            status,
            message: "x".into(),
        })
    }

    #[test]
    fn statuses_map_to_codes_through_context() {
        assert_eq!(code(&api(401)), AUTH);
        assert_eq!(code(&api(403)), PERMISSION);
        assert_eq!(code(&api(404)), NOT_FOUND);
        assert_eq!(code(&api(409)), CONFLICT);
        assert_eq!(code(&api(400)), OTHER);
        let wrapped = Err::<(), _>(api(404)).context("reading /x").unwrap_err();
        assert_eq!(code(&wrapped), NOT_FOUND);
        let net = anyhow::Error::from(coffer_client::Error::Transport {
            url: "http://127.0.0.1:1".into(),
            reason: "refused".into(),
        });
        assert_eq!(code(&net), NETWORK);
        assert_eq!(code(&UsageError("x".into()).into()), USAGE);
        assert_eq!(code(&anyhow::anyhow!("other")), OTHER);
        assert_eq!(code(&crate::session::Cancelled.into()), INTERRUPTED);
        assert_eq!(OK, 0);
    }
}
