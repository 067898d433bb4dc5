//! Protocol versions mcplock speaks.

use std::fmt;
use std::str::FromStr;

/// A protocol revision mcplock can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProtocolVersion {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

impl ProtocolVersion {
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2024_11_05,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2026_07_28,
    ];
    /// The newest handshake-based revision: what `initialize` offers by default.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;
    /// The newest stateless revision.
    pub const LATEST_MODERN: ProtocolVersion = ProtocolVersion::V2026_07_28;

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// Stateless revisions carry version and capabilities in every request's `_meta`.
    pub fn is_modern(self) -> bool {
        self >= ProtocolVersion::V2026_07_28
    }

    pub fn parse(s: &str) -> Option<ProtocolVersion> {
        ProtocolVersion::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn list() -> String {
        ProtocolVersion::ALL.map(ProtocolVersion::as_str).join(", ")
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `--protocol` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Probe with `server/discover`; fall back to `initialize` for a legacy server.
    Auto,
    /// Exactly this version; anything else the server answers is an error.
    Exactly(ProtocolVersion),
    /// The version a lock recorded: speak its era without probing, accept another version of
    /// the same era (a changed version is drift, not a failure). Never parsed from a flag.
    Recorded(ProtocolVersion),
}

impl FromStr for ProtocolChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(ProtocolChoice::Auto);
        }
        ProtocolVersion::parse(s)
            .map(ProtocolChoice::Exactly)
            .ok_or_else(|| {
                format!(
                    "unknown protocol version {s:?}; use auto or one of {}",
                    ProtocolVersion::list()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_auto() {
        assert_eq!("auto".parse(), Ok(ProtocolChoice::Auto));
        assert_eq!(
            "2025-06-18".parse(),
            Ok(ProtocolChoice::Exactly(ProtocolVersion::V2025_06_18))
        );
        assert!("2025-01-01".parse::<ProtocolChoice>().is_err());
        assert!(ProtocolVersion::V2026_07_28.is_modern());
        assert!(!ProtocolVersion::V2025_11_25.is_modern());
    }
}
