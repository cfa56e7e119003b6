//! The journeys' day figures as counts by family and day, before they are Redis keys.
//!
//! Families are numbered; Python hands the journeys shard their names and Redis types in this
//! order (`operators/journeys.py::FAMILIES`, the names of docs/redis-keys.md) and turns
//! `(family, day)` into a key. Funnels follow the fixed families, in the configured order.

use std::collections::HashMap;

use crate::event::Text;

/// What a missing dimension, screen or segment is counted as.
pub const UNKNOWN: &str = "unknown";

/// The cross-sections, in `state/redis_keys.py::DIMENSIONS` order.
pub const DIMENSIONS: usize = 6;
/// `by_<dimension>:events`: events by os, app version, app, channel, segment, all.
pub const EVENTS_BY: usize = 0;
/// `by_<dimension>:sessions`.
pub const SESSIONS_BY: usize = EVENTS_BY + DIMENSIONS;
/// `by_<dimension>:conversions`.
pub const CONVERSIONS_BY: usize = SESSIONS_BY + DIMENSIONS;
/// The `all` cross-section's offset within a dimension block.
pub const ALL: usize = DIMENSIONS - 1;
pub const TOP_SCREENS: usize = CONVERSIONS_BY + DIMENSIONS;
pub const TOP_ERRORS: usize = TOP_SCREENS + 1;
pub const EXIT_SCREENS: usize = TOP_ERRORS + 1;
pub const TRANSITIONS: usize = EXIT_SCREENS + 1;
pub const SCREEN_SESSIONS: usize = TRANSITIONS + 1;
pub const SCREEN_CONVERSIONS: usize = SCREEN_SESSIONS + 1;
pub const BUTTON_SESSIONS: usize = SCREEN_CONVERSIONS + 1;
pub const BUTTON_CONVERSIONS: usize = BUTTON_SESSIONS + 1;
pub const RAGE_CLICKS: usize = BUTTON_CONVERSIONS + 1;
pub const FORMS_STARTED: usize = RAGE_CLICKS + 1;
pub const FORMS_SUBMITTED: usize = FORMS_STARTED + 1;
pub const ABANDONED_FORMS: usize = FORMS_SUBMITTED + 1;
/// The first funnel's family; funnel `i` is `FUNNELS + i`.
pub const FUNNELS: usize = ABANDONED_FORMS + 1;

/// (base, part) families of the sessions: the part has a field (0 if need be) for every field
/// of the base, so that a rate has its denominator's every field.
pub const PARTS: [(usize, usize); DIMENSIONS + 3] = [
    (SESSIONS_BY, CONVERSIONS_BY),
    (SESSIONS_BY + 1, CONVERSIONS_BY + 1),
    (SESSIONS_BY + 2, CONVERSIONS_BY + 2),
    (SESSIONS_BY + 3, CONVERSIONS_BY + 3),
    (SESSIONS_BY + 4, CONVERSIONS_BY + 4),
    (SESSIONS_BY + 5, CONVERSIONS_BY + 5),
    (SCREEN_SESSIONS, SCREEN_CONVERSIONS),
    (BUTTON_SESSIONS, BUTTON_CONVERSIONS),
    (FORMS_STARTED, FORMS_SUBMITTED),
];

/// Field counts of one day, by family.
pub type Day = Vec<HashMap<Text, i64>>;

/// Day index → the day's families.
#[derive(Default)]
pub struct Figures {
    pub days: HashMap<i64, Day>,
    families: usize,
}

impl Figures {
    /// No figure yet, for `families` families (the fixed ones and the funnels).
    pub fn new(families: usize) -> Self {
        Figures {
            days: HashMap::new(),
            families,
        }
    }

    /// The families of one day.
    pub fn day(&mut self, day: i64) -> &mut Day {
        let families = self.families;
        self.days
            .entry(day)
            .or_insert_with(|| vec![HashMap::new(); families])
    }
}

/// Add `n` to one field of a family.
pub fn add(family: &mut HashMap<Text, i64>, field: &Text, n: i64) {
    match family.get_mut(field) {
        Some(count) => *count += n,
        None => {
            family.insert(field.clone(), n);
        }
    }
}
