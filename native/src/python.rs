//! The Python module `clickstream_native`: one call per shard batch.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::identity::{self, DeviceEvent, Kind, Millis};

/// The identities of every device of a shard (see `identity.rs`).
#[pyclass(name = "ShardIdentities", module = "clickstream_native")]
struct ShardIdentities {
    inner: identity::ShardIdentities,
}

fn kind_of(code: u8) -> PyResult<Kind> {
    match code {
        0 => Ok(Kind::Late),
        1 => Ok(Kind::Event),
        2 => Ok(Kind::Login),
        _ => Err(PyValueError::new_err(format!(
            "event kind {code} is not 0 (late), 1 (event) or 2 (login)"
        ))),
    }
}

#[pymethods]
impl ShardIdentities {
    /// Empty, or restored from the bytes of `snapshot()`.
    #[new]
    #[pyo3(signature = (gap_ms, idle_ms, snapshot=None))]
    fn new(gap_ms: Millis, idle_ms: Millis, snapshot: Option<&[u8]>) -> PyResult<Self> {
        let inner = match snapshot {
            None => identity::ShardIdentities::new(gap_ms, idle_ms),
            Some(bytes) => identity::ShardIdentities::restore(gap_ms, idle_ms, bytes)
                .map_err(PyValueError::new_err)?,
        };
        Ok(ShardIdentities { inner })
    }

    /// Record a batch of `(device_id, event_ms, event_id, customer_id | None, kind)` tuples in
    /// the order the shard accepted them (kind: 0 late, 1 event, 2 login). Returns the customer
    /// known at that point of the batch for each anonymous event, in order.
    fn record_batch(&mut self, events: &Bound<'_, PyList>) -> PyResult<Vec<Option<String>>> {
        let mut known = Vec::new();
        for item in events.iter() {
            let fields = item.cast::<PyTuple>()?;
            let device = fields.get_item(0)?;
            let event_id = fields.get_item(2)?;
            let customer = fields.get_item(3)?;
            let customer_id = if customer.is_none() {
                None
            } else {
                Some(customer.cast::<PyString>()?.to_str()?)
            };
            let event = DeviceEvent {
                device_id: device.cast::<PyString>()?.to_str()?,
                event_ms: fields.get_item(1)?.extract()?,
                event_id: event_id.cast::<PyString>()?.to_str()?,
                customer_id,
                kind: kind_of(fields.get_item(4)?.extract()?)?,
            };
            self.inner.take(&event, &mut known);
        }
        Ok(known)
    }

    /// `(event_id, identity)` of every anonymous event the watermark now decides.
    #[pyo3(signature = (watermark_ms, everything=false))]
    fn resolve(&mut self, watermark_ms: Millis, everything: bool) -> Vec<(String, String)> {
        self.inner
            .resolve(watermark_ms, everything)
            .into_iter()
            .map(|d| (d.event_id, d.identity))
            .collect()
    }

    /// Forget idle devices; return how many.
    fn free_idle(&mut self, watermark_ms: Millis) -> usize {
        self.inner.free_idle(watermark_ms)
    }

    /// The customer of the device's latest login at or before a moment, as known now.
    fn known_customer(&self, device_id: &str, event_ms: Millis, event_id: &str) -> Option<String> {
        self.inner
            .known_customer(device_id, event_ms, event_id)
            .map(str::to_owned)
    }

    /// The state as versioned msgpack bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.snapshot())
    }

    /// How many devices are remembered.
    #[getter]
    fn device_count(&self) -> usize {
        self.inner.device_count()
    }

    /// Anonymous events still waiting for their identity.
    #[getter]
    fn undecided_count(&self) -> usize {
        self.inner.undecided_count()
    }
}

#[pymodule]
fn clickstream_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<ShardIdentities>()?;
    module.add("IDENTITY_SNAPSHOT_VERSION", identity::SNAPSHOT_VERSION)?;
    Ok(())
}
