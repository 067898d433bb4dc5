//! A bounded Server-Sent Events parser (the WHATWG event-stream format), fed the bytes of an
//! HTTP response body as they arrive.
//!
//! Written here rather than taken from a crate because every byte must be bounded: an event's
//! data may not grow past the message cap (a 50 MB event is refused as soon as the cap is
//! passed, not after buffering it), nor may a line that never ends, nor the bytes of comments
//! and ignored fields between events (a stream of keep-alives is not a stream of messages).

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `event:` (empty means the default type, `message`).
    pub kind: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// `id:`, when the event set one.
    pub id: Option<String>,
}

/// Why a stream cannot be read further.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("an event is larger than the {cap}-byte cap")]
    EventTooLarge { cap: usize },
    #[error("more than {cap} bytes arrived without an event (comments or unknown fields only)")]
    TooMuchNoise { cap: usize },
    #[error("the event stream is not valid UTF-8")]
    NotUtf8,
}

/// Incremental parser. Feed it chunks with [`Parser::push`]; it returns the events they
/// complete.
#[derive(Debug)]
pub struct Parser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    kind: String,
    data: String,
    /// Some `data:` line was seen for the current event.
    has_data: bool,
    id: Option<String>,
    /// Bytes read since the last dispatched event.
    since_event: usize,
    max_event: usize,
    max_noise: usize,
}

impl Parser {
    /// An event's data (and any one line) may hold at most `max_event` bytes; at most
    /// `max_noise` bytes more than the events' own may pass between two events.
    pub fn new(max_event: usize, max_noise: usize) -> Parser {
        Parser {
            line: Vec::new(),
            after_cr: false,
            kind: String::new(),
            data: String::new(),
            has_data: false,
            id: None,
            since_event: 0,
            max_event,
            max_noise,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            self.since_event += 1;
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line)? {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= self.max_event.saturating_add(16) {
                        return Err(SseError::EventTooLarge {
                            cap: self.max_event,
                        });
                    }
                    self.line.push(byte);
                }
            }
            if self.since_event > self.max_event.saturating_add(self.max_noise) {
                return Err(SseError::TooMuchNoise {
                    cap: self.max_noise,
                });
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                let added = value.len() + usize::from(self.has_data);
                if self.data.len() + added > self.max_event {
                    return Err(SseError::EventTooLarge {
                        cap: self.max_event,
                    });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.kind = value.to_string(),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            // `retry` and unknown fields change nothing a client of ours does.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let kind = std::mem::take(&mut self.kind);
        let id = self.id.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        self.since_event = 0;
        Some(Event {
            kind,
            data: std::mem::take(&mut self.data),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn events(stream: &[u8]) -> Result<Vec<Event>, SseError> {
        Parser::new(1 << 16, 1 << 16).push(stream)
    }

    #[test]
    fn reads_events_fields_comments_and_every_line_ending() {
        let stream = b": keep-alive\r\nevent: message\nid: 7\ndata: {\"a\":\ndata:1}\n\nretry: 10\r\rdata: two\r\n\r\n";
        assert_eq!(
            events(stream).unwrap(),
            vec![
                Event {
                    kind: "message".into(),
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into())
                },
                Event {
                    kind: String::new(),
                    data: "two".into(),
                    id: None
                }
            ]
        );
        // An event without data dispatches nothing; an unfinished one waits for its blank line.
        assert_eq!(events(b"event: endpoint\n\ndata: x\n").unwrap(), vec![]);
    }

    #[test]
    fn bounds_hold_before_the_bytes_are_kept() {
        let mut parser = Parser::new(100, 1000);
        let big = [b'x'; 64];
        assert!(parser.push(b"data: ").is_ok());
        let mut refused = None;
        for _ in 0..4 {
            if let Err(e) = parser.push(&big) {
                refused = Some(e);
                break;
            }
        }
        assert_eq!(refused, Some(SseError::EventTooLarge { cap: 100 }));
        // Many data lines adding up past the cap.
        let lines = "data: 0123456789\n".repeat(20);
        assert_eq!(
            Parser::new(100, 1000).push(lines.as_bytes()),
            Err(SseError::EventTooLarge { cap: 100 })
        );
        // A stream of comments only.
        let comments = ": ping\n".repeat(1000);
        assert_eq!(
            Parser::new(100, 1000).push(comments.as_bytes()),
            Err(SseError::TooMuchNoise { cap: 1000 })
        );
        assert_eq!(events(b"data: \xff\n\n"), Err(SseError::NotUtf8));
    }

    proptest! {
        /// However the stream is cut into chunks, the same events come out.
        #[test]
        fn chunking_never_changes_the_events(
            datas in prop::collection::vec("[a-z{}\":, ]{0,40}", 1..8),
            cuts in prop::collection::vec(0usize..400, 0..10),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let stream: String = datas
                .iter()
                .map(|d| format!("event: message{eol}data: {d}{eol}{eol}"))
                .collect();
            let whole = events(stream.as_bytes()).unwrap();
            let bytes = stream.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut parser = Parser::new(1 << 16, 1 << 16);
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces.extend(parser.push(&bytes[start..cut]).unwrap());
                start = cut;
            }
            prop_assert_eq!(&pieces, &whole);
            prop_assert_eq!(whole.len(), datas.len());
            for (event, data) in whole.iter().zip(&datas) {
                prop_assert_eq!(&event.data, data);
            }
        }
    }
}
