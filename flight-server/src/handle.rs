//! Statement handles and tickets that carry everything a later call needs.
//!
//! The server keeps no per-client state between calls: a prepared statement's handle holds
//! its SQL and, once bound, its parameter values; a ticket holds the handle. So a `DoGet`
//! works whichever request came before it, on whichever connection, and a server restart
//! between `GetFlightInfo` and `DoGet` loses nothing. A statement with effects (DDL, COPY,
//! CREATE MODEL) runs once, when its `FlightInfo` is made; its (small) result travels in the
//! ticket, so fetching it does not run the statement again.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use prost::Message;

use crate::error::ServeError;

/// Version of the handle layout; a handle of another version is refused, not misread.
const HANDLE_VERSION: u32 = 1;

/// A statement's results carried in a ticket are capped at this many bytes of Arrow IPC.
pub const MAX_CARRIED_RESULT_BYTES: usize = 4 << 20;

#[derive(Clone, PartialEq, Message)]
pub struct QueryHandle {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(string, tag = "2")]
    pub sql: String,
    /// Bound parameter values: an Arrow IPC stream of one row, column i for `$<i+1>`.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub parameters: Option<Vec<u8>>,
    /// The result of a statement that already ran: an Arrow IPC stream.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub result: Option<Vec<u8>>,
}

impl QueryHandle {
    pub fn new(sql: impl Into<String>) -> Self {
        QueryHandle {
            version: HANDLE_VERSION,
            sql: sql.into(),
            parameters: None,
            result: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ServeError> {
        let h = <QueryHandle as Message>::decode(bytes)
            .map_err(|e| ServeError::invalid(format!("not a pz statement handle: {e}")))?;
        if h.version != HANDLE_VERSION {
            return Err(ServeError::invalid(format!(
                "statement handle version {} is not this server's ({HANDLE_VERSION}); prepare the statement again",
                h.version
            )));
        }
        Ok(h)
    }

    /// The bound parameters as DataFusion's positional values.
    pub fn parameter_values(&self) -> Result<Option<ParamValues>, ServeError> {
        let Some(bytes) = &self.parameters else {
            return Ok(None);
        };
        let (_, batches) = read_ipc(bytes)?;
        let Some(batch) = batches.first() else {
            return Ok(None);
        };
        row_values(batch).map(|v| Some(ParamValues::from(v)))
    }
}

/// The values of a one-row batch of parameters, column by column.
pub fn row_values(batch: &RecordBatch) -> Result<Vec<ScalarValue>, ServeError> {
    if batch.num_rows() != 1 {
        return Err(ServeError::invalid(format!(
            "a query binds one row of parameters, got {} rows",
            batch.num_rows()
        )));
    }
    batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(c, f)| {
            ScalarValue::try_from_array(c, 0).map_err(|e| {
                ServeError::invalid(format!("parameter '{}' cannot be read: {e}", f.name()))
            })
        })
        .collect()
}

/// Batches as an Arrow IPC stream.
pub fn write_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, ServeError> {
    let mut out = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut out, schema)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(out)
}

/// An Arrow IPC stream back into its schema and batches.
pub fn read_ipc(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ServeError> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| ServeError::invalid(format!("not an Arrow IPC stream: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::invalid(format!("not an Arrow IPC stream: {e}")))?;
    Ok((Arc::clone(&schema), batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn a_handle_carries_its_parameters() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("0", DataType::Float64, false),
            Field::new("1", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Float64Array::from(vec![1.5])),
                Arc::new(StringArray::from(vec!["knn"])),
            ],
        )
        .unwrap();
        let mut h = QueryHandle::new("SELECT $1, $2");
        h.parameters = Some(write_ipc(&schema, &[batch]).unwrap());
        let back = QueryHandle::decode(&h.encode()).unwrap();
        assert_eq!(back, h);
        let ParamValues::List(v) = back.parameter_values().unwrap().unwrap() else {
            panic!("positional parameters expected")
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].value, ScalarValue::Float64(Some(1.5)));
    }

    #[test]
    fn bytes_that_are_not_a_handle_are_refused() {
        assert!(QueryHandle::decode(b"\xff\xff\xff").is_err());
        let mut h = QueryHandle::new("SELECT 1");
        h.version = 9;
        let e = QueryHandle::decode(&h.encode()).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
    }
}
