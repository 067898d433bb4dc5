//! Reading newline-delimited frames without letting a peer make us buffer without bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What one call to [`read_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line (without its `\n`) is in the buffer.
    Line,
    /// The stream ended cleanly between frames.
    Eof,
    /// The stream ended in the middle of a frame; the partial bytes are in the buffer.
    Truncated,
    /// The frame grew past the cap before a newline arrived.
    TooLong,
}

/// Reads one frame into `buf` (cleared first). At most `cap` bytes are kept; a longer frame
/// yields [`Frame::TooLong`] as soon as the cap is passed, without reading the rest.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Frame> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Frame::Eof
            } else {
                Frame::Truncated
            });
        }
        match available.iter().position(|b| *b == b'\n') {
            Some(i) => {
                if buf.len() + i > cap {
                    return Ok(Frame::TooLong);
                }
                buf.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                return Ok(Frame::Line);
            }
            None => {
                let n = available.len();
                if buf.len() + n > cap {
                    return Ok(Frame::TooLong);
                }
                buf.extend_from_slice(available);
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn frames(input: &[u8], cap: usize) -> Vec<(Frame, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let frame = read_frame(&mut reader, &mut buf, cap).await.unwrap();
            let stop = frame != Frame::Line;
            out.push((frame, buf.clone()));
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_across_small_buffers() {
        let got = frames(b"hello\nworld!\n", 100).await;
        assert_eq!(got[0], (Frame::Line, b"hello".to_vec()));
        assert_eq!(got[1], (Frame::Line, b"world!".to_vec()));
        assert_eq!(got[2].0, Frame::Eof);
    }

    #[tokio::test]
    async fn caps_long_frames_and_flags_truncation() {
        assert_eq!(frames(b"0123456789\n", 5).await[0].0, Frame::TooLong);
        assert_eq!(
            frames(b"01234\n", 5).await[0],
            (Frame::Line, b"01234".to_vec())
        );
        assert_eq!(frames(b"012345\n", 5).await[0].0, Frame::TooLong);
        let got = frames(b"ok\npartial", 100).await;
        assert_eq!(got[1], (Frame::Truncated, b"partial".to_vec()));
    }
}
