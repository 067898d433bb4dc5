//! What the proxy writes to one side goes through a queue drained by a pump of its own, so the
//! loop that reads both sides never waits on a peer that is not reading (a server that stopped
//! reading its input while it writes, a host that does not read its answers). The queue is
//! bounded in bytes and every write in time: past either bound the side is taken as stalled
//! and the session ends, with answers to whoever still waits where that is possible.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Which peer a queue writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Host,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Host => "the host",
            Side::Server => "the server",
        }
    }
}

/// Why a side can no longer be written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stalled {
    pub side: Side,
    pub why: String,
}

/// The sending end: pushing never waits.
pub struct Outbox {
    side: Side,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    cap: usize,
}

/// The draining end, run beside the loop by [`pump`].
pub struct Queue {
    side: Side,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// A queue to `side` holding at most `cap` bytes not yet written.
pub fn outbox(side: Side, cap: usize) -> (Outbox, Queue) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            side,
            tx,
            queued: Arc::clone(&queued),
            cap,
        },
        Queue { side, rx, queued },
    )
}

impl Outbox {
    /// Queues one frame. Refused when the side is gone or its queue is over its cap (it has not
    /// been reading): the caller ends the session.
    pub fn push(&self, frame: Vec<u8>) -> Result<(), Stalled> {
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::SeqCst);
        if before > 0 && before + len > self.cap {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            return Err(Stalled {
                side: self.side,
                why: format!(
                    "{} has not read {before} bytes the proxy wrote to it (more than {} may wait)",
                    self.side.name(),
                    self.cap
                ),
            });
        }
        self.tx.send(frame).map_err(|_| Stalled {
            side: self.side,
            why: format!("{} can no longer be written to", self.side.name()),
        })
    }
}

/// Writes what is queued to `out`, in order, until every sender is gone and the queue is empty
/// (`Ok`), or a write fails or takes longer than `stall` (`Err`, also sent on `faults`).
pub async fn pump<W: AsyncWrite + Unpin>(
    mut out: W,
    mut queue: Queue,
    stall: Duration,
    faults: mpsc::UnboundedSender<Stalled>,
) -> Result<(), Stalled> {
    while let Some(frame) = queue.rx.recv().await {
        let written = tokio::time::timeout(stall, async {
            out.write_all(&frame).await?;
            out.flush().await
        })
        .await;
        queue.queued.fetch_sub(frame.len(), Ordering::SeqCst);
        let why = match written {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => format!("writing to {} failed: {e}", queue.side.name()),
            Err(_) => format!(
                "{} did not read what the proxy wrote for {} s",
                queue.side.name(),
                stall.as_secs_f64()
            ),
        };
        let stalled = Stalled {
            side: queue.side,
            why,
        };
        let _ = faults.send(stalled.clone());
        return Err(stalled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_queue_over_its_cap_refuses_and_a_stalled_write_is_reported() {
        let (boxed, queue) = outbox(Side::Server, 10);
        // One frame is always taken, whatever its size; the next one over the cap is refused.
        boxed.push(vec![b'x'; 64]).unwrap();
        let refused = boxed.push(vec![b'y'; 1]).unwrap_err();
        assert_eq!(refused.side, Side::Server);
        // A reader that never reads: the write stalls past its bound and is reported.
        let (ours, _theirs) = tokio::io::duplex(8);
        let (faults, mut reported) = mpsc::unbounded_channel();
        let end = pump(ours, queue, Duration::from_millis(50), faults).await;
        assert!(end.is_err());
        assert!(reported.recv().await.unwrap().why.contains("did not read"));
    }

    #[tokio::test]
    async fn frames_are_written_in_order_and_the_pump_ends_with_its_senders() {
        let (boxed, queue) = outbox(Side::Host, 1 << 20);
        for n in 0..100u8 {
            boxed.push(vec![n]).unwrap();
        }
        drop(boxed);
        let mut written = Vec::new();
        let (faults, _) = mpsc::unbounded_channel();
        pump(&mut written, queue, Duration::from_secs(5), faults)
            .await
            .unwrap();
        assert_eq!(written, (0..100u8).collect::<Vec<_>>());
    }
}
