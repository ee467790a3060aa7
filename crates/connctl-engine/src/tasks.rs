//! Joining the tasks the engine spawns (refresh reads, apply workers): a task that panicked
//! re-raises its panic here, so a crash is a crash (the journal resumes it) and never a read or
//! an outcome that silently goes missing.

use tokio::task::JoinError;

/// The task's value; a panic in the task is resumed in the caller. The engine never aborts its
/// tasks, so the only other error (cancellation at runtime shutdown) is treated the same way.
pub(crate) fn joined<T>(result: Result<T, JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("an engine task was cancelled: {e}"),
    }
}
