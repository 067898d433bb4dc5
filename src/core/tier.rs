//! Trust tiers: how much a server or a tool may do (assigned in a policy's `tiers:`).

/// Trust tiers, after the connector trust registry model: how much a server or tool may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    PublicContext,
    InternalRead,
    ScopedWrite,
    ApprovalRequired,
    Prohibited,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::PublicContext,
        Tier::InternalRead,
        Tier::ScopedWrite,
        Tier::ApprovalRequired,
        Tier::Prohibited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::PublicContext => "tier_0_public_context",
            Tier::InternalRead => "tier_1_internal_read",
            Tier::ScopedWrite => "tier_2_scoped_write",
            Tier::ApprovalRequired => "tier_3_approval_required",
            Tier::Prohibited => "tier_4_prohibited",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}
