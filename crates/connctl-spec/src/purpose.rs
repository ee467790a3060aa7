//! What a warehouse setup script is for: one type for the engine, which decides which script
//! runs, and the executors, which run it and name its saved file. It lives here because this is
//! the only crate both depend on.

/// What a script is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Sets the warehouse up for a new connection.
    Create,
    /// Changes the setup of an existing connection.
    Edit,
    /// Removes what the setup created.
    Delete,
}

impl Purpose {
    /// `create`, `edit` or `delete` (as in saved script names and Immuta's script endpoints).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Create => "create",
            Purpose::Edit => "edit",
            Purpose::Delete => "delete",
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
