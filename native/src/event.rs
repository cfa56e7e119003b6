//! What the journeys keep of one event, as it crosses from the identity shards to the journeys
//! shards and as it waits in an open session.
//!
//! On the wire an event is a msgpack array in `SessionEvent`'s field order (the layout
//! `operators/sessions.py::SessionEvent` had, so snapshots written by the Python journeys read
//! as they are): `[event_ms, event_id, event_type, channel, device_id, customer_id, app,
//! app_version, os, screen, element, form, error_code]`. A journeys batch is a msgpack array of
//! `[identity, event]` pairs.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::identity::Millis;

/// Text shared by every event that holds it (device ids, screens, apps, event types).
pub type Text = Rc<str>;

/// One event as the wire carries it, borrowing its text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WireEvent<'a> {
    pub event_ms: Millis,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub channel: &'a str,
    pub device_id: Option<&'a str>,
    /// As sent: None for an anonymous event, whatever identity it was given.
    pub customer_id: Option<&'a str>,
    pub app: Option<&'a str>,
    pub app_version: Option<&'a str>,
    pub os: Option<&'a str>,
    pub screen: Option<&'a str>,
    pub element: Option<&'a str>,
    pub form: Option<&'a str>,
    pub error_code: Option<&'a str>,
}

/// One event of an open session, its repeated text shared through a [`Pool`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_ms: Millis,
    pub event_id: Box<str>,
    pub event_type: Text,
    pub channel: Text,
    pub device_id: Option<Text>,
    pub customer_id: Option<Text>,
    pub app: Option<Text>,
    pub app_version: Option<Text>,
    pub os: Option<Text>,
    pub screen: Option<Text>,
    pub element: Option<Text>,
    pub form: Option<Text>,
    pub error_code: Option<Text>,
}

impl Ord for Event {
    /// By time, then id (unique after the dedupe).
    fn cmp(&self, other: &Self) -> Ordering {
        (self.event_ms, &self.event_id).cmp(&(other.event_ms, &other.event_id))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Event {
    /// The event as the wire and the snapshots carry it.
    pub fn wire(&self) -> WireEvent<'_> {
        WireEvent {
            event_ms: self.event_ms,
            event_id: &self.event_id,
            event_type: &self.event_type,
            channel: &self.channel,
            device_id: self.device_id.as_deref(),
            customer_id: self.customer_id.as_deref(),
            app: self.app.as_deref(),
            app_version: self.app_version.as_deref(),
            os: self.os.as_deref(),
            screen: self.screen.as_deref(),
            element: self.element.as_deref(),
            form: self.form.as_deref(),
            error_code: self.error_code.as_deref(),
        }
    }

    /// App events (mobile, web) make sessions; ATM, branch and core events do not.
    pub fn in_session(&self) -> bool {
        matches!(&*self.channel, "mobile" | "web")
    }
}

/// Past this many strings the pool starts again (events already made keep their copies).
const POOL_LIMIT: usize = 1_000_000;

/// One copy of each repeated string.
#[derive(Default)]
pub struct Pool {
    strings: HashSet<Text>,
}

impl Pool {
    /// The shared copy of `text`.
    pub fn text(&mut self, text: &str) -> Text {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        if self.strings.len() >= POOL_LIMIT {
            self.strings.clear();
        }
        let shared: Text = Rc::from(text);
        self.strings.insert(shared.clone());
        shared
    }

    fn optional(&mut self, text: Option<&str>) -> Option<Text> {
        text.map(|t| self.text(t))
    }

    /// An event of the wire, its text shared.
    pub fn event(&mut self, wire: &WireEvent<'_>) -> Event {
        Event {
            event_ms: wire.event_ms,
            event_id: wire.event_id.into(),
            event_type: self.text(wire.event_type),
            channel: self.text(wire.channel),
            device_id: self.optional(wire.device_id),
            customer_id: self.optional(wire.customer_id),
            app: self.optional(wire.app),
            app_version: self.optional(wire.app_version),
            os: self.optional(wire.os),
            screen: self.optional(wire.screen),
            element: self.optional(wire.element),
            form: self.optional(wire.form),
            error_code: self.optional(wire.error_code),
        }
    }
}

/// Decode a journeys batch: `[identity, event]` pairs.
pub fn read_batch(bytes: &[u8]) -> Result<Vec<(&str, WireEvent<'_>)>, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("a journeys batch cannot be read: {e}"))
}

/// `[identity, event]` pairs written one at a time into a msgpack array (its length filled in
/// by [`BatchWriter::finish`]).
pub struct BatchWriter {
    bytes: Vec<u8>,
    count: u32,
}

impl Default for BatchWriter {
    fn default() -> Self {
        // An array32 header whose length is patched at the end.
        BatchWriter {
            bytes: vec![0xdd, 0, 0, 0, 0],
            count: 0,
        }
    }
}

impl BatchWriter {
    /// Add one pair; `event` is an event already encoded as a wire array.
    pub fn push_encoded(&mut self, identity: &str, event: &[u8]) {
        self.bytes.push(0x92);
        rmp::encode::write_str(&mut self.bytes, identity).expect("writing to a Vec cannot fail");
        self.bytes.extend_from_slice(event);
        self.count += 1;
    }

    /// How many pairs were added.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no pair was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[1..5].copy_from_slice(&self.count.to_be_bytes());
        self.bytes
    }
}

/// An event encoded as its wire array.
pub fn encode(event: &WireEvent<'_>) -> Vec<u8> {
    rmp_serde::to_vec(event).expect("an event always encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_what_was_written() {
        let event = WireEvent {
            event_ms: 1_000,
            event_id: "e1",
            event_type: "click",
            channel: "web",
            device_id: Some("D1"),
            element: Some("pay"),
            ..WireEvent::default()
        };
        let mut writer = BatchWriter::default();
        writer.push_encoded("C1", &encode(&event));
        writer.push_encoded("device:D1", &encode(&event));
        let bytes = writer.finish();
        let read = read_batch(&bytes).unwrap();
        assert_eq!(read, vec![("C1", event), ("device:D1", event)]);
    }

    #[test]
    fn the_pool_shares_one_copy() {
        let mut pool = Pool::default();
        let a = pool.text("dashboard");
        let b = pool.text("dashboard");
        assert!(Rc::ptr_eq(&a, &b));
    }
}
