//! `connctl crawl`: the crawl's bulkId and how its job ended (errors are rendered by `main`).

/// The crawl was accepted; its job is `bulk_id`.
pub fn started(path: &str, bulk_id: &str) {
    println!("Crawl of {path} started: bulkId {bulk_id}");
}

/// Immuta accepted the crawl but answered no bulkId, so there is no job to follow.
pub fn started_without_job(path: &str) {
    println!("Crawl of {path} requested");
    super::notice::warning(
        &"Immuta answered no bulkId, so connctl cannot follow the crawl to its end",
        Some("new objects appear in Immuta once the crawl is done"),
    );
}

/// The crawl's job completed.
pub fn completed(path: &str) {
    println!("Crawl of {path}: completed");
}
