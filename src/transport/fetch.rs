//! Fetching a published file (a signed lockfile, a signed revocation list) over HTTPS, again and
//! again: conditional on its ETag, bounded in size and time, redirects only within its origin.
//! What is fetched is not trusted here: the caller verifies it before using it.

use reqwest::Url;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use std::time::Duration;

/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A URL fetched again and again.
pub struct Published {
    client: reqwest::Client,
    url: Url,
    etag: Option<String>,
    cap: usize,
}

/// What a fetch found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The same as last time (304).
    Unchanged,
    /// Its content now.
    Body(Vec<u8>),
    /// Not there (404 or 410).
    Missing,
}

impl Published {
    /// `url` (https, or http to loopback only), at most `cap` bytes.
    pub fn new(url: &str, cap: usize) -> Result<Published, String> {
        let url = super::http::check_url(url, false).map_err(|e| e.to_string())?;
        let mut builder = reqwest::Client::builder()
            .redirect(super::http::same_origin_redirects(&url))
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("mcplock/", env!("CARGO_PKG_VERSION")));
        if super::http::is_loopback(&url) {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Published {
            client,
            url,
            etag: None,
            cap,
        })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Fetches it, conditional on what was fetched last.
    pub async fn fetch(&mut self) -> Result<Fetched, String> {
        let mut request = self.client.get(self.url.clone());
        if let Some(etag) = &self.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| super::errors::error_chain(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            self.etag = None;
            return Ok(Fetched::Missing);
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.cap as u64)
        {
            return Err(format!("larger than {} bytes", self.cap));
        }
        let etag = (response.headers().get(ETAG))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = super::body::read_capped(&mut response, self.cap)
            .await
            .map_err(|e| e.to_string())?;
        self.etag = etag;
        Ok(Fetched::Body(body))
    }

    /// Forgets the ETag: the next fetch gets the whole content again.
    pub fn forget(&mut self) {
        self.etag = None;
    }
}
