//! Listings through `POST /data/object/search`: the connections, and the children of an object.
//!
//! The envelope and paging are undocumented, so the page shapes of [`SearchPage`] are accepted
//! and every page goes through one set of guards ([`Listing::take`]): hits are de-duplicated by
//! object path; an unreadable page, a listing that stalls before its total or repeats a full
//! page (a server that ignores `offset`), or one that does not end is an error. connctl never
//! concludes that something does not exist from an answer it could not read.
//!
//! A caller that knows about how many objects to expect (a refresh knows the state's count) has
//! that many pages asked at once instead of one after another, so listing 2,000 connections
//! costs one round trip, not two. A page asked ahead is used only when it starts exactly where
//! the pages before it ended (each full, nothing dropped as a duplicate); otherwise it is
//! dropped unread and the listing goes on page by page, as without the hint. Pages are taken in
//! order as they arrive; once the listing is complete the rest are dropped (their requests
//! cancelled), so a page that was not needed neither fails the listing nor holds it up.

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use reqwest::Method;

use super::{Call, ImmutaClient};
use crate::error::ApiError;
use crate::live::{ObjectHit, SearchPage};

/// Page size asked of `POST /data/object/search`.
pub(super) const SEARCH_PAGE: usize = 1000;

/// Pages read at most before the listing is declared endless (an error, never a partial list).
const SEARCH_MAX_PAGES: usize = 1000;

/// Pages asked at once at most on an `expected` hint: a bound on the requests a listing has in
/// flight, and on those wasted when the hint is far above what Immuta holds.
const PAGES_AHEAD: usize = 4;

/// How many pages a listing of `expected` objects asks at once with at most `in_flight`
/// requests allowed: what a caller sharing its parallelism sets aside for the listing.
pub fn pages_at_once(expected: usize, in_flight: usize) -> usize {
    expected
        .div_ceil(SEARCH_PAGE)
        .clamp(1, PAGES_AHEAD.min(in_flight.max(1)))
}

impl ImmutaClient {
    /// `POST /data/object/search`, every page: the top-level objects, i.e. the connections.
    /// `expected` is how many the caller expects (0 when it cannot tell): the pages covering
    /// that many are asked at once, [`pages_at_once`] of them with `in_flight` allowed.
    pub async fn list_connections(
        &self,
        expected: usize,
        in_flight: usize,
    ) -> Result<Vec<ObjectHit>, ApiError> {
        let ahead = pages_at_once(expected, in_flight);
        self.search_all("/data/object/search", "connections", ahead).await
    }

    /// Every page of the search at `search` (a path without query): the paging shared by the
    /// connection and child listings; the first `ahead` pages are asked at once. `what` names
    /// the listed things in errors.
    pub(super) async fn search_all(
        &self,
        search: &str,
        what: &str,
        ahead: usize,
    ) -> Result<Vec<ObjectHit>, ApiError> {
        let mut listing = Listing::new(search, what);
        let ahead = ahead.max(1);
        let mut first: FuturesOrdered<_> = (0..ahead)
            .map(|i| self.search_page(search, i * SEARCH_PAGE))
            .collect();
        let mut i = 0;
        while let Some(page) = first.next().await {
            // A page asked ahead counts only where the listing stands: a server with smaller
            // pages, or one that repeated a hit, has its next page asked where it really starts.
            // Nor does its error count unless it was needed (a server may refuse an offset past
            // its end).
            if listing.len() != i * SEARCH_PAGE {
                break;
            }
            if listing.take(page?)? {
                return Ok(listing.hits);
            }
            i += 1;
        }
        drop(first);
        for _ in ahead..SEARCH_MAX_PAGES {
            let page = self.search_page(search, listing.len()).await?;
            if listing.take(page)? {
                return Ok(listing.hits);
            }
        }
        Err(incomplete_listing(
            search,
            format!("the listing did not end after {SEARCH_MAX_PAGES} pages"),
        ))
    }

    async fn search_page(&self, search: &str, offset: usize) -> Result<SearchPage, ApiError> {
        let path = format!("{search}?offset={offset}&size={SEARCH_PAGE}");
        let body = serde_json::json!({});
        self.call(Method::POST, &path, Some(&body), Call::Read, |r| {
            SearchPage::from_response(&r)
        })
        .await
    }
}

/// The hits of a listing so far, and the guards each page goes through.
struct Listing<'a> {
    search: &'a str,
    what: &'a str,
    hits: Vec<ObjectHit>,
    seen: std::collections::BTreeSet<Vec<String>>,
}

impl<'a> Listing<'a> {
    fn new(search: &'a str, what: &'a str) -> Listing<'a> {
        Listing {
            search,
            what,
            hits: Vec::new(),
            seen: std::collections::BTreeSet::new(),
        }
    }

    /// The distinct hits so far: also the offset of the next page.
    fn len(&self) -> usize {
        self.hits.len()
    }

    /// Adds the page read at [`Listing::len`]; `true` when the listing is complete.
    fn take(&mut self, page: SearchPage) -> Result<bool, ApiError> {
        let got = page.hits.len();
        let before = self.hits.len();
        for hit in page.hits {
            if self.seen.insert(hit.object_path.clone()) {
                self.hits.push(hit);
            }
        }
        let stalled = got == 0 || self.hits.len() == before;
        match page.total {
            Some(total) if self.hits.len() >= total => Ok(true),
            Some(total) if stalled => Err(incomplete_listing(
                self.search,
                format!(
                    "the listing stopped at {} of the {total} {} it reported (the server may ignore `offset`)",
                    self.hits.len(),
                    self.what
                ),
            )),
            None if got < SEARCH_PAGE => Ok(true),
            None if stalled => Err(incomplete_listing(
                self.search,
                "a full page came again: the server seems to ignore `offset`, so whether the listing is complete is unknown"
                    .into(),
            )),
            _ => Ok(false),
        }
    }
}

fn incomplete_listing(search: &str, problem: String) -> ApiError {
    ApiError::UnexpectedAnswer {
        method: "POST".into(),
        path: search.into(),
        status: 200,
        problem,
        excerpt: "(answers not shown)".into(),
        outcome_unknown: false,
    }
}
