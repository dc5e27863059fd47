//! The tiers data is stored in: raw samples, 5-minute and hourly rollup buckets.
//!
//! On disk a tier is one byte (segment header, manifest record), converted with
//! [`StoredTier::as_u8`] and `TryFrom<u8>` there and nowhere else, so an unknown
//! byte is refused where it is read instead of being clamped somewhere later.

use std::fmt;

use crate::query::Tier;
use crate::rollup::{FIVE_MIN_MS, HOUR_MS};

/// A stored tier, finest first (the derived order is that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoredTier {
    /// Raw samples.
    Raw,
    /// 5-minute rollup buckets.
    FiveMin,
    /// 1-hour rollup buckets.
    Hour,
}

impl StoredTier {
    /// Every tier, finest first; `ALL[t.index()] == t`.
    pub const ALL: [StoredTier; 3] = [StoredTier::Raw, StoredTier::FiveMin, StoredTier::Hour];

    /// The byte that stands for this tier on disk: 0, 1 or 2.
    pub const fn as_u8(self) -> u8 {
        match self {
            StoredTier::Raw => 0,
            StoredTier::FiveMin => 1,
            StoredTier::Hour => 2,
        }
    }

    /// The position in per-tier arrays (`[T; 3]`), finest first.
    pub const fn index(self) -> usize {
        self.as_u8() as usize
    }

    /// The next coarser tier, which the downsampler fills from this one.
    pub const fn coarser(self) -> Option<StoredTier> {
        match self {
            StoredTier::Raw => Some(StoredTier::FiveMin),
            StoredTier::FiveMin => Some(StoredTier::Hour),
            StoredTier::Hour => None,
        }
    }

    /// Width of a bucket in ms; `None` for raw samples.
    pub const fn bucket_ms(self) -> Option<i64> {
        match self {
            StoredTier::Raw => None,
            StoredTier::FiveMin => Some(FIVE_MIN_MS),
            StoredTier::Hour => Some(HOUR_MS),
        }
    }

    /// Whether it holds rollup buckets rather than raw samples.
    pub const fn is_rollup(self) -> bool {
        !matches!(self, StoredTier::Raw)
    }

    /// Short name: `raw`, `5m`, `1h`.
    pub const fn name(self) -> &'static str {
        match self {
            StoredTier::Raw => "raw",
            StoredTier::FiveMin => "5m",
            StoredTier::Hour => "1h",
        }
    }
}

impl fmt::Display for StoredTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of reading a tier byte that names no tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownTier(pub u8);

impl fmt::Display for UnknownTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown tier byte {} (0 raw, 1 5m, 2 1h)", self.0)
    }
}

impl std::error::Error for UnknownTier {}

impl TryFrom<u8> for StoredTier {
    type Error = UnknownTier;

    fn try_from(b: u8) -> Result<StoredTier, UnknownTier> {
        match b {
            0 => Ok(StoredTier::Raw),
            1 => Ok(StoredTier::FiveMin),
            2 => Ok(StoredTier::Hour),
            _ => Err(UnknownTier(b)),
        }
    }
}

impl From<StoredTier> for Tier {
    fn from(t: StoredTier) -> Tier {
        match t {
            StoredTier::Raw => Tier::Raw,
            StoredTier::FiveMin => Tier::FiveMin,
            StoredTier::Hour => Tier::Hour,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_unknown_bytes_are_refused() {
        for t in StoredTier::ALL {
            assert_eq!(StoredTier::try_from(t.as_u8()), Ok(t));
            assert_eq!(StoredTier::ALL[t.index()], t);
            assert_eq!(Tier::from(t).index(), Some(t.index()));
            assert_eq!(Tier::from(t).resolution_ms(), t.bucket_ms());
        }
        for b in 3..=u8::MAX {
            assert_eq!(StoredTier::try_from(b), Err(UnknownTier(b)));
        }
        assert_eq!(StoredTier::Raw.coarser(), Some(StoredTier::FiveMin));
        assert_eq!(StoredTier::Hour.coarser(), None);
        assert_eq!(StoredTier::FiveMin.to_string(), "5m");
    }
}
