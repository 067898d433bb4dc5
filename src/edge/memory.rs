//! How much memory this process holds, for budgets on work that cannot bound itself.

/// The process's resident set size in bytes (`VmRSS` in /proc/self/status); `None` where
/// there is no /proc.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_size() {
        let rss = super::resident_bytes().expect("Linux has /proc");
        assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
    }
}
