//! The Python module `clickstream_native`: a shard's dedupe and identities, and a journeys
//! shard's sessions and figures, one call per batch.
//!
//! `ShardCore.take` runs the per-event loop of `operators/shard_state.py::Shard.process` over
//! the batch's `Arrival` structs: dedupe, lateness against the watermark at the batch's start,
//! the archive rows by input position, the counts by minute and event type, the identity state
//! of each device, and the journeys' event of each on-time event, written into the bytes of its
//! journeys shard's next batch (see `event.rs`). `JourneysCore.take` reads those bytes.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::dedupe::{Dedupe, Minute};
use crate::event::{self, BatchWriter, WireEvent};
use crate::figures::{self, Figures};
use crate::identity::{self, DeviceEvent, Kind, Millis, DEVICE_PREFIX, FOREVER};
use crate::journeys::{self, Closed, Journeys};
use crate::tally::{Funnel, Step, Tally, MINUTE_MS};

/// Past this many entries the cache of journeys shard names starts again.
const CACHE_LIMIT: usize = 500_000;

fn optional_text<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a str>> {
    if value.is_none() {
        return Ok(None);
    }
    Ok(Some(value.cast::<PyString>()?.to_str()?))
}

/// A shard's per-customer state: remembered event ids and the identities of its devices.
#[pyclass(name = "ShardCore", module = "clickstream_native", unsendable)]
struct ShardCore {
    identities: identity::ShardIdentities,
    dedupe: Dedupe,
    /// Identity → its journeys shard's name.
    routes: HashMap<String, String>,
    /// Anonymous on-time events waiting for their identity: event id → the event's wire bytes.
    undecided: HashMap<String, Vec<u8>>,
    /// The next batch of each journeys shard.
    pending: HashMap<String, BatchWriter>,
    journey_shard_name: Py<PyAny>,
    force_setattr: Py<PyAny>,
}

/// What `take` hands back: see its docstring.
type Taken<'py> = (
    Bound<'py, PyDict>,
    usize,
    usize,
    usize,
    Bound<'py, PyDict>,
    Option<Bound<'py, PyDict>>,
);

fn append<'py>(
    groups: &Bound<'py, PyDict>,
    key: &Bound<'py, PyAny>,
    item: Bound<'py, PyAny>,
) -> PyResult<()> {
    match groups.get_item(key)? {
        Some(list) => list.cast::<PyList>()?.append(item),
        None => groups.set_item(key, PyList::new(groups.py(), [item])?),
    }
}

/// Undecided events from their snapshot bytes: a msgpack map of event id → wire event.
fn read_undecided(bytes: &[u8]) -> PyResult<HashMap<String, Vec<u8>>> {
    let events: HashMap<&str, WireEvent<'_>> = rmp_serde::from_slice(bytes)
        .map_err(|e| PyValueError::new_err(format!("undecided events cannot be read: {e}")))?;
    Ok(events
        .into_iter()
        .map(|(id, wire)| (id.to_owned(), event::encode(&wire)))
        .collect())
}

impl ShardCore {
    /// The journeys shard of an identity (named by Python, remembered).
    fn route(&mut self, py: Python<'_>, identity: &str) -> PyResult<String> {
        if let Some(name) = self.routes.get(identity) {
            return Ok(name.clone());
        }
        if self.routes.len() >= CACHE_LIMIT {
            self.routes.clear();
        }
        let name: String = self
            .journey_shard_name
            .call1(py, (identity,))?
            .extract(py)?;
        self.routes.insert(identity.to_owned(), name.clone());
        Ok(name)
    }
}

#[pymethods]
impl ShardCore {
    /// Empty state, or restored: the identities from their snapshot bytes, the remembered ids
    /// from `{minute: [event_id, ...]}`, the undecided events from their bytes (see
    /// `undecided_snapshot`). `journey_shard_name(identity)` names an identity's journeys
    /// shard, `force_setattr` sets an arrival's `known_customer`.
    #[new]
    #[pyo3(signature = (gap_ms, idle_ms, journey_shard_name, force_setattr, identities=None, seen=None, undecided=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        gap_ms: Millis,
        idle_ms: Millis,
        journey_shard_name: Py<PyAny>,
        force_setattr: Py<PyAny>,
        identities: Option<&[u8]>,
        seen: Option<HashMap<Minute, Vec<String>>>,
        undecided: Option<&[u8]>,
    ) -> PyResult<Self> {
        let identities = match identities {
            None => identity::ShardIdentities::new(gap_ms, idle_ms),
            Some(bytes) => identity::ShardIdentities::restore(gap_ms, idle_ms, bytes)
                .map_err(PyValueError::new_err)?,
        };
        Ok(ShardCore {
            identities,
            dedupe: seen.map(Dedupe::restore).unwrap_or_default(),
            routes: HashMap::new(),
            undecided: undecided
                .map(read_undecided)
                .transpose()?
                .unwrap_or_default(),
            pending: HashMap::new(),
            journey_shard_name,
            force_setattr,
        })
    }

    /// Take a batch of `Arrival`s in event-time order (stable: repeats keep their order).
    ///
    /// Events older than `watermark_ms` are late: archived with the identity known now, not
    /// counted. Returns `(minute_counts, valid, duplicates, late, archive_rows, offers)`:
    /// counts by minute start and event type; accepted arrivals by `<source>#<partition>`; the
    /// arrivals of on-time events with a customer id by journeys shard when `offers`. On-time
    /// events go to their journeys shard's next batch (`journey_batches`); anonymous ones wait
    /// until their identity is decided (`resolve`).
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        arrivals: &Bound<'py, PyList>,
        watermark_ms: Millis,
        offers: bool,
    ) -> PyResult<Taken<'py>> {
        let mut order: Vec<(Millis, Bound<'py, PyAny>)> = Vec::with_capacity(arrivals.len());
        for arrival in arrivals.iter() {
            let event_ms: Millis = arrival.getattr(intern!(py, "event_ms"))?.extract()?;
            order.push((event_ms, arrival));
        }
        order.sort_by_key(|(event_ms, _)| *event_ms);

        let mut counted: HashMap<Minute, HashMap<String, usize>> = HashMap::new();
        let (mut valid, mut duplicates, mut late) = (0, 0, 0);
        let archive_rows = PyDict::new(py);
        let offers_out = offers.then(|| PyDict::new(py));
        let mut last_source: Option<Bound<'py, PyAny>> = None;
        let mut last_partition: i64 = -1;
        let mut rows: Option<Bound<'py, PyList>> = None;
        let mut known = Vec::with_capacity(1);
        let known_customer = intern!(py, "known_customer");

        for (event_ms, arrival) in order {
            let event = arrival.getattr(intern!(py, "event"))?;
            let event_id_obj = event.getattr(intern!(py, "event_id"))?;
            let event_id_str = event_id_obj.cast::<PyString>()?;
            let event_id = event_id_str.to_str()?;
            if self.dedupe.contains(event_id) {
                duplicates += 1;
                continue;
            }
            let minute = event_ms.div_euclid(MINUTE_MS);
            self.dedupe.insert(event_id, minute);
            valid += 1;

            // The archive's rows, by input position.
            let source = arrival.getattr(intern!(py, "source"))?;
            let partition: i64 = arrival.getattr(intern!(py, "partition"))?.extract()?;
            let same_source = last_source
                .as_ref()
                .is_some_and(|s| s.is(&source) || s.eq(&source).unwrap_or(false));
            if rows.is_none() || partition != last_partition || !same_source {
                let position = format!("{}#{partition}", source.cast::<PyString>()?.to_str()?);
                let list = match archive_rows.get_item(&position)? {
                    Some(list) => list.cast_into::<PyList>()?,
                    None => {
                        let list = PyList::empty(py);
                        archive_rows.set_item(&position, &list)?;
                        list
                    }
                };
                rows = Some(list);
                last_source = Some(source);
                last_partition = partition;
            }
            if let Some(list) = &rows {
                list.append(&arrival)?;
            }

            let customer = event.getattr(intern!(py, "customer_id"))?;
            let device = event.getattr(intern!(py, "device_id"))?;
            let event_type_obj = event.getattr(intern!(py, "event_type"))?;
            let event_type = event_type_obj.cast::<PyString>()?.to_str()?;
            let customer_id = if customer.is_none() {
                None
            } else {
                Some(customer.cast::<PyString>()?.to_str()?)
            };
            if event_ms < watermark_ms {
                late += 1;
                if customer_id.is_none() && !device.is_none() {
                    // Only its identity as known now, for the archive.
                    let device_id = device.cast::<PyString>()?.to_str()?;
                    if let Some(customer) = self
                        .identities
                        .known_customer(device_id, event_ms, event_id)
                    {
                        self.force_setattr
                            .call1(py, (&arrival, known_customer, customer))?;
                    }
                }
                continue;
            }
            let per_type = counted.entry(minute).or_default();
            match per_type.get_mut(event_type) {
                Some(n) => *n += 1,
                None => {
                    per_type.insert(event_type.to_owned(), 1);
                }
            }

            if !device.is_none() {
                let kind = if event_type == "login" {
                    Kind::Login
                } else {
                    Kind::Event
                };
                known.clear();
                self.identities.take(
                    &DeviceEvent {
                        device_id: device.cast::<PyString>()?.to_str()?,
                        event_ms,
                        event_id,
                        customer_id,
                        kind,
                    },
                    &mut known,
                );
                if let Some(Some(customer)) = known.first() {
                    // The identity known at this point of the batch, for the archive.
                    self.force_setattr
                        .call1(py, (&arrival, known_customer, customer.as_str()))?;
                }
            }

            // The journeys' event: sent to its customer's journeys shard, or kept until the
            // device's identity decides it.
            let channel = event.getattr(intern!(py, "channel"))?;
            let texts = [
                event.getattr(intern!(py, "app"))?,
                event.getattr(intern!(py, "app_version"))?,
                event.getattr(intern!(py, "os"))?,
                event.getattr(intern!(py, "screen"))?,
                event.getattr(intern!(py, "element"))?,
                event.getattr(intern!(py, "form"))?,
            ];
            let error_code = if event_type == "error" {
                let properties = event.getattr(intern!(py, "properties"))?;
                match properties
                    .cast::<PyDict>()?
                    .get_item(intern!(py, "error_code"))?
                {
                    Some(code) if !code.is_none() => Some(code.str()?),
                    _ => None,
                }
            } else {
                None
            };
            let wire = WireEvent {
                event_ms,
                event_id,
                event_type,
                channel: channel.cast::<PyString>()?.to_str()?,
                device_id: optional_text(&device)?,
                customer_id,
                app: optional_text(&texts[0])?,
                app_version: optional_text(&texts[1])?,
                os: optional_text(&texts[2])?,
                screen: optional_text(&texts[3])?,
                element: optional_text(&texts[4])?,
                form: optional_text(&texts[5])?,
                error_code: error_code.as_ref().map(|c| c.to_str()).transpose()?,
            };
            let encoded = event::encode(&wire);
            match customer_id {
                Some(customer_id) => {
                    let name = self.route(py, customer_id)?;
                    self.pending
                        .entry(name.clone())
                        .or_default()
                        .push_encoded(customer_id, &encoded);
                    if let Some(offers_out) = &offers_out {
                        append(offers_out, &PyString::new(py, &name), arrival.clone())?;
                    }
                }
                None => {
                    self.undecided.insert(event_id.to_owned(), encoded);
                }
            }
        }

        let minute_counts = PyDict::new(py);
        for (minute, per_type) in counted {
            minute_counts.set_item(minute * MINUTE_MS, per_type.into_pyobject(py)?)?;
        }
        Ok((
            minute_counts,
            valid,
            duplicates,
            late,
            archive_rows,
            offers_out,
        ))
    }

    /// Send every anonymous event the watermark now decides to its identity's journeys shard;
    /// return how many.
    #[pyo3(signature = (watermark_ms, everything=false))]
    fn resolve(
        &mut self,
        py: Python<'_>,
        watermark_ms: Millis,
        everything: bool,
    ) -> PyResult<usize> {
        let decided = self.identities.resolve(watermark_ms, everything);
        for d in &decided {
            let Some(encoded) = self.undecided.remove(&d.event_id) else {
                return Err(PyValueError::new_err(format!(
                    "event {} was decided but never waited for its identity",
                    d.event_id
                )));
            };
            let name = self.route(py, &d.identity)?;
            self.pending
                .entry(name)
                .or_default()
                .push_encoded(&d.identity, &encoded);
        }
        Ok(decided.len())
    }

    /// The journeys batches made since the last call: journeys shard name → batch bytes.
    fn journey_batches<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let batches = PyDict::new(py);
        for (name, writer) in self.pending.drain() {
            if !writer.is_empty() {
                batches.set_item(name, PyBytes::new(py, &writer.finish()))?;
            }
        }
        Ok(batches)
    }

    /// The undecided events as msgpack bytes: a map of event id → wire event.
    fn undecided_snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut bytes = Vec::new();
        rmp::encode::write_map_len(&mut bytes, self.undecided.len() as u32)
            .expect("writing to a Vec cannot fail");
        let mut ids: Vec<&String> = self.undecided.keys().collect();
        ids.sort_unstable();
        for id in ids {
            rmp::encode::write_str(&mut bytes, id).expect("writing to a Vec cannot fail");
            bytes.extend_from_slice(&self.undecided[id]);
        }
        PyBytes::new(py, &bytes)
    }

    /// Forget idle devices; return how many.
    fn free_idle(&mut self, watermark_ms: Millis) -> usize {
        self.identities.free_idle(watermark_ms)
    }

    /// Forget the ids of the minutes before `cutoff`, then the oldest minutes over `cap` ids.
    fn evict(&mut self, cutoff: Minute, cap: usize) {
        self.dedupe.evict(cutoff, cap);
    }

    /// How many event ids are remembered.
    #[getter]
    fn remembered_ids(&self) -> usize {
        self.dedupe.len()
    }

    /// The remembered ids as `{minute: msgpack array of ids}`, re-encoding only the minutes that
    /// got new ids since the last call.
    fn seen_segments<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let segments = PyDict::new(py);
        for (minute, bytes) in self.dedupe.segments() {
            segments.set_item(minute, PyBytes::new(py, bytes))?;
        }
        Ok(segments)
    }

    /// The identities as versioned msgpack bytes.
    fn identities_snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.identities.snapshot())
    }

    /// How many devices are remembered.
    #[getter]
    fn device_count(&self) -> usize {
        self.identities.device_count()
    }

    /// Anonymous events still waiting for their identity.
    #[getter]
    fn undecided_count(&self) -> usize {
        self.identities.undecided_count()
    }
}

/// A journeys shard: open sessions, closing, and the day figures of events and sessions.
#[pyclass(name = "JourneysCore", module = "clickstream_native", unsendable)]
struct JourneysCore {
    journeys: Journeys,
}

/// What `JourneysCore.take` and `flush` hand back: see `take`'s docstring.
type JourneysTaken<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyDict>,
    Bound<'py, PyBytes>,
    i64,
);

fn funnel_of((steps, window_ms): (Vec<(String, String)>, Millis)) -> PyResult<Funnel> {
    let steps = steps
        .into_iter()
        .map(|(kind, name)| match kind.as_str() {
            "screen" => Ok(Step::Screen(name)),
            "event" => Ok(Step::EventType(name)),
            _ => Err(PyValueError::new_err(format!(
                "funnel step kind {kind:?} must be 'screen' or 'event'"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Funnel { steps, window_ms })
}

/// Customer id → segment for `customers`, from the Python lookup.
fn segments_of<'a>(
    lookup: &Bound<'_, PyAny>,
    customers: impl Iterator<Item = &'a str>,
) -> PyResult<HashMap<String, String>> {
    let mut unique: Vec<&str> = customers
        .filter(|i| !i.starts_with(DEVICE_PREFIX))
        .collect();
    if unique.is_empty() {
        return Ok(HashMap::new());
    }
    unique.sort_unstable();
    unique.dedup();
    lookup.call1((unique,))?.extract()
}

impl JourneysCore {
    /// Close what is final, tally the closed sessions, and hand the batch's outputs to Python.
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        closed: Vec<Closed>,
        mut figures: Figures,
        active: HashMap<i64, i64>,
        late: i64,
        segments: &Bound<'py, PyAny>,
    ) -> PyResult<JourneysTaken<'py>> {
        let segment_of = segments_of(segments, closed.iter().map(|(i, _)| &**i))?;
        let journeys = &mut self.journeys;
        let mut tally = Tally::new(&mut figures);
        let mut records = Vec::with_capacity(closed.len());
        for (identity, events) in &closed {
            let segment = segment_of
                .get(&**identity)
                .map_or(figures::UNKNOWN, String::as_str);
            records.push(tally.session(
                identity,
                events,
                segment,
                &journeys.config.funnels,
                &mut journeys.pool,
            ));
        }
        let started = tally.finish();
        let sessions = rmp_serde::to_vec_named(&records)
            .map_err(|e| PyValueError::new_err(format!("sessions cannot be written: {e}")))?;

        let minutes = PyDict::new(py);
        for (minute, n) in active {
            let per_minute = PyDict::new(py);
            per_minute.set_item(intern!(py, "active_customers"), n)?;
            minutes.set_item(minute * MINUTE_MS, per_minute)?;
        }
        for (minute, (n, converted)) in started {
            let key = minute * MINUTE_MS;
            let per_minute = match minutes.get_item(key)? {
                Some(existing) => existing.cast_into::<PyDict>()?,
                None => {
                    let fresh = PyDict::new(py);
                    minutes.set_item(key, &fresh)?;
                    fresh
                }
            };
            per_minute.set_item(intern!(py, "sessions_started"), n)?;
            per_minute.set_item(intern!(py, "sessions_converted"), converted)?;
        }
        let out = PyDict::new(py);
        for (day, families) in figures.days {
            for (family, fields) in families.into_iter().enumerate() {
                if fields.is_empty() {
                    continue;
                }
                let counts = PyDict::new(py);
                for (field, n) in fields {
                    counts.set_item(&*field, n)?;
                }
                out.set_item((family, day), counts)?;
            }
        }
        Ok((out, minutes, PyBytes::new(py, &sessions), late))
    }

    fn figures(&self) -> Figures {
        Figures::new(figures::FUNNELS + self.journeys.config.funnels.len())
    }
}

#[pymethods]
impl JourneysCore {
    /// An empty shard, or one restored from `snapshot`. `funnels` are `(steps, window_ms)`,
    /// each step `(kind, name)` with kind `screen` or `event`.
    #[new]
    #[pyo3(signature = (gap_ms, stitch_allowance_ms, funnels, snapshot=None))]
    fn new(
        gap_ms: Millis,
        stitch_allowance_ms: Millis,
        funnels: Vec<(Vec<(String, String)>, Millis)>,
        snapshot: Option<&[u8]>,
    ) -> PyResult<Self> {
        let config = journeys::Config {
            gap_ms,
            stitch_allowance_ms,
            funnels: funnels
                .into_iter()
                .map(funnel_of)
                .collect::<PyResult<Vec<_>>>()?,
        };
        let journeys = match snapshot {
            None => Journeys::new(config),
            Some(bytes) => Journeys::restore(config, bytes).map_err(PyValueError::new_err)?,
        };
        Ok(JourneysCore { journeys })
    }

    /// Take journeys batches (bytes from `ShardCore.journey_batches`); `upstream_ms` is the
    /// sending identity shards' newest watermark, `segments(customer_ids)` gives segments.
    ///
    /// Returns `(figures, minutes, sessions, late)`: `{(family, day index): {field: n}}` with
    /// families numbered as `operators/journeys.py::FAMILIES`; `{minute start: {figure: n}}`;
    /// the closed sessions as a msgpack array of `SessionRecord` maps; app events late for
    /// their session.
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        batches: Vec<Bound<'py, PyBytes>>,
        upstream_ms: Millis,
        segments: &Bound<'py, PyAny>,
    ) -> PyResult<JourneysTaken<'py>> {
        let mut items = Vec::new();
        for batch in &batches {
            items.extend(event::read_batch(batch.as_bytes()).map_err(PyValueError::new_err)?);
        }
        let segment_of = segments_of(segments, items.iter().map(|(i, _)| *i))?;
        let mut figures = self.figures();
        let taken = self
            .journeys
            .take(&items, upstream_ms, &segment_of, &mut figures);
        let closed = self.journeys.close(None);
        self.finish(py, closed, figures, taken.active, taken.late, segments)
    }

    /// At the end of a bounded input: close every open session.
    fn flush<'py>(
        &mut self,
        py: Python<'py>,
        segments: &Bound<'py, PyAny>,
    ) -> PyResult<JourneysTaken<'py>> {
        let closed = self.journeys.close(Some(FOREVER));
        let figures = self.figures();
        self.finish(py, closed, figures, HashMap::new(), 0, segments)
    }

    /// A time no open session here starts before.
    fn open_from_ms(&mut self) -> Millis {
        self.journeys.open_from_ms()
    }

    /// The identity shards' watermark this shard has acted on.
    #[getter]
    fn get_upstream_ms(&self) -> Millis {
        self.journeys.upstream_ms
    }

    #[setter]
    fn set_upstream_ms(&mut self, value: Millis) {
        self.journeys.upstream_ms = value;
    }

    /// How many identities have open sessions.
    #[getter]
    fn open_identities(&self) -> usize {
        self.journeys.open_identities()
    }

    /// The state as versioned msgpack bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.journeys.snapshot())
    }
}

/// The worker Bytewax 0.21 runs a state key on, out of `workers`: its own hash of the key
/// (`StateKey(String)` through `DefaultHasher`, SipHash-1-3 with zero keys) modulo the count.
#[pyfunction]
fn bytewax_worker(key: &str, workers: usize) -> PyResult<usize> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    if workers == 0 {
        return Err(PyValueError::new_err("there is no worker to route to"));
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    Ok(hasher.finish() as usize % workers)
}

#[pymodule]
fn clickstream_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<ShardCore>()?;
    module.add_class::<JourneysCore>()?;
    module.add("FIGURE_FAMILIES", figures::FUNNELS)?;
    module.add_function(wrap_pyfunction!(bytewax_worker, module)?)?;
    module.add("IDENTITY_SNAPSHOT_VERSION", identity::SNAPSHOT_VERSION)?;
    module.add("JOURNEYS_SNAPSHOT_VERSION", journeys::SNAPSHOT_VERSION)?;
    Ok(())
}
