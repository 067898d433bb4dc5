//! Why a scan (negotiation or listing) produced no snapshot.

use crate::core::snapshot::ListingError;
use crate::transport::RequestError;
use std::time::Duration;

/// Why a scan produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("{method}: the server's result is malformed: {detail}")]
    Malformed { method: String, detail: String },
    #[error("no protocol version in common: mcplock offered {offered}, the server speaks {server}")]
    NoCommonVersion { offered: String, server: String },
    #[error("the server does not speak {wanted} ({detail}); try --protocol auto")]
    VersionRefused {
        wanted: &'static str,
        detail: String,
    },
    #[error(
        "{method}: the server asked for more input (resultType {result_type}); a scan cannot answer that"
    )]
    InputRequired { method: String, result_type: String },
    #[error(
        "{method}: more than {max} pages; the server may be paging forever (raise --max-pages if it is really that large)"
    )]
    TooManyPages { method: &'static str, max: usize },
    #[error(
        "{method}: more than {max} items (raise --max-items if the server is really that large)"
    )]
    TooManyItems { method: &'static str, max: usize },
    #[error(
        "{method}: more than {max} items over all lists of the scan (raise --max-total-items if the server is really that large)"
    )]
    TooManyTotalItems { method: &'static str, max: usize },
    #[error(
        "{method}: the server sent more than {max} bytes during the scan (raise --max-scan-bytes if the server is really that large)"
    )]
    TooManyBytes { method: &'static str, max: u64 },
    #[error(
        "{method}: the server returned cursor {cursor:?} a second time; following it would loop forever"
    )]
    CursorLoop {
        method: &'static str,
        cursor: String,
    },
    #[error("{method}: {source}")]
    Listing {
        method: &'static str,
        source: ListingError,
    },
    #[error(
        "the server's {noun} list changed {attempts} times during the scan; try again when it is stable"
    )]
    Unstable { noun: &'static str, attempts: usize },
    #[error("the scan took longer than {}s (raise --scan-timeout if the server is slow)", .0.as_secs_f64())]
    ScanTimeout(Duration),
}
