//! The Python module `clickstream_native`: a shard's dedupe and identities, one call per batch.
//!
//! `ShardCore.take` runs the per-event loop of `operators/shard_state.py::Shard.process` over
//! the batch's `Arrival` structs: dedupe, lateness against the watermark at the batch's start,
//! the archive rows by input position, the counts by minute and event type, the identity state
//! of each device, and the journeys' `SessionEvent` of each on-time event, by journeys shard.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::dedupe::{Dedupe, Minute};
use crate::identity::{self, DeviceEvent, Kind, Millis};

const MINUTE_MS: Millis = 60_000;
/// Past this many entries a cache of shared strings starts again (memory stays bounded).
const CACHE_LIMIT: usize = 500_000;

/// One copy of each repeated string (device ids, app names, screens), so that the open
/// sessions' events share them.
#[derive(Default)]
struct Shared {
    strings: HashMap<String, Py<PyString>>,
}

impl Shared {
    fn get<'py>(&mut self, value: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
        let text = value.to_str()?;
        if let Some(shared) = self.strings.get(text) {
            return Ok(shared.bind(value.py()).clone());
        }
        if self.strings.len() >= CACHE_LIMIT {
            self.strings.clear();
        }
        self.strings.insert(text.to_owned(), value.clone().unbind());
        Ok(value.clone())
    }

    fn get_optional<'py>(&mut self, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if value.is_none() {
            return Ok(value);
        }
        Ok(self.get(value.cast::<PyString>()?)?.into_any())
    }
}

/// A shard's per-customer state: remembered event ids and the identities of its devices.
#[pyclass(name = "ShardCore", module = "clickstream_native", unsendable)]
struct ShardCore {
    identities: identity::ShardIdentities,
    dedupe: Dedupe,
    /// Customer id → (its journeys shard's name, the shard's one copy of the id).
    routes: HashMap<String, (Py<PyString>, Py<PyString>)>,
    devices: Shared,
    words: Shared,
    session_event: Py<PyAny>,
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

#[pymethods]
impl ShardCore {
    /// Empty state, or the identities restored from their snapshot bytes and the remembered ids
    /// from `{minute: [event_id, ...]}`. `session_event` builds the journeys' events,
    /// `journey_shard_name(identity)` names an identity's journeys shard, `force_setattr` sets
    /// an arrival's `known_customer`.
    #[new]
    #[pyo3(signature = (gap_ms, idle_ms, session_event, journey_shard_name, force_setattr, identities=None, seen=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        gap_ms: Millis,
        idle_ms: Millis,
        session_event: Py<PyAny>,
        journey_shard_name: Py<PyAny>,
        force_setattr: Py<PyAny>,
        identities: Option<&[u8]>,
        seen: Option<HashMap<Minute, Vec<String>>>,
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
            devices: Shared::default(),
            words: Shared::default(),
            session_event,
            journey_shard_name,
            force_setattr,
        })
    }

    /// Take a batch of `Arrival`s in event-time order (stable: repeats keep their order).
    ///
    /// Events older than `watermark_ms` are late: archived with the identity known now, not
    /// counted. Returns `(minute_counts, valid, duplicates, late, archive_rows, journeys,
    /// offers)`: counts by minute start and event type; accepted arrivals by
    /// `<source>#<partition>`; `(customer_id, SessionEvent)` of on-time events with a customer
    /// id by journeys shard; their arrivals by journeys shard when `offers`. Anonymous on-time
    /// events go into `undecided` (event_id → SessionEvent) until their identity is decided.
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        arrivals: &Bound<'py, PyList>,
        watermark_ms: Millis,
        undecided: &Bound<'py, PyDict>,
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
        let journeys = PyDict::new(py);
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

            let device_shared = if device.is_none() {
                device.clone()
            } else {
                let shared = self.devices.get(device.cast::<PyString>()?)?;
                let kind = if event_type == "login" {
                    Kind::Login
                } else {
                    Kind::Event
                };
                known.clear();
                self.identities.take(
                    &DeviceEvent {
                        device_id: shared.to_str()?,
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
                shared.into_any()
            };

            let (route_customer, route_name) = match customer_id {
                None => (None, None),
                Some(customer_id) => {
                    if !self.routes.contains_key(customer_id) {
                        if self.routes.len() >= CACHE_LIMIT {
                            self.routes.clear();
                        }
                        let name = self.journey_shard_name.call1(py, (&customer,))?;
                        let name = name.bind(py).cast::<PyString>()?.clone().unbind();
                        let copy = customer.cast::<PyString>()?.clone().unbind();
                        self.routes.insert(customer_id.to_owned(), (name, copy));
                    }
                    let (name, copy) = &self.routes[customer_id];
                    (Some(copy.bind(py).clone()), Some(name.bind(py).clone()))
                }
            };

            let error_code = if event_type == "error" {
                let properties = event.getattr(intern!(py, "properties"))?;
                match properties
                    .cast::<PyDict>()?
                    .get_item(intern!(py, "error_code"))?
                {
                    Some(code) if !code.is_none() => code.str()?.into_any(),
                    _ => py.None().into_bound(py),
                }
            } else {
                py.None().into_bound(py)
            };
            let customer_arg = match &route_customer {
                Some(copy) => copy.clone().into_any(),
                None => py.None().into_bound(py),
            };
            let fields = [
                event_ms.into_pyobject(py)?.into_any(),
                event_id_obj.clone(),
                event_type_obj.clone(),
                event.getattr(intern!(py, "channel"))?,
                device_shared,
                customer_arg,
                self.words
                    .get_optional(event.getattr(intern!(py, "app"))?)?,
                self.words
                    .get_optional(event.getattr(intern!(py, "app_version"))?)?,
                self.words.get_optional(event.getattr(intern!(py, "os"))?)?,
                self.words
                    .get_optional(event.getattr(intern!(py, "screen"))?)?,
                self.words
                    .get_optional(event.getattr(intern!(py, "element"))?)?,
                self.words
                    .get_optional(event.getattr(intern!(py, "form"))?)?,
                error_code,
            ];
            let session_event = self
                .session_event
                .bind(py)
                .call1(PyTuple::new(py, fields)?)?;
            match (route_name, route_customer) {
                (Some(name), Some(copy)) => {
                    let item = PyTuple::new(py, [copy.into_any(), session_event])?;
                    append(&journeys, &name, item.into_any())?;
                    if let Some(offers_out) = &offers_out {
                        append(offers_out, &name, arrival.clone())?;
                    }
                }
                _ => undecided.set_item(&event_id_obj, session_event)?,
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
            journeys,
            offers_out,
        ))
    }

    /// `(event_id, identity)` of every anonymous event the watermark now decides.
    #[pyo3(signature = (watermark_ms, everything=false))]
    fn resolve(&mut self, watermark_ms: Millis, everything: bool) -> Vec<(String, String)> {
        self.identities
            .resolve(watermark_ms, everything)
            .into_iter()
            .map(|d| (d.event_id, d.identity))
            .collect()
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
    module.add_function(wrap_pyfunction!(bytewax_worker, module)?)?;
    module.add("IDENTITY_SNAPSHOT_VERSION", identity::SNAPSHOT_VERSION)?;
    Ok(())
}
