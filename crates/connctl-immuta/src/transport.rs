//! Words for a failed HTTP exchange: what went wrong on the way (timeout, refused connection,
//! TLS), for the client's errors.

/// Why a request did not get an answer: timed out, refused, or the deepest cause.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        match innermost(e) {
            Some(detail) => format!("connection refused or unreachable ({detail})"),
            None => "connection refused or unreachable".into(),
        }
    } else {
        innermost(e).unwrap_or_else(|| e.to_string())
    }
}

/// The message of the deepest source of an error: the actual cause.
fn innermost(e: &reqwest::Error) -> Option<String> {
    let mut reason = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = Some(s.to_string());
        source = s.source();
    }
    reason
}

/// The reason of a TLS failure (certificate rejected, handshake failed, not a TLS server), or
/// `None` when the error is not about TLS. Walks the sources for rustls's error, looking inside
/// `io::Error`s too (their `source()` skips the error they wrap).
pub(crate) fn tls_reason(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = next {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(tls_words(tls));
        }
        next = match s
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

fn tls_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!("the server's certificate was rejected: {c:?}"),
        rustls::Error::InvalidMessage(_) => {
            format!("the handshake failed ({e}); the server may not speak TLS on this port")
        }
        other => format!("the handshake failed: {other}"),
    }
}
