//! Work over many independent items spread over the machine's cores (scoped threads; order
//! kept). Below a threshold it runs on the calling thread: threads cost more than small work.

/// Fewer items than this are mapped on the calling thread.
const MIN_PARALLEL: usize = 512;
/// At most this many threads, whatever the machine says.
const MAX_THREADS: usize = 8;

/// `items.iter().map(f).collect()`, in chunks on up to as many threads as there are cores.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads < 2 || items.len() < MIN_PARALLEL {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                // A panic in `f` is a bug; re-raise it rather than return a short result.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_length_above_and_below_the_threshold() {
        for n in [0, 1, MIN_PARALLEL - 1, MIN_PARALLEL, 10_007] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = map(&items, |i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
