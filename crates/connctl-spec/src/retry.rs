//! The one retry policy of connctl's two HTTP clients (Immuta in `connctl-immuta`, the warehouse
//! APIs in `connctl-exec`): which failures are worth another attempt ([`Repeat::retries`]), which
//! statuses say "try again later" and which prove the server did not act, and how long a server's
//! `Retry-After` may make us wait. It lives here because this is the only crate both depend on;
//! each client keeps its own loop and backoff, and maps its errors to a [`Failed`].

use std::time::Duration;

/// Statuses that say "try again later": rate limited, or a server or gateway failure.
pub const RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// The longest wait a `Retry-After` header can impose; a larger value is cut to this, and the
/// cut is said in the log and in the error.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

/// Statuses that prove the server did not act on the request: a rate limiter answers before the
/// request is handled. A 503 in general is not proof: a proxy sends one when its upstream failed,
/// possibly after the write was done (the emulator's lost-answer faults answer 503 after applying
/// an Immuta write), so only [`Repeat::OnlyIfRejectedOrUnavailable`] adds it.
pub const REJECTED_STATUSES: [u16; 1] = [429];

/// "Service unavailable": a refusal before any work for an API that documents it so.
pub const UNAVAILABLE: u16 = 503;

/// Whether an answer with this status is worth another attempt (when the call may be repeated).
pub fn is_retry_status(status: u16) -> bool {
    RETRY_STATUSES.contains(&status)
}

/// Whether an answer with this status proves the request was not acted on.
pub fn is_rejected_status(status: u16) -> bool {
    REJECTED_STATUSES.contains(&status)
}

/// Whether a request may be sent again when its outcome is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A read, or a write that is safe to repeat (a PUT, a submission carrying a request id).
    Safe,
    /// A write that must not run twice: sent again only when the server certainly did not act
    /// (the connection failed, or a [`REJECTED_STATUSES`] answer). Immuta's registration.
    OnlyIfRejected,
    /// Like [`Repeat::OnlyIfRejected`], and also after a 503, for an API that documents its 503
    /// as "not taken, try again" (Databricks' `TEMPORARILY_UNAVAILABLE` on a statement
    /// submission). Under a storm of 503s a run converges only if these are retried.
    OnlyIfRejectedOrUnavailable,
}

/// How an attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// The connection could not be made: the request never left.
    NotSent,
    /// Sent, but no answer came (a timeout, a cut connection): it may have been acted on.
    NoAnswer,
    /// Answered with this status (not a success).
    Status(u16),
}

impl Repeat {
    /// The retry policy: whether a request of this kind is sent again after `failed`.
    pub fn retries(self, failed: Failed) -> bool {
        match (failed, self) {
            (Failed::NotSent, _) => true,
            (Failed::NoAnswer, Repeat::Safe) => true,
            (Failed::NoAnswer, Repeat::OnlyIfRejected | Repeat::OnlyIfRejectedOrUnavailable) => false,
            (Failed::Status(s), Repeat::Safe) => is_retry_status(s),
            (Failed::Status(s), Repeat::OnlyIfRejected) => is_rejected_status(s),
            (Failed::Status(s), Repeat::OnlyIfRejectedOrUnavailable) => {
                is_rejected_status(s) || s == UNAVAILABLE
            }
        }
    }
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
    fn the_policy() {
        use Failed::*;
        use Repeat::*;
        // A request that never left is always sent again.
        assert!(Safe.retries(NotSent));
        assert!(OnlyIfRejected.retries(NotSent));
        assert!(OnlyIfRejectedOrUnavailable.retries(NotSent));
        // A lost answer: only a request that may run twice.
        assert!(Safe.retries(NoAnswer));
        assert!(!OnlyIfRejected.retries(NoAnswer));
        assert!(!OnlyIfRejectedOrUnavailable.retries(NoAnswer));
        for s in RETRY_STATUSES {
            assert!(Safe.retries(Status(s)), "{s}");
        }
        // A write that must not run twice: only a rate limit proves it was not done; a 5xx
        // (503 included: a proxy may send it after the upstream acted) is not retried...
        assert!(OnlyIfRejected.retries(Status(429)));
        for s in [500, 502, 503, 504] {
            assert!(!OnlyIfRejected.retries(Status(s)), "{s}");
        }
        // ...unless the API documents its 503 as a refusal.
        for s in [429, 503] {
            assert!(OnlyIfRejectedOrUnavailable.retries(Status(s)), "{s}");
        }
        for s in [500, 502, 504] {
            assert!(!OnlyIfRejectedOrUnavailable.retries(Status(s)), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!Safe.retries(Status(s)), "{s}");
            assert!(!OnlyIfRejected.retries(Status(s)), "{s}");
            assert!(!OnlyIfRejectedOrUnavailable.retries(Status(s)), "{s}");
        }
        assert!(REJECTED_STATUSES.iter().all(|s| RETRY_STATUSES.contains(s)));
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
