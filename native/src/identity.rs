//! Identity of an event (PRODUCT.md, "Identity"), decided per device in event-time order.
//!
//! The same rules as `tests/support/journey_reference.py::identities`, decided as the shard's
//! watermark moves. An event with a customer id is that customer's. An anonymous event is
//! decided once the watermark has passed it, so that every login at or before it has arrived:
//!
//! 1. the customer of the device's latest login at or before the event;
//! 2. else, if the device's events from this one up to a later login have no gap over the
//!    session gap, that login's customer (the anonymous start of a journey belongs to whoever
//!    logs in);
//! 3. else the device itself, once the device has been quiet for longer than the gap.
//!
//! Moments are `(event_ms, event_id)` pairs, so equal times order by id (byte order of UTF-8
//! is code point order, as in Python).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Event time in epoch milliseconds.
pub type Millis = i64;
/// Before any event.
pub const NEVER: Millis = -(1 << 62);
/// After every event (the end of a bounded input).
pub const FOREVER: Millis = 1 << 62;
/// The prefix of a device's anonymous identity (never equal to a customer id).
pub const DEVICE_PREFIX: &str = "device:";

/// Where an event stands in a device's time: `(event_ms, event_id)`.
pub type Moment = (Millis, String);

/// A login: when, and which customer logged in.
pub type Login = (Millis, String, String);

/// What the shard knows of an event when it records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Older than the watermark: only its identity as known now is asked for (archive).
    Late,
    /// An on-time event that is not a login.
    Event,
    /// An on-time login.
    Login,
}

/// The anonymous identity of a device.
pub fn device_identity(device_id: &str) -> String {
    format!("{DEVICE_PREFIX}{device_id}")
}

/// Recoverable identity state of one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Logins, sorted; older ones pruned once irrelevant.
    pub logins: Vec<Login>,
    /// The device's events since its oldest undecided event, sorted.
    pub times: Vec<Moment>,
    /// Anonymous events not decided yet, sorted.
    pub pending: Vec<Moment>,
    /// Newest event time of the device (for freeing idle devices).
    pub last_seen_ms: Millis,
}

fn at_or_before(moment: (Millis, &str), event_ms: Millis, event_id: &str) -> bool {
    moment <= (event_ms, event_id)
}

fn insert_sorted<T: Ord>(items: &mut Vec<T>, item: T) {
    if items.last().is_none_or(|last| *last < item) {
        items.push(item);
    } else {
        let at = items.partition_point(|x| *x <= item);
        items.insert(at, item);
    }
}

impl Default for DeviceState {
    fn default() -> Self {
        DeviceState {
            logins: Vec::new(),
            times: Vec::new(),
            pending: Vec::new(),
            last_seen_ms: NEVER,
        }
    }
}

impl DeviceState {
    /// A logged-in event, not a login, after one of the device's logins.
    ///
    /// Such an event is never on a chain: an anonymous event before that login stops at it (or
    /// at an earlier one), and one after it is that login's customer's. Nothing of it needs
    /// keeping for stitching.
    fn after_login(&self, event_ms: Millis, event_id: &str, logged_in: bool, kind: Kind) -> bool {
        if !logged_in || kind == Kind::Login {
            return false;
        }
        match self.logins.first() {
            Some(first) => at_or_before((first.0, &first.1), event_ms, event_id),
            None => false,
        }
    }

    /// Record one on-time event of this device.
    fn record(&mut self, event_ms: Millis, event_id: &str, customer: Option<&str>, kind: Kind) {
        match customer {
            Some(customer) if kind == Kind::Login => {
                insert_sorted(
                    &mut self.logins,
                    (event_ms, event_id.to_owned(), customer.to_owned()),
                );
            }
            _ => {
                if self.after_login(event_ms, event_id, customer.is_some(), kind) {
                    return;
                }
            }
        }
        insert_sorted(&mut self.times, (event_ms, event_id.to_owned()));
        if customer.is_none() {
            insert_sorted(&mut self.pending, (event_ms, event_id.to_owned()));
        }
    }

    /// The index past the last login at or before a moment.
    fn logins_until(&self, event_ms: Millis, event_id: &str) -> usize {
        self.logins
            .partition_point(|l| at_or_before((l.0, &l.1), event_ms, event_id))
    }

    /// The customer of the latest login at or before this moment, as known now.
    pub fn known_customer(&self, event_ms: Millis, event_id: &str) -> Option<&str> {
        let index = self.logins_until(event_ms, event_id);
        index.checked_sub(1).map(|i| self.logins[i].2.as_str())
    }

    /// Decide every pending event the watermark makes final; return them in time order, and the
    /// watermark at which the next still pending one may be decided.
    ///
    /// Events at or after the watermark may still arrive (older ones are late), so a decision is
    /// made only once no such event could change it: the event itself is older than the
    /// watermark (no login at or before it can still come), a login the chain reaches is older
    /// than the watermark (no other login can still come between), and a gap over the session
    /// gap is final once the watermark is past its start by the gap.
    fn resolve(
        &mut self,
        device_id: &str,
        gap_ms: Millis,
        watermark_ms: Millis,
    ) -> (Vec<Decided>, Millis) {
        let cut = self.pending.partition_point(|p| p.0 < watermark_ms);
        let mut next = self.pending.get(cut).map_or(FOREVER, |p| p.0 + 1);
        if cut == 0 {
            return (Vec::new(), next);
        }
        let mut decided = Vec::new();
        let mut keep = Vec::new();
        for (event_ms, event_id) in &self.pending[..cut] {
            match self.decide(device_id, gap_ms, *event_ms, event_id, watermark_ms) {
                Ok(identity) => decided.push(Decided {
                    event_id: event_id.clone(),
                    identity,
                }),
                Err(until) => {
                    next = next.min(until);
                    keep.push((*event_ms, event_id.clone()));
                }
            }
        }
        if !decided.is_empty() {
            keep.extend(self.pending.drain(cut..));
            self.pending = keep;
            self.prune(watermark_ms);
        }
        (decided, next)
    }

    /// The identity of one anonymous event older than the watermark, or the watermark it waits
    /// for.
    fn decide(
        &self,
        device_id: &str,
        gap_ms: Millis,
        event_ms: Millis,
        event_id: &str,
        watermark_ms: Millis,
    ) -> Result<String, Millis> {
        if let Some(customer) = self.known_customer(event_ms, event_id) {
            return Ok(customer.to_owned());
        }
        // Follow the device's events forward while no gap exceeds the session gap.
        let start = self
            .times
            .partition_point(|t| (t.0, t.1.as_str()) < (event_ms, event_id));
        let next_login = self.logins.get(self.logins_until(event_ms, event_id));
        let mut previous = event_ms;
        for (later_ms, later_id) in &self.times[start..] {
            if later_ms - previous > gap_ms {
                // Final only if no event can still arrive within the gap after `previous`.
                return if watermark_ms.saturating_sub(previous) > gap_ms {
                    Ok(device_identity(device_id))
                } else {
                    Err(previous + gap_ms + 1)
                };
            }
            previous = *later_ms;
            if let Some(login) = next_login {
                if login.0 == *later_ms && login.1 == *later_id {
                    // Final only if no other login can still arrive before this one.
                    return if login.0 < watermark_ms {
                        Ok(login.2.clone())
                    } else {
                        Err(login.0 + 1)
                    };
                }
            }
        }
        // The chain ends at the device's last event: anonymous once the gap has surely passed.
        if watermark_ms.saturating_sub(previous) > gap_ms {
            return Ok(device_identity(device_id));
        }
        Err(previous + gap_ms + 1)
    }

    /// Drop event times and logins that no decision can need any more.
    fn prune(&mut self, watermark_ms: Millis) {
        // A chain runs forward from its event: times are needed from the oldest undecided
        // event, or from the watermark, where the next on-time event may arrive.
        let horizon: (Millis, &str) = match self.pending.first() {
            Some(oldest) if (oldest.0, oldest.1.as_str()) < (watermark_ms, "") => {
                (oldest.0, oldest.1.as_str())
            }
            _ => (watermark_ms, ""),
        };
        let cut = self
            .times
            .partition_point(|t| (t.0, t.1.as_str()) < horizon);
        if cut > 0 {
            self.times.drain(..cut);
        }
        // Logins: every one after the watermark, and the latest one at or before it.
        let index = self.logins.partition_point(|l| l.0 <= watermark_ms);
        if index > 1 {
            self.logins.drain(..index - 1);
        }
    }
}

/// An anonymous event whose identity is now decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    pub event_id: String,
    pub identity: String,
}

/// One event of a batch, as the shard hands it over.
#[derive(Clone, Copy, Debug)]
pub struct DeviceEvent<'a> {
    pub device_id: &'a str,
    pub event_ms: Millis,
    pub event_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub kind: Kind,
}

/// The snapshot of a shard's devices, as versioned msgpack bytes.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    devices: Vec<(String, DeviceState)>,
}

/// The version of the bytes `ShardIdentities::snapshot` writes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The identities of every device of a shard, freed when a device goes idle.
pub struct ShardIdentities {
    gap_ms: Millis,
    idle_ms: Millis,
    devices: HashMap<String, DeviceState>,
    /// Devices an event may have made decidable since the last `resolve`.
    touched: HashSet<String>,
    /// (when a device may next be decidable, device), one live entry per device.
    due: BinaryHeap<Reverse<(Millis, String)>>,
    scheduled: HashMap<String, Millis>,
    freed_at: Millis,
    watermark_ms: Millis,
}

impl ShardIdentities {
    /// Empty state, for the given session gap (also the stitching gap) and idle time (a device
    /// with nothing undecided and no event for this long is forgotten, its last login with it).
    pub fn new(gap_ms: Millis, idle_ms: Millis) -> Self {
        ShardIdentities {
            gap_ms,
            idle_ms,
            devices: HashMap::new(),
            touched: HashSet::new(),
            due: BinaryHeap::new(),
            scheduled: HashMap::new(),
            freed_at: NEVER,
            watermark_ms: NEVER,
        }
    }

    /// The state restored from `snapshot` bytes.
    pub fn restore(gap_ms: Millis, idle_ms: Millis, snapshot: &[u8]) -> Result<Self, String> {
        let decoded: Snapshot = rmp_serde::from_slice(snapshot)
            .map_err(|e| format!("identity snapshot cannot be read: {e}"))?;
        if decoded.version != SNAPSHOT_VERSION {
            return Err(format!(
                "identity snapshot version {} cannot be restored (this code reads {SNAPSHOT_VERSION})",
                decoded.version
            ));
        }
        let mut shard = ShardIdentities::new(gap_ms, idle_ms);
        for (name, state) in decoded.devices {
            if !state.pending.is_empty() {
                shard.touched.insert(name.clone());
            }
            shard.devices.insert(name, state);
        }
        Ok(shard)
    }

    /// The state as versioned msgpack bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut devices: Vec<(&String, &DeviceState)> = self.devices.iter().collect();
        devices.sort_unstable_by(|a, b| a.0.cmp(b.0));
        #[derive(Serialize)]
        struct Borrowed<'a> {
            version: u32,
            devices: Vec<(&'a String, &'a DeviceState)>,
        }
        rmp_serde::to_vec(&Borrowed {
            version: SNAPSHOT_VERSION,
            devices,
        })
        .expect("identity state always encodes")
    }

    /// How many devices are remembered.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Anonymous events still waiting for their identity.
    pub fn undecided_count(&self) -> usize {
        self.devices.values().map(|d| d.pending.len()).sum()
    }

    /// The customer of the device's latest login at or before this moment, as known now.
    pub fn known_customer(
        &self,
        device_id: &str,
        event_ms: Millis,
        event_id: &str,
    ) -> Option<&str> {
        self.devices
            .get(device_id)
            .and_then(|d| d.known_customer(event_ms, event_id))
    }

    /// Record one batch of a shard's device events, in the order the shard accepted them.
    ///
    /// Returns, for each anonymous event of the batch in order, the customer of the latest
    /// login on its device at or before it as known at that point of the batch (what the
    /// archive calls the identity known at ingest). Late events are only looked up.
    pub fn record_batch(&mut self, events: &[DeviceEvent<'_>]) -> Vec<Option<String>> {
        let mut known = Vec::new();
        for event in events {
            self.take(event, &mut known);
        }
        known
    }

    /// One event of [`Self::record_batch`], its known customer pushed to `known` if anonymous.
    pub fn take(&mut self, event: &DeviceEvent<'_>, known: &mut Vec<Option<String>>) {
        if event.customer_id.is_none() {
            known.push(
                self.known_customer(event.device_id, event.event_ms, event.event_id)
                    .map(str::to_owned),
            );
        }
        if event.kind != Kind::Late {
            self.record(event);
        }
    }

    fn record(&mut self, event: &DeviceEvent<'_>) {
        let device = match self.devices.get_mut(event.device_id) {
            Some(device) => device,
            None => self.devices.entry(event.device_id.to_owned()).or_default(),
        };
        let DeviceEvent {
            event_ms,
            event_id,
            customer_id,
            kind,
            ..
        } = *event;
        if event_ms > device.last_seen_ms {
            device.last_seen_ms = event_ms;
        }
        if device.after_login(event_ms, event_id, customer_id.is_some(), kind) {
            // Most events of a logged-in device: only its activity changes.
            return;
        }
        device.record(event_ms, event_id, customer_id, kind);
        // Only an anonymous event (to schedule) or a login (it may end a chain) can make an
        // undecided event decidable before its scheduled check; other events just wait for it.
        if customer_id.is_none() || (kind == Kind::Login && !device.pending.is_empty()) {
            if !self.touched.contains(event.device_id) {
                self.touched.insert(event.device_id.to_owned());
            }
        } else {
            let size = device.times.len();
            if size >= 64 && size.is_power_of_two() {
                // A logged-in device is not resolved every batch: trim its history here, at
                // each power of two so that the cost stays constant per event.
                device.prune(self.watermark_ms);
            }
        }
    }

    /// Decide what the watermark allows on the devices with undecided events (every device
    /// when `everything`), in device order.
    pub fn resolve(&mut self, watermark_ms: Millis, everything: bool) -> Vec<Decided> {
        self.watermark_ms = self.watermark_ms.max(watermark_ms);
        let mut candidates: HashSet<String> = if everything {
            self.touched.clear();
            self.devices.keys().cloned().collect()
        } else {
            std::mem::take(&mut self.touched)
        };
        while let Some(Reverse((when, _))) = self.due.peek() {
            if *when > watermark_ms {
                break;
            }
            let Some(Reverse((when, name))) = self.due.pop() else {
                break;
            };
            if self.scheduled.get(&name) == Some(&when) {
                self.scheduled.remove(&name);
                candidates.insert(name);
            }
        }
        let mut names: Vec<String> = candidates.into_iter().collect();
        names.sort_unstable();
        let mut decided = Vec::new();
        for name in names {
            let Some(device) = self.devices.get_mut(&name) else {
                continue;
            };
            let Some(oldest) = device.pending.first() else {
                continue;
            };
            if oldest.0 >= watermark_ms {
                // Nothing decidable yet: look again when the watermark passes it.
                let when = oldest.0 + 1;
                self.schedule(name, when);
                continue;
            }
            let (found, next) = device.resolve(&name, self.gap_ms, watermark_ms);
            decided.extend(found);
            if !device.pending.is_empty() {
                self.schedule(name, next);
            }
        }
        decided
    }

    fn schedule(&mut self, name: String, when: Millis) {
        if self.scheduled.get(&name) != Some(&when) {
            self.scheduled.insert(name.clone(), when);
            self.due.push(Reverse((when, name)));
        }
    }

    /// Forget devices idle for longer than the idle time; return how many. A full pass at most
    /// once per minute of event time.
    pub fn free_idle(&mut self, watermark_ms: Millis) -> usize {
        if watermark_ms.saturating_sub(self.freed_at) < 60_000 {
            return 0;
        }
        self.freed_at = watermark_ms;
        let cutoff = watermark_ms.saturating_sub(self.idle_ms);
        let before = self.devices.len();
        self.devices
            .retain(|_, d| d.last_seen_ms >= cutoff || !d.pending.is_empty());
        before - self.devices.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const GAP: Millis = 30 * MIN;

    fn event<'a>(
        device_id: &'a str,
        minute: Millis,
        event_id: &'a str,
        customer_id: Option<&'a str>,
    ) -> DeviceEvent<'a> {
        DeviceEvent {
            device_id,
            event_ms: minute * MIN,
            event_id,
            customer_id,
            kind: Kind::Event,
        }
    }

    fn login<'a>(
        device_id: &'a str,
        minute: Millis,
        event_id: &'a str,
        customer: &'a str,
    ) -> DeviceEvent<'a> {
        DeviceEvent {
            kind: Kind::Login,
            ..event(device_id, minute, event_id, Some(customer))
        }
    }

    fn decided(shard: &mut ShardIdentities, minute: Millis) -> Vec<(String, String)> {
        shard
            .resolve(minute * MIN, false)
            .into_iter()
            .map(|d| (d.event_id, d.identity))
            .collect()
    }

    fn pair(event_id: &str, identity: &str) -> (String, String) {
        (event_id.to_owned(), identity.to_owned())
    }

    #[test]
    fn the_anonymous_start_belongs_to_whoever_logs_in() {
        let mut shard = ShardIdentities::new(GAP, 24 * 60 * MIN);
        shard.record_batch(&[
            event("D1", 0, "splash", None),
            event("D1", 10, "menu", None),
        ]);
        assert!(decided(&mut shard, 20).is_empty(), "a login may still come");
        shard.record_batch(&[login("D1", 25, "login", "C1")]);
        assert_eq!(
            decided(&mut shard, 26),
            vec![pair("splash", "C1"), pair("menu", "C1")]
        );
    }

    #[test]
    fn a_gap_over_the_session_gap_before_the_login_leaves_the_device() {
        let mut shard = ShardIdentities::new(GAP, 24 * 60 * MIN);
        shard.record_batch(&[
            event("D1", 0, "early", None),
            login("D1", 31, "login", "C1"),
        ]);
        assert_eq!(decided(&mut shard, 40), vec![pair("early", "device:D1")]);
    }

    #[test]
    fn a_quiet_device_becomes_anonymous_once_the_gap_has_passed() {
        let mut shard = ShardIdentities::new(GAP, 24 * 60 * MIN);
        shard.record_batch(&[event("D1", 0, "alone", None)]);
        assert!(decided(&mut shard, 30).is_empty());
        assert_eq!(decided(&mut shard, 31), vec![pair("alone", "device:D1")]);
    }

    #[test]
    fn after_a_login_the_device_is_its_customer_and_late_events_are_only_looked_up() {
        let mut shard = ShardIdentities::new(GAP, 24 * 60 * MIN);
        let late = DeviceEvent {
            kind: Kind::Late,
            ..event("D1", 6, "late", None)
        };
        let known = shard.record_batch(&[
            login("D1", 5, "login", "C7"),
            event("D1", 4, "before", None),
            late,
        ]);
        assert_eq!(known, vec![None, Some("C7".to_owned())]);
        assert_eq!(decided(&mut shard, 10), vec![pair("before", "C7")]);
        assert_eq!(
            shard.undecided_count(),
            0,
            "the late event is not decided here"
        );
    }

    #[test]
    fn a_snapshot_restores_the_same_decisions() {
        let mut shard = ShardIdentities::new(GAP, 24 * 60 * MIN);
        shard.record_batch(&[event("D1", 0, "a", None), event("D2", 1, "b", None)]);
        let mut restored = ShardIdentities::restore(GAP, 24 * 60 * MIN, &shard.snapshot()).unwrap();
        shard.record_batch(&[login("D1", 2, "l", "C1")]);
        restored.record_batch(&[login("D1", 2, "l", "C1")]);
        assert_eq!(decided(&mut shard, 40), decided(&mut restored, 40));
        assert!(ShardIdentities::restore(GAP, MIN, b"\x92\x09\x90").is_err());
    }

    #[test]
    fn idle_devices_are_forgotten_but_one_with_undecided_events_is_kept() {
        let mut shard = ShardIdentities::new(GAP, 60 * MIN);
        for i in 0..300 {
            let name = format!("D{i}");
            let id = format!("l{i}");
            shard.record_batch(&[login(&name, 0, &id, "C1")]);
        }
        shard.record_batch(&[event("Dwait", 120, "anon", None)]);
        shard.resolve(0, false);
        assert_eq!(shard.free_idle(120 * MIN), 300);
        assert_eq!(shard.device_count(), 1);
    }
}
