//! Dedupe of a shard: the event ids seen, remembered by the minute of their first arrival, for a
//! bounded window and up to a cap (PRODUCT.md: a repeated `event_id` counts once).

use std::collections::HashMap;

/// One minute of event time: `event_ms.div_euclid(60_000)`.
pub type Minute = i64;

/// The ids a shard remembers, by minute, with each minute's snapshot bytes kept until it
/// changes (a snapshot then re-encodes only the minutes that got new ids).
#[derive(Default)]
pub struct Dedupe {
    seen: HashMap<String, Minute>,
    by_minute: HashMap<Minute, Vec<String>>,
    encoded: HashMap<Minute, (usize, Vec<u8>)>,
    evicted_below: Option<Minute>,
}

impl Dedupe {
    /// Remember these ids, by minute (from a snapshot).
    pub fn restore(by_minute: HashMap<Minute, Vec<String>>) -> Self {
        let seen = by_minute
            .iter()
            .flat_map(|(minute, ids)| ids.iter().map(move |id| (id.clone(), *minute)))
            .collect();
        Dedupe {
            seen,
            by_minute,
            ..Dedupe::default()
        }
    }

    /// Whether an id is remembered.
    pub fn contains(&self, event_id: &str) -> bool {
        self.seen.contains_key(event_id)
    }

    /// Remember a new id under the minute of its first arrival.
    pub fn insert(&mut self, event_id: &str, minute: Minute) {
        self.seen.insert(event_id.to_owned(), minute);
        self.by_minute
            .entry(minute)
            .or_default()
            .push(event_id.to_owned());
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forget the minutes before `cutoff`, then the oldest minutes over `cap` ids.
    ///
    /// A full pass runs only when the cutoff moves to a new minute or the cap is exceeded.
    pub fn evict(&mut self, cutoff: Minute, cap: usize) {
        let mut cutoff = cutoff;
        if self.seen.len() > cap {
            let mut per_minute: Vec<(Minute, usize)> = self
                .by_minute
                .iter()
                .map(|(m, ids)| (*m, ids.len()))
                .collect();
            per_minute.sort_unstable_by(|a, b| b.cmp(a));
            let mut kept = 0;
            for (minute, n) in per_minute {
                if kept + n > cap {
                    cutoff = cutoff.max(minute + 1);
                    break;
                }
                kept += n;
            }
        }
        if self.evicted_below.is_some_and(|below| cutoff <= below) {
            return;
        }
        let old: Vec<Minute> = self
            .by_minute
            .keys()
            .copied()
            .filter(|m| *m < cutoff)
            .collect();
        for minute in old {
            if let Some(ids) = self.by_minute.remove(&minute) {
                for id in ids {
                    self.seen.remove(&id);
                }
            }
            self.encoded.remove(&minute);
        }
        self.evicted_below = Some(cutoff);
    }

    /// Each minute's ids as msgpack bytes (an array of strings), re-encoding only the minutes
    /// that got new ids since the last call.
    pub fn segments(&mut self) -> Vec<(Minute, &[u8])> {
        for (minute, ids) in &self.by_minute {
            let fresh = self
                .encoded
                .get(minute)
                .is_some_and(|(count, _)| *count == ids.len());
            if !fresh {
                let bytes = rmp_serde::to_vec(ids).expect("a list of ids always encodes");
                self.encoded.insert(*minute, (ids.len(), bytes));
            }
        }
        let mut segments: Vec<(Minute, &[u8])> = self
            .encoded
            .iter()
            .map(|(minute, (_, bytes))| (*minute, bytes.as_slice()))
            .collect();
        segments.sort_unstable_by_key(|(minute, _)| *minute);
        segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_remembered_until_its_minute_leaves_the_window() {
        let mut dedupe = Dedupe::default();
        dedupe.insert("a", 10);
        dedupe.insert("b", 11);
        assert!(dedupe.contains("a"));
        dedupe.evict(11, 100);
        assert!(!dedupe.contains("a"));
        assert!(dedupe.contains("b"));
        assert_eq!(dedupe.len(), 1);
    }

    #[test]
    fn over_the_cap_the_oldest_minutes_go_first() {
        let mut dedupe = Dedupe::default();
        for (i, minute) in [1, 1, 2, 2, 3].into_iter().enumerate() {
            dedupe.insert(&format!("e{i}"), minute);
        }
        dedupe.evict(0, 3);
        assert_eq!(
            dedupe.len(),
            3,
            "minutes 2 and 3 fit under the cap, minute 1 does not"
        );
        assert!(!dedupe.contains("e0") && !dedupe.contains("e1"));
        assert!(dedupe.contains("e2") && dedupe.contains("e4"));
    }

    #[test]
    fn segments_round_trip_through_a_restore() {
        let mut dedupe = Dedupe::default();
        dedupe.insert("a", 5);
        dedupe.insert("b", 5);
        dedupe.insert("c", 7);
        let by_minute: HashMap<Minute, Vec<String>> = dedupe
            .segments()
            .into_iter()
            .map(|(m, bytes)| (m, rmp_serde::from_slice(bytes).unwrap()))
            .collect();
        let restored = Dedupe::restore(by_minute);
        assert!(restored.contains("a") && restored.contains("b") && restored.contains("c"));
        assert_eq!(restored.len(), 3);
    }
}
