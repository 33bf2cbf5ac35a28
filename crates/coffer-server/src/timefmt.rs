//! Date formats on the wire.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC, second precision: `2026-11-22T03:16:25Z`.
pub fn rfc3339(ms: i64) -> String {
    // Saturating: `ms` may come from an untrusted claim (a JWT `exp` of
    // i64::MIN seconds saturates to i64::MIN ms; found by fuzzing).
    datetime(ms.saturating_sub(ms.rem_euclid(1000)))
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Go's `time.Time.String()` form used by Akeyless for `expiration`:
/// `2026-11-22 04:16:25 +0000 UTC`.
pub fn go_time(ms: i64) -> String {
    let d = datetime(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Parse RFC 3339 or Unix seconds into Unix ms.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(go_time(1_795_000_000_123), "2026-11-18 11:06:40 +0000 UTC");
        assert_eq!(parse_time("2026-11-18T11:06:40Z"), Some(1_795_000_000_000));
        assert_eq!(parse_time("1795000000"), Some(1_795_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        // Was "attempt to subtract with overflow" (debug builds).
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn a_jwt_expired_at_the_smallest_time_is_refused_without_panic() {
        // The JWT claim check formats the expiry of a refused token:
        // `exp` = i64::MIN seconds reached rfc3339(i64::MIN).
        let claims = serde_json::json!({"sub": "me", "exp": i64::MIN});
        let expect = crate::jwt::Expectations {
            unique_identifier: "sub",
            now_secs: 1_000_000,
            ..Default::default()
        };
        let err =
            crate::jwt::check_claims(claims.as_object().unwrap().clone(), &expect).unwrap_err();
        assert!(err.0.starts_with("exp check: the JWT expired"), "{err}");
    }
}
