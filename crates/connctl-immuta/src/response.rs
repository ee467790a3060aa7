//! A successful HTTP answer's body, and the checks that it is the answer an endpoint documents.
//! Shared by the client (which makes one of each answer) and [`crate::live`] (which reads them).

use serde_json::Value;

use crate::error::ApiError;

/// A successful response body, with what an error about it must name.
pub(crate) struct Response {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The call changes something: an unreadable body leaves its outcome unknown.
    pub outcome_unknown: bool,
    pub content_type: String,
    pub text: String,
}

impl Response {
    /// The error for a body that is not the endpoint's answer.
    pub(crate) fn unexpected(&self, problem: impl Into<String>) -> ApiError {
        ApiError::UnexpectedAnswer {
            method: self.method.clone(),
            path: self.path.clone(),
            status: self.status,
            problem: problem.into(),
            excerpt: excerpt(&self.text),
            outcome_unknown: self.outcome_unknown,
        }
    }

    /// The body as JSON; anything else (HTML, a cut-off body, nothing) is an unexpected answer.
    pub(crate) fn json_value(&self) -> Result<Value, ApiError> {
        if self.text.trim().is_empty() {
            return Err(self.unexpected("the body is empty"));
        }
        serde_json::from_str(&self.text).map_err(|e| {
            let problem = if e.is_eof() {
                "the body is cut off".to_owned()
            } else {
                format!("the body is not JSON ({e})")
            };
            self.unexpected(problem)
        })
    }

    pub(crate) fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let value = self.json_value()?;
        serde_json::from_value(value)
            .map_err(|e| self.unexpected(format!("the body is not the documented answer ({e})")))
    }

    /// A write's answer that carries nothing connctl needs: empty, or a JSON object. Anything
    /// else (HTML from a proxy, a cut-off body) does not prove the write happened: an unexpected
    /// answer, outcome unknown, so the caller reads before acting again.
    pub(crate) fn acknowledged(&self) -> Result<(), ApiError> {
        if self.text.trim().is_empty() {
            return Ok(());
        }
        match self.json_value()? {
            Value::Object(_) => Ok(()),
            _ => Err(self.unexpected("the body is not a JSON object")),
        }
    }

    /// The optional `bulkId` of a write's answer. An empty body has none; a body that is not a
    /// JSON object, or a `bulkId` that is not a string, is an unexpected answer.
    pub(crate) fn bulk_id(&self) -> Result<Option<String>, ApiError> {
        if self.text.trim().is_empty() {
            return Ok(None);
        }
        match self.json_value()? {
            Value::Object(obj) => match obj.get("bulkId") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(b)) if !b.is_empty() => Ok(Some(b.clone())),
                Some(_) => Err(self.unexpected("its `bulkId` is not a non-empty string")),
            },
            _ => Err(self.unexpected("the body is not a JSON object")),
        }
    }
}

/// The start of a body for an error: at most 200 characters, on one line.
pub(crate) fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = trimmed
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if trimmed.chars().count() > 200 {
        out.push('…');
    }
    format!("`{out}`")
}
