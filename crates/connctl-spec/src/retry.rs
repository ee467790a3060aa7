//! The one retry policy of connctl's two HTTP clients (Immuta in `connctl-immuta`, the warehouse
//! APIs in `connctl-exec`): which statuses are worth another attempt and how long a server's
//! `Retry-After` may make us wait. It lives here because this is the only crate both depend on;
//! each client keeps its own loop, since what may be repeated differs (see their docs).

use std::time::Duration;

/// Statuses that say "try again later": rate limited, or a server or gateway failure.
pub const RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// The longest wait a `Retry-After` header can impose; a larger value is cut to this, and the
/// cut is said in the log and in the error.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

/// Whether an answer with this status is worth another attempt (when the call may be repeated).
pub fn is_retry_status(status: u16) -> bool {
    RETRY_STATUSES.contains(&status)
}

/// The delay of a `Retry-After` header in seconds (the HTTP-date form is rare for APIs and is
/// ignored), uncapped: the caller caps it with [`capped`] and may report the original.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `after`, cut to `cap`.
pub fn capped(after: Duration, cap: Duration) -> Duration {
    after.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retry_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 404, 409, 501] {
            assert!(!is_retry_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_is_parsed_and_capped() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let day = parse_retry_after("86400").expect("seconds");
        assert_eq!(capped(day, RETRY_AFTER_CAP), Duration::from_secs(30));
        assert_eq!(
            capped(Duration::from_secs(2), RETRY_AFTER_CAP),
            Duration::from_secs(2)
        );
    }
}
