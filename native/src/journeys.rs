//! One journeys shard: the sessions of the identities that hash to it, and the event-level day
//! figures, as in `operators/journeys.py` before it moved here.
//!
//! Events arrive with their identity already decided (see `identity.rs`); event-level figures
//! are counted as they come, session-level figures when a session closes. A session closes once
//! the identity shards' watermark, less the stitching allowance, is past its last event by more
//! than the session gap; an event that would join a closed session is late for sessions.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Pool, Text, WireEvent};
use crate::figures::{self, add, Figures, UNKNOWN};
use crate::identity::{Millis, DEVICE_PREFIX, FOREVER, NEVER};
use crate::tally::{Funnel, DAY_MS, MINUTE_MS};

/// What a journeys shard needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    pub gap_ms: Millis,
    pub stitch_allowance_ms: Millis,
    pub funnels: Vec<Funnel>,
}

/// The snapshot layout (`operators/journeys.py::JourneySnapshot`, version 2): a msgpack map.
pub const SNAPSHOT_VERSION: u32 = 2;
/// Version 1 also kept the newest event time taken, which nothing read: a store written by it
/// still restores (the field is ignored).
const READABLE_VERSIONS: [u32; 2] = [1, SNAPSHOT_VERSION];

#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    open_events: HashMap<&'a str, Vec<WireEvent<'a>>>,
    closed_end: HashMap<&'a str, Millis>,
    active_minutes: HashMap<i64, Vec<&'a str>>,
    upstream_ms: Millis,
}

#[derive(Deserialize)]
struct SnapshotIn<'a> {
    version: u32,
    #[serde(borrow)]
    open_events: HashMap<&'a str, Vec<WireEvent<'a>>>,
    closed_end: HashMap<&'a str, Millis>,
    active_minutes: HashMap<i64, Vec<&'a str>>,
    upstream_ms: Millis,
}

/// What a batch changed besides the figures.
#[derive(Default)]
pub struct Taken {
    /// Minute index → customers active for the first time in that minute.
    pub active: HashMap<i64, i64>,
    /// Session events that arrived after their session had closed.
    pub late: i64,
}

/// A closed session: its identity and events, in time order.
pub type Closed = (Text, Vec<Event>);

/// Sessions and figures of the identities of one journeys shard.
pub struct Journeys {
    pub config: Config,
    /// The identity shards' watermark this shard has acted on.
    pub upstream_ms: Millis,
    /// Identity → its open events, sorted by (time, id).
    open: HashMap<Text, Vec<Event>>,
    /// Identity → the end of its last closed session (until idle for a day).
    closed_end: HashMap<Text, Millis>,
    /// Minute index → the customers active in it.
    active: HashMap<i64, HashSet<Text>>,
    /// When each identity's earliest open session may close; stale entries are skipped.
    due: BinaryHeap<Reverse<(Millis, Text)>>,
    due_at: HashMap<Text, Millis>,
    open_from_minute: Option<i64>,
    open_from: Millis,
    forgot_below: i64,
    pub pool: Pool,
}

/// The last event time of the earliest open session (its events up to the first gap).
fn first_end_ms(events: &[Event], gap_ms: Millis) -> Millis {
    let mut previous = events[0].event_ms;
    for event in &events[1..] {
        if event.event_ms - previous > gap_ms {
            break;
        }
        previous = event.event_ms;
    }
    previous
}

/// Close the sessions of `events` no event at or after `safe_ms` can still join.
fn close_sessions(events: &mut Vec<Event>, gap_ms: Millis, safe_ms: Millis) -> Vec<Vec<Event>> {
    let mut closed = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < events.len() {
        let ends_here = index + 1 == events.len()
            || events[index + 1].event_ms - events[index].event_ms > gap_ms;
        if ends_here {
            if safe_ms - events[index].event_ms <= gap_ms {
                break;
            }
            closed.push(events[start..=index].to_vec());
            start = index + 1;
        }
        index += 1;
    }
    if start > 0 {
        events.drain(..start);
    }
    closed
}

impl Journeys {
    /// An empty shard.
    pub fn new(config: Config) -> Self {
        Journeys {
            config,
            upstream_ms: NEVER,
            open: HashMap::new(),
            closed_end: HashMap::new(),
            active: HashMap::new(),
            due: BinaryHeap::new(),
            due_at: HashMap::new(),
            open_from_minute: None,
            open_from: FOREVER,
            forgot_below: NEVER,
            pool: Pool::default(),
        }
    }

    /// A shard from its snapshot bytes.
    pub fn restore(config: Config, snapshot: &[u8]) -> Result<Self, String> {
        let state: SnapshotIn<'_> = rmp_serde::from_slice(snapshot)
            .map_err(|e| format!("the journeys snapshot cannot be read: {e}"))?;
        if !READABLE_VERSIONS.contains(&state.version) {
            return Err(format!(
                "journeys snapshot version {} cannot be restored (this code reads {SNAPSHOT_VERSION})",
                state.version
            ));
        }
        let mut shard = Journeys::new(config);
        shard.upstream_ms = state.upstream_ms;
        for (identity, events) in state.open_events {
            if events.is_empty() {
                continue;
            }
            let identity = shard.pool.text(identity);
            let mut events: Vec<Event> = events.iter().map(|e| shard.pool.event(e)).collect();
            events.sort();
            let when = first_end_ms(&events, shard.config.gap_ms) + shard.config.gap_ms;
            shard.open.insert(identity.clone(), events);
            shard.schedule(&identity, when);
        }
        for (identity, end) in state.closed_end {
            let identity = shard.pool.text(identity);
            shard.closed_end.insert(identity, end);
        }
        for (minute, customers) in state.active_minutes {
            let customers = customers.into_iter().map(|c| shard.pool.text(c)).collect();
            shard.active.insert(minute, customers);
        }
        Ok(shard)
    }

    /// The state as msgpack bytes (the layout of `JourneySnapshot`, readable by older code).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut active_minutes: HashMap<i64, Vec<&str>> = HashMap::new();
        for (minute, customers) in &self.active {
            let mut sorted: Vec<&str> = customers.iter().map(|c| &**c).collect();
            sorted.sort_unstable();
            active_minutes.insert(*minute, sorted);
        }
        let out = SnapshotOut {
            version: SNAPSHOT_VERSION,
            open_events: self
                .open
                .iter()
                .map(|(i, events)| (&**i, events.iter().map(Event::wire).collect()))
                .collect(),
            closed_end: self.closed_end.iter().map(|(i, e)| (&**i, *e)).collect(),
            active_minutes,
            upstream_ms: self.upstream_ms,
        };
        rmp_serde::to_vec_named(&out).expect("a snapshot always encodes")
    }

    /// Every event still to come for a session of this shard is at or after this time.
    pub fn safe_ms(&self) -> Millis {
        self.upstream_ms - self.config.stitch_allowance_ms
    }

    /// How many identities have open events.
    pub fn open_identities(&self) -> usize {
        self.open.len()
    }

    /// Take `(identity, event)` items: count the event figures, add app events to their
    /// identity's open sessions. `segment_of` gives the customers' segments.
    pub fn take(
        &mut self,
        items: &[(&str, WireEvent<'_>)],
        upstream_ms: Millis,
        segment_of: &HashMap<String, String>,
        figures: &mut Figures,
    ) -> Taken {
        let mut taken = Taken::default();
        let gap = self.config.gap_ms;
        let unknown = self.pool.text(UNKNOWN);
        let all = self.pool.text("all");
        let mut last_day: Option<(i64, usize)> = None;
        let mut day_counts: Vec<(i64, i64)> = Vec::new();
        for (identity_str, wire) in items {
            let event = self.pool.event(wire);
            let identity = self.pool.text(identity_str);
            let event_ms = event.event_ms;
            let day_index = event_ms.div_euclid(DAY_MS);
            let is_customer = !identity.starts_with(DEVICE_PREFIX);
            if is_customer {
                let minute = event_ms.div_euclid(MINUTE_MS);
                if self
                    .active
                    .entry(minute)
                    .or_default()
                    .insert(identity.clone())
                {
                    *taken.active.entry(minute).or_default() += 1;
                }
            }
            match last_day {
                Some((d, i)) if d == day_index => day_counts[i].1 += 1,
                _ => match day_counts.iter().position(|(d, _)| *d == day_index) {
                    Some(i) => {
                        day_counts[i].1 += 1;
                        last_day = Some((day_index, i));
                    }
                    None => {
                        day_counts.push((day_index, 1));
                        last_day = Some((day_index, day_counts.len() - 1));
                    }
                },
            }
            let day = figures.day(day_index);
            let segment = match segment_of.get(&*identity).filter(|_| is_customer) {
                Some(segment) => self.pool.text(segment),
                None => unknown.clone(),
            };
            let dimensions = [&event.os, &event.app_version, &event.app];
            for (offset, value) in dimensions.into_iter().enumerate() {
                add(
                    &mut day[figures::EVENTS_BY + offset],
                    value.as_ref().unwrap_or(&unknown),
                    1,
                );
            }
            add(&mut day[figures::EVENTS_BY + 3], &event.channel, 1);
            add(&mut day[figures::EVENTS_BY + 4], &segment, 1);
            add(&mut day[figures::EVENTS_BY + figures::ALL], &all, 1);
            match &*event.event_type {
                "screen_view" => {
                    if let Some(screen) = event.screen.as_ref().filter(|s| !s.is_empty()) {
                        add(&mut day[figures::TOP_SCREENS], screen, 1);
                    }
                }
                "error" => {
                    let code = [&event.error_code, &event.screen]
                        .into_iter()
                        .flatten()
                        .find(|t| !t.is_empty())
                        .unwrap_or(&unknown);
                    add(&mut day[figures::TOP_ERRORS], code, 1);
                }
                _ => {}
            }
            if !event.in_session() {
                continue;
            }
            if let Some(end) = self.closed_end.get(&identity) {
                if event_ms <= end + gap {
                    taken.late += 1;
                    continue;
                }
            }
            match self.open.get_mut(&identity) {
                None => {
                    self.open.insert(identity.clone(), vec![event]);
                    // One entry per open identity; a later event moves its due time lazily.
                    self.schedule(&identity, event_ms + gap);
                }
                Some(events) => {
                    let newest = events.last().is_none_or(|last| *last < event);
                    if newest {
                        events.push(event);
                    } else {
                        let at = events.partition_point(|e| *e < event);
                        events.insert(at, event);
                        // An older event (stitched late) may end an earlier session: sooner.
                        let due = self.due_at.get(&identity).copied().unwrap_or(FOREVER);
                        if event_ms + gap < due {
                            self.schedule(&identity, event_ms + gap);
                        }
                    }
                }
            }
        }
        self.upstream_ms = self.upstream_ms.max(upstream_ms);
        taken
    }

    /// Close every session the watermark (or `safe_ms`, at the end of a bounded input) makes
    /// final; return them by identity, each identity's in time order.
    pub fn close(&mut self, safe_ms: Option<Millis>) -> Vec<Closed> {
        let safe = safe_ms.unwrap_or_else(|| self.safe_ms());
        let gap = self.config.gap_ms;
        let mut closed = Vec::new();
        // Each identity's earliest session closes as soon as the watermark is past its end by
        // the gap, whatever later events of the identity have arrived by then.
        while let Some(Reverse((due, _))) = self.due.peek() {
            if *due >= safe {
                break;
            }
            let Some(Reverse((due, identity))) = self.due.pop() else {
                break;
            };
            if self.due_at.get(&identity) != Some(&due) {
                continue; // replaced by a newer entry
            }
            self.due_at.remove(&identity);
            let Some(events) = self.open.get_mut(&identity) else {
                continue;
            };
            let current = first_end_ms(events, gap) + gap;
            if current > due {
                self.schedule(&identity, current); // its first session grew
                continue;
            }
            for session in close_sessions(events, gap, safe) {
                self.closed_end
                    .insert(identity.clone(), session[session.len() - 1].event_ms);
                closed.push((identity.clone(), session));
            }
            match self.open.get(&identity) {
                Some(events) if !events.is_empty() => {
                    let when = first_end_ms(events, gap) + gap;
                    self.schedule(&identity, when);
                }
                _ => {
                    self.open.remove(&identity);
                }
            }
        }
        if safe_ms.is_some() {
            self.open_from_minute = None;
        }
        self.forget(safe.min(self.safe_ms()));
        closed
    }

    /// A time no open session here starts before, looked up once per minute of progress (in
    /// between, sessions close and new ones start at or after the watermark the per-minute
    /// series also waits for, so the value stays a bound).
    pub fn open_from_ms(&mut self) -> Millis {
        let minute = self.upstream_ms.div_euclid(MINUTE_MS);
        if self.open_from_minute != Some(minute) {
            self.open_from_minute = Some(minute);
            self.open_from = self
                .open
                .values()
                .filter_map(|events| events.first().map(|e| e.event_ms))
                .min()
                .unwrap_or(FOREVER);
        }
        self.open_from
    }

    /// Look at `identity`'s earliest session again when the watermark passes `when`.
    fn schedule(&mut self, identity: &Text, when: Millis) {
        if self.due_at.get(identity) != Some(&when) {
            self.due_at.insert(identity.clone(), when);
            self.due.push(Reverse((when, identity.clone())));
        }
    }

    /// Free what no future event can touch: idle identities' last session ends, old minutes.
    /// A full pass runs when the oldest minute kept moves, not every batch.
    fn forget(&mut self, safe: Millis) {
        let oldest_minute = (safe - self.config.gap_ms).div_euclid(MINUTE_MS) - 60;
        if oldest_minute <= self.forgot_below {
            return;
        }
        self.forgot_below = oldest_minute;
        let horizon = safe - DAY_MS;
        self.closed_end.retain(|_, end| *end >= horizon);
        self.active.retain(|minute, _| *minute >= oldest_minute);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    fn click(event_ms: Millis, event_id: &str) -> WireEvent<'_> {
        WireEvent {
            event_ms,
            event_id,
            event_type: "click",
            channel: "web",
            customer_id: Some("C1"),
            ..WireEvent::default()
        }
    }

    fn shard() -> Journeys {
        Journeys::new(Config {
            gap_ms: 30 * MIN,
            stitch_allowance_ms: 0,
            funnels: vec![],
        })
    }

    #[test]
    fn a_session_closes_once_the_watermark_is_past_its_end_by_the_gap() {
        let mut journeys = shard();
        let mut figures = Figures::new(figures::FUNNELS);
        let none = HashMap::new();
        let items = [("C1", click(0, "a")), ("C1", click(10 * MIN, "b"))];
        journeys.take(&items, 40 * MIN, &none, &mut figures);
        assert!(journeys.close(None).is_empty());
        journeys.take(&[], 40 * MIN + 1, &none, &mut figures);
        let closed = journeys.close(None);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1.len(), 2);
        // An event that would have joined it is late for sessions.
        let late = journeys.take(&[("C1", click(20 * MIN, "c"))], 0, &none, &mut figures);
        assert_eq!(late.late, 1);
    }

    #[test]
    fn a_snapshot_restores_the_open_sessions() {
        let mut journeys = shard();
        let mut figures = Figures::new(figures::FUNNELS);
        let none = HashMap::new();
        journeys.take(&[("C1", click(0, "a"))], 5 * MIN, &none, &mut figures);
        let restored = Journeys::restore(journeys.config.clone(), &journeys.snapshot()).unwrap();
        assert_eq!(restored.open_identities(), 1);
        assert_eq!(restored.upstream_ms, 5 * MIN);
        let mut restored = restored;
        restored.upstream_ms = 31 * MIN;
        assert_eq!(restored.close(None).len(), 1);
    }
}
