//! Listing everything a server offers, completely or not at all.

use crate::core::snapshot::{
    ItemKind, Items, Listing, Snapshot, Tolerated, insert_item, is_unserved_code,
};
pub use crate::mcp::error::ScanError;
use crate::mcp::negotiate::{Session, check_result_type, negotiate};
use crate::mcp::page::{PageError, read_page};
use crate::mcp::version::ProtocolChoice;
use crate::transport::{Connection, RequestError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Knobs for one scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub protocol: ProtocolChoice,
    /// What mcplock declares to the server. Some servers offer more to a more capable client,
    /// so this is a recorded choice, empty by default.
    pub client_capabilities: Map<String, Value>,
    pub request_timeout: Duration,
    /// How long `auto` waits for the `server/discover` probe alone before also offering the
    /// legacy handshake.
    pub probe_timeout: Duration,
    /// Most pages followed per list method.
    pub max_pages: usize,
    /// Most items accepted per list method.
    pub max_items: usize,
    /// Most items accepted over every list of the scan.
    pub max_total_items: usize,
    /// Most bytes the server may send over the whole scan (every page, notification and
    /// skipped line), so many pages under the per-message cap cannot add up without bound.
    pub max_scan_bytes: u64,
    /// How often a list is fetched again when the server says it changed meanwhile.
    pub relist_attempts: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            protocol: ProtocolChoice::Auto,
            client_capabilities: Map::new(),
            request_timeout: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(2),
            max_pages: 1_000,
            max_items: 50_000,
            max_total_items: 200_000,
            max_scan_bytes: 256 << 20,
            relist_attempts: 3,
        }
    }
}

/// A snapshot plus what was noticed while taking it.
#[derive(Clone, Debug)]
pub struct Scanned {
    pub snapshot: Snapshot,
    /// Things a careful reader may want to know (fallbacks, tolerated oddities, re-listings).
    pub notes: Vec<String>,
}

/// Negotiates a protocol version and lists every kind the server advertises.
pub async fn scan(conn: &Connection, opts: &ScanOptions) -> Result<Scanned, ScanError> {
    let session = negotiate(
        conn,
        opts.protocol,
        &opts.client_capabilities,
        opts.request_timeout,
        opts.probe_timeout,
    )
    .await?;
    let mut notes = Vec::new();
    if let ProtocolChoice::Recorded(v) = opts.protocol
        && !v.is_modern()
    {
        notes.push(format!(
            "the lock records protocol {v}: spoke that generation without the server/discover probe"
        ));
    }
    if let Some(reason) = &session.fallback_reason {
        notes.push(format!(
            "legacy server: {reason}; used the initialize handshake"
        ));
    }
    let listings = list_everything(conn, &session, opts, &mut notes).await?;
    // A fault seen after the last answer (say, a duplicate response) still taints the scan.
    if let Some(error) = conn.fault_if_any() {
        return Err(RequestError::Conn {
            method: "scan".into(),
            error,
        }
        .into());
    }
    for anomaly in conn.anomalies() {
        notes.push(anomaly);
    }
    let served = conn.server_requests();
    if served > 0 {
        notes.push(format!("answered {served} request(s) the server sent"));
    }
    let skipped = conn.skipped();
    if let Some(note) = skipped_note(&skipped) {
        notes.push(note);
    }
    Ok(Scanned {
        snapshot: Snapshot {
            artifact: None,
            authorization: None,
            launch: None,
            era: session.era,
            protocol_version: session.version.as_str().into(),
            server_info: session.server_info,
            capabilities: session.capabilities,
            instructions: session.instructions,
            client_capabilities: opts.client_capabilities.clone(),
            listings,
            tolerated: Tolerated {
                stdout_non_json_lines: skipped.lines,
            },
        },
        notes,
    })
}

/// The note that reports skipped non-JSON lines, with the first few shown (already escaped).
pub fn skipped_note(skipped: &crate::transport::Skipped) -> Option<String> {
    if skipped.lines == 0 {
        return None;
    }
    let shown: Vec<String> = skipped.samples.iter().map(|s| format!("\"{s}\"")).collect();
    let more = if skipped.lines > skipped.samples.len() as u64 {
        ", ..."
    } else {
        ""
    };
    Some(format!(
        "skipped {} line(s) ({} bytes) the server wrote to stdout that are not JSON: {}{more}; they cannot be taken for an answer and are in no digest (--strict-stdout refuses them)",
        skipped.lines,
        skipped.bytes,
        shown.join(", ")
    ))
}

/// Lists every advertised kind. A server may announce a change to a list at any time (some do
/// right after the handshake, once they know what the client declared); a kind whose list
/// changed after its listing began is listed again, a bounded number of times.
async fn list_everything(
    conn: &Connection,
    session: &Session,
    opts: &ScanOptions,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<ItemKind, Listing>, ScanError> {
    let mut listings: BTreeMap<ItemKind, Listing> = BTreeMap::new();
    let mut started: BTreeMap<ItemKind, u64> = BTreeMap::new();
    let mut todo: Vec<ItemKind> = ItemKind::ALL
        .into_iter()
        .filter(|kind| {
            let advertised = Snapshot::advertises(&session.capabilities, *kind);
            if !advertised {
                listings.insert(*kind, Listing::NotOffered);
            }
            advertised
        })
        .collect();
    let attempts = opts.relist_attempts.max(1);
    for attempt in 1..=attempts {
        for kind in &todo {
            started.insert(*kind, conn.notification_seq());
            let others: usize = listings
                .iter()
                .filter(|(k, _)| *k != kind)
                .map(|(_, l)| match l {
                    Listing::Served(items) => items.len(),
                    _ => 0,
                })
                .sum();
            let budget = opts.max_total_items.saturating_sub(others);
            let listing = list_all(conn, session, opts, *kind, budget).await?;
            listings.insert(*kind, listing);
        }
        let changed: Vec<ItemKind> = started
            .iter()
            .filter(|(kind, since)| conn.changed_since(kind.list_changed_notification(), **since))
            .map(|(kind, _)| *kind)
            .collect();
        if changed.is_empty() {
            for (kind, listing) in &listings {
                if let Listing::Unserved(code) = listing {
                    notes.push(format!(
                        "{}: the server advertises {} but answered error {code}; recorded as advertised but not served (a list that starts being served later is drift)",
                        kind.list_method(),
                        kind.capability()
                    ));
                }
            }
            return Ok(listings);
        }
        for kind in &changed {
            notes.push(format!(
                "the server announced a {} list change while scanning (attempt {attempt}); listed again",
                kind.noun()
            ));
        }
        todo = changed;
    }
    Err(ScanError::Unstable {
        noun: todo.first().map_or("item", |k| k.noun()),
        attempts,
    })
}

/// Follows `nextCursor` to the end, guarding against loops and unbounded listings. A first
/// page answered with an "unserved" error code is recorded as such; an error on any later
/// page (an invalid cursor, say) still fails. `total_budget` is what is left of
/// `--max-total-items` once the other lists are counted.
async fn list_all(
    conn: &Connection,
    session: &Session,
    opts: &ScanOptions,
    kind: ItemKind,
    total_budget: usize,
) -> Result<Listing, ScanError> {
    let method = kind.list_method();
    let mut served = Items::new();
    let mut seen_cursors = HashSet::new();
    let mut cursor: Option<String> = None;
    for _page in 0..opts.max_pages {
        let mut params = Map::new();
        if let Some(c) = &cursor {
            params.insert("cursor".into(), Value::String(c.clone()));
        }
        let payload = match conn
            .request_text(method, session.params(params), opts.request_timeout)
            .await
        {
            Ok(payload) => payload,
            Err(RequestError::Rpc { error, .. })
                if cursor.is_none() && is_unserved_code(error.code) =>
            {
                return Ok(Listing::Unserved(error.code));
            }
            Err(e) => return Err(e.into()),
        };
        // The page's own items first: a page served again (a cursor loop) is reported as such,
        // not as its items listed twice.
        let limit = opts.max_items.min(total_budget);
        let mut page = Items::new();
        let room = limit.saturating_sub(served.len());
        let mut result = page_of(payload.text(), kind, &mut page, room)?;
        drop(payload);
        check_result_type(method, &result)?;
        within_bounds(method, served.len() + page.len(), total_budget, conn, opts)?;
        let next = match result.remove("nextCursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(next)) => {
                if !seen_cursors.insert(next.clone()) {
                    return Err(ScanError::CursorLoop {
                        method,
                        cursor: next,
                    });
                }
                Some(next)
            }
            Some(other) => {
                return Err(malformed(method, format!("\"nextCursor\" is {other}")));
            }
        };
        for (key, definition) in page {
            insert_item(&mut served, kind, key, definition)
                .map_err(|source| ScanError::Listing { method, source })?;
        }
        if next.is_none() {
            return Ok(Listing::Served(served));
        }
        cursor = next;
    }
    Err(ScanError::TooManyPages {
        method,
        max: opts.max_pages,
    })
}

/// One page read into `page` (at most `room` items): the result's other members; past the
/// room, nothing (the caller's bounds say which was passed).
fn page_of(
    text: &[u8],
    kind: ItemKind,
    page: &mut Items,
    room: usize,
) -> Result<Map<String, Value>, ScanError> {
    let method = kind.list_method();
    match read_page(text, kind, page, room) {
        Ok(rest) => Ok(rest),
        Err(PageError::NotAnObject) => Err(malformed(method, "the result is not an object")),
        Err(PageError::NoItems) => Err(malformed(method, format!("no \"{}\" array", kind.field()))),
        Err(PageError::Listing(source)) => Err(ScanError::Listing { method, source }),
        Err(PageError::TooMany) => Ok(Map::new()),
    }
}

/// The listing's bounds: items of this list, items of every list, bytes of the whole scan.
fn within_bounds(
    method: &'static str,
    listed: usize,
    total_budget: usize,
    conn: &Connection,
    opts: &ScanOptions,
) -> Result<(), ScanError> {
    if listed > opts.max_items {
        return Err(ScanError::TooManyItems {
            method,
            max: opts.max_items,
        });
    }
    if listed > total_budget {
        return Err(ScanError::TooManyTotalItems {
            method,
            max: opts.max_total_items,
        });
    }
    if conn.received_bytes() > opts.max_scan_bytes {
        return Err(ScanError::TooManyBytes {
            method,
            max: opts.max_scan_bytes,
        });
    }
    Ok(())
}

fn malformed(method: &str, detail: impl Into<String>) -> ScanError {
    ScanError::Malformed {
        method: method.into(),
        detail: detail.into(),
    }
}
