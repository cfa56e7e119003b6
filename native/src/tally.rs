//! A closed session's archive record and figures (PRODUCT.md's session-level BEHEX figures),
//! counted in one pass over its events: what `tests/support/journey_reference.py` computes from
//! a whole input, per session as it closes.

use std::collections::{BTreeSet, HashMap, HashSet};

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use serde::Serialize;

use crate::event::{Event, Pool, Text};
use crate::figures::{self, add, Figures, UNKNOWN};
use crate::identity::{device_identity, Millis, DEVICE_PREFIX};

pub const DAY_MS: Millis = 86_400_000;
pub const MINUTE_MS: Millis = 60_000;
/// More than this many clicks on one screen and element within a second is a rage click.
const RAGE_CLICKS: usize = 3;
const RAGE_WINDOW_MS: Millis = 1000;

/// A funnel step: a screen viewed, or an event type.
#[derive(Clone, Debug)]
pub enum Step {
    Screen(String),
    EventType(String),
}

impl Step {
    fn matches(&self, event: &Event) -> bool {
        match self {
            Step::Screen(name) => {
                &*event.event_type == "screen_view" && event.screen.as_deref() == Some(name)
            }
            Step::EventType(name) => &*event.event_type == name,
        }
    }
}

/// Ordered steps reached within a window from the first.
#[derive(Clone, Debug)]
pub struct Funnel {
    pub steps: Vec<Step>,
    pub window_ms: Millis,
}

impl Funnel {
    /// Whether a session with these screens viewed may reach step 1 (a quick pre-check).
    fn may_start(&self, screens: &HashSet<&str>) -> bool {
        match self.steps.first() {
            Some(Step::Screen(name)) => screens.contains(name.as_str()),
            _ => true,
        }
    }

    /// How many steps a session reaches, in order, within the window from step 1 (every
    /// occurrence of step 1 tried as a start, the best kept).
    pub fn reached(&self, events: &[Event]) -> usize {
        if self.steps.is_empty() {
            return 0;
        }
        let mut best = 0;
        for (start, first) in events.iter().enumerate() {
            if !self.steps[0].matches(first) {
                continue;
            }
            let mut step = 1;
            for event in &events[start + 1..] {
                if step == self.steps.len() || event.event_ms - first.event_ms > self.window_ms {
                    break;
                }
                if self.steps[step].matches(event) {
                    step += 1;
                }
            }
            best = best.max(step);
            if best == self.steps.len() {
                break;
            }
        }
        best
    }
}

/// Deterministic id of a session: a short hash of its identity and first event.
pub fn session_id(identity: &str, first_ms: Millis, first_event_id: &str) -> String {
    let mut hasher = Blake2bVar::new(10).expect("10 bytes is a valid BLAKE2b size");
    hasher.update(format!("{identity}\x1f{first_ms}\x1f{first_event_id}").as_bytes());
    let mut digest = [0u8; 10];
    hasher
        .finalize_variable(&mut digest)
        .expect("the buffer is the digest's size");
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many bursts of more than 3 clicks within 1 second these click times (sorted) hold.
pub fn bursts(times: &[Millis]) -> usize {
    let mut found = 0;
    let mut index = 0;
    while index < times.len() {
        let mut end = index;
        while end + 1 < times.len() && times[end + 1] - times[index] <= RAGE_WINDOW_MS {
            end += 1;
        }
        if end - index + 1 > RAGE_CLICKS {
            found += 1;
            index = end + 1;
        } else {
            index += 1;
        }
    }
    found
}

fn some_text(value: &Option<Text>) -> Option<&Text> {
    value.as_ref().filter(|v| !v.is_empty())
}

/// Forms started with no submit of the same form later in the session (once per start).
pub fn abandoned_forms(events: &[Event]) -> Vec<&Text> {
    let mut abandoned = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let Some(form) = some_text(&event.form) else {
            continue;
        };
        if &*event.event_type != "form_start" {
            continue;
        }
        let submitted = events[index + 1..]
            .iter()
            .any(|e| &*e.event_type == "form_submit" && e.form.as_ref() == Some(form));
        if !submitted {
            abandoned.push(form);
        }
    }
    abandoned
}

/// A closed session as the archive keeps it: `operators/journeys.py::SessionRecord`, written
/// as a msgpack map of its field names.
#[derive(Debug, Serialize)]
pub struct SessionRecord<'a> {
    pub session_id: String,
    pub identity: &'a str,
    pub customer_id: Option<&'a str>,
    pub absorbed_session_ids: Vec<String>,
    pub devices: Vec<&'a str>,
    pub start_ms: Millis,
    pub end_ms: Millis,
    pub duration_ms: Millis,
    pub event_count: usize,
    pub screens: Vec<&'a str>,
    pub exit_screen: Option<&'a str>,
    pub converted: bool,
    pub app: Option<&'a str>,
    pub os: Option<&'a str>,
    pub app_version: Option<&'a str>,
    pub channel: &'a str,
    pub segment: &'a str,
    pub event_ids: Vec<&'a str>,
}

/// Sessions started (and converted) per minute, and the session figures by day.
pub struct Tally<'f> {
    pub figures: &'f mut Figures,
    /// Minute index → (sessions started, sessions converted).
    pub minutes: HashMap<i64, (i64, i64)>,
    /// Days with sessions (their parts get every field of their bases).
    days: HashSet<i64>,
}

impl<'f> Tally<'f> {
    /// Count into `figures`.
    pub fn new(figures: &'f mut Figures) -> Self {
        Tally {
            figures,
            minutes: HashMap::new(),
            days: HashSet::new(),
        }
    }

    /// Count one closed session of `identity` (events in time order); return its record.
    pub fn session<'a>(
        &mut self,
        identity: &'a str,
        events: &'a [Event],
        segment: &'a str,
        funnels: &[Funnel],
        pool: &mut Pool,
    ) -> SessionRecord<'a> {
        let customer = (!identity.starts_with(DEVICE_PREFIX)).then_some(identity);
        let mut path: Vec<&Text> = Vec::new();
        let mut exit_screen: Option<&'a str> = None;
        let mut converted = false;
        let mut devices: BTreeSet<&str> = BTreeSet::new();
        let mut absorbed: Vec<(&str, String)> = Vec::new();
        let mut clicks: Vec<(Text, Vec<Millis>)> = Vec::new();
        let mut started: Vec<&Text> = Vec::new();
        let mut submitted: HashSet<&Text> = HashSet::new();
        let mut last_device: Option<&str> = None;
        for event in events {
            match &*event.event_type {
                "screen_view" => {
                    exit_screen = event.screen.as_deref();
                    if let Some(screen) = some_text(&event.screen) {
                        path.push(screen);
                    }
                }
                "click" => {
                    if let Some(element) = some_text(&event.element) {
                        let screen = some_text(&event.screen).map_or(UNKNOWN, |s| s);
                        let target = pool.text(&format!("{screen}|{element}"));
                        match clicks.iter_mut().find(|(t, _)| *t == target) {
                            Some((_, times)) => times.push(event.event_ms),
                            None => clicks.push((target, vec![event.event_ms])),
                        }
                    }
                }
                "conversion" => converted = true,
                "form_start" => {
                    if let Some(form) = some_text(&event.form) {
                        if !started.contains(&form) {
                            started.push(form);
                        }
                    }
                }
                "form_submit" => {
                    if let Some(form) = some_text(&event.form) {
                        submitted.insert(form);
                    }
                }
                _ => {}
            }
            if let Some(device) = some_text(&event.device_id) {
                let device: &str = device;
                if last_device != Some(device) {
                    devices.insert(device);
                    last_device = Some(device);
                }
                if customer.is_some()
                    && event.customer_id.is_none()
                    && !absorbed.iter().any(|(d, _)| *d == device)
                {
                    let id = session_id(&device_identity(device), event.event_ms, &event.event_id);
                    absorbed.push((device, id));
                }
            }
        }
        let first = &events[0];
        let last = &events[events.len() - 1];
        let segment = if customer.is_some() { segment } else { UNKNOWN };
        let record = SessionRecord {
            session_id: session_id(identity, first.event_ms, &first.event_id),
            identity,
            customer_id: customer,
            absorbed_session_ids: absorbed.into_iter().map(|(_, id)| id).collect(),
            devices: devices.into_iter().collect(),
            start_ms: first.event_ms,
            end_ms: last.event_ms,
            duration_ms: last.event_ms - first.event_ms,
            event_count: events.len(),
            screens: path.iter().map(|s| &***s).collect(),
            exit_screen,
            converted,
            app: first.app.as_deref(),
            os: first.os.as_deref(),
            app_version: first.app_version.as_deref(),
            channel: &first.channel,
            segment,
            event_ids: events.iter().map(|e| &*e.event_id).collect(),
        };

        let minute = first.event_ms.div_euclid(MINUTE_MS);
        let counts = self.minutes.entry(minute).or_default();
        counts.0 += 1;
        counts.1 += i64::from(converted);
        let day_index = first.event_ms.div_euclid(DAY_MS);
        self.days.insert(day_index);
        let day = self.figures.day(day_index);
        let conversions = i64::from(converted);
        let dimensions = [&first.os, &first.app_version, &first.app];
        for (offset, value) in dimensions.into_iter().enumerate() {
            let field = some_text(value)
                .cloned()
                .unwrap_or_else(|| pool.text(UNKNOWN));
            add(&mut day[figures::SESSIONS_BY + offset], &field, 1);
            add(
                &mut day[figures::CONVERSIONS_BY + offset],
                &field,
                conversions,
            );
        }
        let channel = if first.channel.is_empty() {
            pool.text(UNKNOWN)
        } else {
            first.channel.clone()
        };
        let segment_text = pool.text(if segment.is_empty() { UNKNOWN } else { segment });
        let all = pool.text("all");
        for (offset, field) in [(3, &channel), (4, &segment_text), (figures::ALL, &all)] {
            add(&mut day[figures::SESSIONS_BY + offset], field, 1);
            add(
                &mut day[figures::CONVERSIONS_BY + offset],
                field,
                conversions,
            );
        }
        if let Some(exit) = exit_screen.filter(|s| !s.is_empty()) {
            add(&mut day[figures::EXIT_SCREENS], &pool.text(exit), 1);
        }
        for pair in path.windows(2) {
            if pair[0] != pair[1] {
                let transition = pool.text(&format!("{}|{}", pair[0], pair[1]));
                add(&mut day[figures::TRANSITIONS], &transition, 1);
            }
        }
        let screens: HashSet<&Text> = path.iter().copied().collect();
        for screen in &screens {
            add(&mut day[figures::SCREEN_SESSIONS], screen, 1);
            if converted {
                add(&mut day[figures::SCREEN_CONVERSIONS], screen, 1);
            }
        }
        for (button, times) in &clicks {
            add(&mut day[figures::BUTTON_SESSIONS], button, 1);
            if converted {
                add(&mut day[figures::BUTTON_CONVERSIONS], button, 1);
            }
            if times.len() > RAGE_CLICKS {
                let found = bursts(times) as i64;
                if found > 0 {
                    add(&mut day[figures::RAGE_CLICKS], button, found);
                }
            }
        }
        for form in &started {
            add(&mut day[figures::FORMS_STARTED], form, 1);
            if submitted.contains(form) {
                add(&mut day[figures::FORMS_SUBMITTED], form, 1);
            }
        }
        if !started.is_empty() {
            for form in abandoned_forms(events) {
                add(&mut day[figures::ABANDONED_FORMS], form, 1);
            }
        }
        let screen_names: HashSet<&str> = screens.iter().map(|s| &***s).collect();
        for (index, funnel) in funnels.iter().enumerate() {
            if funnel.may_start(&screen_names) {
                let reached = funnel.reached(events);
                for step in 1..=reached {
                    let field = pool.text(&format!("step_{step}"));
                    add(&mut day[figures::FUNNELS + index], &field, 1);
                }
            }
        }
        record
    }

    /// Give every part family a field (0 if need be) for every field of its base, on each day
    /// with sessions.
    pub fn finish(self) -> HashMap<i64, (i64, i64)> {
        for day_index in &self.days {
            let day = self.figures.day(*day_index);
            for (base, part) in figures::PARTS {
                let missing: Vec<Text> = day[base]
                    .keys()
                    .filter(|field| !day[part].contains_key(*field))
                    .cloned()
                    .collect();
                for field in missing {
                    day[part].insert(field, 0);
                }
            }
        }
        self.minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::WireEvent;

    fn at(pool: &mut Pool, seconds: Millis, event_id: &str, event_type: &str) -> Event {
        pool.event(&WireEvent {
            event_ms: seconds * 1000,
            event_id,
            event_type,
            channel: "web",
            device_id: Some("D1"),
            customer_id: Some("C1"),
            ..WireEvent::default()
        })
    }

    #[test]
    fn the_session_id_is_the_python_one() {
        // hashlib.blake2b(b"C1\x1f1000\x1fe1", digest_size=10).hexdigest()
        assert_eq!(session_id("C1", 1000, "e1"), "6e654f920d812c0e7676");
    }

    #[test]
    fn four_clicks_within_a_second_are_one_burst() {
        assert_eq!(bursts(&[0, 100, 200, 300]), 1);
        assert_eq!(bursts(&[0, 100, 200, 1300]), 0);
        assert_eq!(bursts(&[0, 1, 2, 3, 2000, 2001, 2002, 2003]), 2);
    }

    #[test]
    fn a_form_started_and_never_submitted_is_abandoned() {
        let mut pool = Pool::default();
        let mut start = at(&mut pool, 0, "a", "form_start");
        start.form = Some(pool.text("loan"));
        let mut submit = at(&mut pool, 1, "b", "form_submit");
        submit.form = Some(pool.text("loan"));
        assert!(abandoned_forms(&[start.clone(), submit.clone()]).is_empty());
        let reversed = [submit, start];
        let abandoned: Vec<&str> = abandoned_forms(&reversed)
            .into_iter()
            .map(|f| &**f)
            .collect();
        assert_eq!(abandoned, vec!["loan"]);
    }

    #[test]
    fn a_session_counts_its_path_exit_and_funnel() {
        let mut pool = Pool::default();
        let view = |pool: &mut Pool, s, id, screen| {
            let mut event = at(pool, s, id, "screen_view");
            event.screen = Some(pool.text(screen));
            event
        };
        let events = [
            view(&mut pool, 0, "a", "loan_application"),
            view(&mut pool, 10, "b", "dashboard"),
            at(&mut pool, 20, "c", "conversion"),
        ];
        let funnel = Funnel {
            steps: vec![
                Step::Screen("loan_application".to_owned()),
                Step::EventType("conversion".to_owned()),
            ],
            window_ms: 60_000,
        };
        let mut figures = Figures::new(figures::FUNNELS + 1);
        let mut tally = Tally::new(&mut figures);
        let record = tally.session("C1", &events, "gold", &[funnel], &mut pool);
        assert_eq!(record.screens, vec!["loan_application", "dashboard"]);
        assert_eq!(record.exit_screen, Some("dashboard"));
        assert!(record.converted);
        assert_eq!(record.segment, "gold");
        assert_eq!(tally.finish()[&0], (1, 1));
        let day = &figures.days[&0];
        assert_eq!(day[figures::TRANSITIONS]["loan_application|dashboard"], 1);
        assert_eq!(day[figures::FUNNELS]["step_2"], 1);
        assert_eq!(day[figures::CONVERSIONS_BY + figures::ALL]["all"], 1);
    }
}
