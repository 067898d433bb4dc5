//! Reading one peer's messages, whatever its role: newline-delimited frames under a size cap,
//! human lines skipped (or refused), every message parsed strictly. The raw bytes of each
//! message are kept beside the parsed value, so a relay can forward exactly what it checked.
//! Budgets are per frame and per channel.

use crate::core::json::{check_strict, parse_strict};
use crate::core::text::escape;
use crate::transport::lines::Frame;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Non-JSON lines on stdout tolerated per connection (start-up banners, stray log lines); one
/// more is a fault. MCP reserves stdout for messages, so a server that keeps printing there is
/// broken, not chatty.
pub const MAX_SKIPPED_LINES: u64 = 100;
/// Bytes of non-JSON lines tolerated per connection.
pub const MAX_SKIPPED_BYTES: u64 = 64 * 1024;
/// Skipped lines kept (escaped, shortened) to show the user.
const SKIPPED_SAMPLES: usize = 3;

/// Why the connection can no longer be used.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnError {
    #[error("the server closed its output")]
    Closed,
    #[error("the server closed its output in the middle of a message")]
    Truncated,
    #[error(
        "the server sent a message larger than the {cap}-byte cap (raise --max-message-size only for a server you trust)"
    )]
    TooLong { cap: usize },
    #[error(
        "the server wrote a line to stdout that is not valid JSON-RPC: {detail}; the line starts {snippet:?}"
    )]
    NotJson { detail: String, snippet: String },
    #[error(
        "the server wrote more than {MAX_SKIPPED_LINES} lines or {MAX_SKIPPED_BYTES} bytes of non-JSON text to stdout (the last starts {snippet:?}); stdout is reserved for MCP messages, so the server should log to stderr"
    )]
    TooMuchNoise { snippet: String },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("reading the server's output failed: {0}")]
    Read(String),
    /// The transport under the channel failed (an HTTP endpoint that became unusable); the
    /// message names the status and the endpoint.
    #[error("{0}")]
    Transport(String),
    #[error("writing to the server failed: {0}")]
    Write(String),
}

/// The reason a transport under a channel gave for ending it, carried through `io::Error` to
/// the reader (see [`ConnError::Transport`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportFault(pub String);

fn read_error(error: std::io::Error) -> ConnError {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TransportFault>())
    {
        Some(fault) => ConnError::Transport(fault.0.clone()),
        None => ConnError::Read(error.to_string()),
    }
}

/// How a channel treats a line from its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted.
    pub max_message_bytes: usize,
    /// Refuse any line that is not JSON, instead of skipping human lines (banners).
    pub strict_stdout: bool,
}

/// Lines on the server's output that were not JSON and were skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub lines: u64,
    pub bytes: u64,
    /// The first few, escaped and shortened, for the report.
    pub samples: Vec<String>,
}

/// True for a line that is plainly not a JSON-RPC message: valid UTF-8 whose first non-blank
/// character cannot start a message object. Such a line cannot be taken for an answer (answers
/// are matched by id), so skipping it cannot change what a scan records. A line that starts
/// with `{` but does not parse is a broken message, never skipped; invalid UTF-8 is never
/// skipped either.
pub fn is_human_line(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok()
        && line
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
}

/// What a channel has read so far: every byte, and the human lines it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes of every frame received (messages and skipped lines).
    pub received_bytes: u64,
    pub skipped: Skipped,
}

impl ReadStats {
    /// Counts a skipped human line; a fault once the per-connection budget is spent.
    fn skip(&mut self, line: &[u8]) -> Result<(), ConnError> {
        self.skipped.lines += 1;
        self.skipped.bytes += line.len() as u64 + 1;
        if self.skipped.lines > MAX_SKIPPED_LINES || self.skipped.bytes > MAX_SKIPPED_BYTES {
            return Err(ConnError::TooMuchNoise {
                snippet: snippet(line),
            });
        }
        if self.skipped.samples.len() < SKIPPED_SAMPLES {
            self.skipped.samples.push(snippet(line));
        }
        Ok(())
    }
}

/// One message as read: its exact bytes (without the newline) and its strictly parsed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub raw: Vec<u8>,
    pub value: Value,
}

/// Reads messages from one peer. [`MessageReader::next`] is cancel-safe: a partial line read
/// before its future was dropped (by a `select!` that took the other side) is kept, so a relay
/// can wait on both peers at once.
pub struct MessageReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    /// The bytes in `buf` are a finished line already returned (or skipped): start afresh.
    done: bool,
    /// The rest of an oversize line is still to be skipped.
    skipping: bool,
    limits: Limits,
    stats: Arc<Mutex<ReadStats>>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Reads up to the next newline into `buf` (without it), keeping what an interrupted call
    /// had read. Only `fill_buf` awaits, and it consumes nothing, so cancellation loses nothing.
    /// A line over `cap` is reported as soon as the cap is passed; the rest of it is skipped by
    /// the next call, so the channel can go on (a relay drops the line, a client stops).
    async fn line(&mut self, cap: usize) -> Result<Frame, ConnError> {
        if self.done {
            self.buf.clear();
            self.done = false;
        }
        loop {
            let available = self.reader.fill_buf().await.map_err(read_error)?;
            if available.is_empty() {
                self.done = true;
                let skipped_to_end = std::mem::take(&mut self.skipping);
                return Ok(if self.buf.is_empty() || skipped_to_end {
                    Frame::Eof
                } else {
                    Frame::Truncated
                });
            }
            let found = available.iter().position(|b| *b == b'\n');
            let chunk_len = found.unwrap_or(available.len());
            if self.skipping {
                self.reader.consume(found.map_or(chunk_len, |i| i + 1));
                if found.is_some() {
                    self.skipping = false;
                }
                continue;
            }
            if self.buf.len() + chunk_len > cap {
                // Consume through the newline if it is here; otherwise skip on the next call.
                self.reader.consume(found.map_or(chunk_len, |i| i + 1));
                self.skipping = found.is_none();
                self.done = true;
                return Ok(Frame::TooLong);
            }
            self.buf.extend_from_slice(&available[..chunk_len]);
            self.reader.consume(found.map_or(chunk_len, |i| i + 1));
            if found.is_some() {
                self.done = true;
                return Ok(Frame::Line);
            }
        }
    }

    pub fn new(reader: R, limits: Limits) -> MessageReader<R> {
        MessageReader {
            reader: BufReader::with_capacity(64 * 1024, reader),
            buf: Vec::new(),
            done: true,
            skipping: false,
            limits,
            stats: Arc::default(),
        }
    }

    /// The line the last call to [`MessageReader::next`] refused as not JSON (empty after any
    /// other outcome that kept no line): a relay recovers what it can of it to answer.
    pub fn last_line(&self) -> &[u8] {
        if self.skipping { &[] } else { &self.buf }
    }

    /// A handle on what this reader has read, for whoever reports on it.
    pub fn stats(&self) -> Arc<Mutex<ReadStats>> {
        Arc::clone(&self.stats)
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, ReadStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next message. `ConnError::Closed` at a clean end of input; any other error ends the
    /// channel (the caller decides whether that ends the session).
    pub async fn next(&mut self) -> Result<Message, ConnError> {
        loop {
            self.next_line().await?;
            match parse_strict(&self.buf) {
                Ok(value) => {
                    return Ok(Message {
                        raw: self.buf.clone(),
                        value,
                    });
                }
                Err(e) => self.refuse(e)?,
            }
        }
    }

    /// The next message as its exact bytes, checked as strictly as [`MessageReader::next`]
    /// parses but not built: for a reader that builds its parts one at a time.
    pub async fn next_text(&mut self) -> Result<Vec<u8>, ConnError> {
        loop {
            self.next_line().await?;
            match check_strict(&self.buf) {
                // The line is handed over whole; the next one starts in a fresh buffer.
                Ok(()) => return Ok(std::mem::take(&mut self.buf)),
                Err(e) => self.refuse(e)?,
            }
        }
    }

    /// Reads up to the next line that is not blank, counting what it reads.
    async fn next_line(&mut self) -> Result<(), ConnError> {
        let cap = self.limits.max_message_bytes;
        loop {
            match self.line(cap).await? {
                Frame::Eof => return Err(ConnError::Closed),
                Frame::Truncated => return Err(ConnError::Truncated),
                Frame::TooLong => return Err(ConnError::TooLong { cap }),
                Frame::Line => {}
            }
            self.stats_mut().received_bytes += self.buf.len() as u64 + 1;
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
        }
    }

    /// A line that is not a message: skipped (and counted) when it is plainly a human line on
    /// a lenient channel, a fault otherwise.
    fn refuse(&mut self, error: crate::core::json::JsonError) -> Result<(), ConnError> {
        if !self.limits.strict_stdout && is_human_line(&self.buf) {
            let line = self.buf.clone();
            return self.stats_mut().skip(&line);
        }
        Err(ConnError::NotJson {
            detail: error.message().to_owned(),
            snippet: snippet(&self.buf),
        })
    }
}

pub(crate) fn snippet(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]);
    escape(&text)
}

impl crate::core::code::Coded for ConnError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::ServerFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(strict: bool) -> Limits {
        Limits {
            max_message_bytes: 1 << 16,
            strict_stdout: strict,
        }
    }

    #[tokio::test]
    async fn messages_keep_their_exact_bytes_and_human_lines_are_counted() {
        let input: &[u8] =
            b"{ \"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"n\": 1.0} }\nServer ready\n\n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n";
        let mut reader = MessageReader::new(input, limits(false));
        let first = reader.next().await.unwrap();
        // Exactly as sent, spacing and number spelling included: what a relay forwards.
        assert_eq!(
            first.raw,
            b"{ \"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"n\": 1.0} }".to_vec()
        );
        assert_eq!(first.value["result"]["n"], 1.0);
        let second = reader.next().await.unwrap();
        assert_eq!(second.value["method"], "x");
        assert_eq!(reader.next().await, Err(ConnError::Closed));
        let stats = reader.stats().lock().unwrap().clone();
        assert_eq!(stats.skipped.lines, 1);
        assert_eq!(stats.received_bytes, input.len() as u64);
    }

    #[tokio::test]
    async fn strict_channels_refuse_human_lines() {
        let mut reader = MessageReader::new(&b"Server ready\n"[..], limits(true));
        assert!(matches!(
            reader.next().await,
            Err(ConnError::NotJson { .. })
        ));
    }
}

#[cfg(test)]
mod relay_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn an_oversize_line_is_reported_once_and_the_channel_goes_on() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"method\":\"ok\"}\n");
        let limits = Limits {
            max_message_bytes: 1024,
            strict_stdout: true,
        };
        let mut reader = MessageReader::new(input.as_slice(), limits);
        assert_eq!(reader.next().await, Err(ConnError::TooLong { cap: 1024 }));
        assert_eq!(reader.next().await.unwrap().value["method"], "ok");
        assert_eq!(reader.next().await, Err(ConnError::Closed));
    }

    #[tokio::test]
    async fn a_read_cancelled_mid_line_loses_nothing() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let limits = Limits {
            max_message_bytes: 1 << 16,
            strict_stdout: true,
        };
        let mut reader = MessageReader::new(ours, limits);
        theirs.write_all(b"{\"jsonrpc\":\"2.0\",").await.unwrap();
        // The read is abandoned after the first half arrived.
        let abandoned =
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await;
        assert!(abandoned.is_err());
        theirs.write_all(b"\"method\":\"whole\"}\n").await.unwrap();
        assert_eq!(reader.next().await.unwrap().value["method"], "whole");
    }
}
