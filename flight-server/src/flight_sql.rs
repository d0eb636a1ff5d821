//! Flight SQL's protocol: commands in, FlightInfo and Arrow streams out. What a statement
//! means and who may run it is the [`QueryBackend`]'s business and the [`Authenticator`]'s;
//! this module only translates.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, Nullable,
    ProstMessageExt, Searchable, SqlInfo, SqlSupportedTransaction, TicketStatementQuery,
    XdbcDataType,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{parse_authorization, Authenticator, Credentials, Principal};
use crate::backend::{IfExists, IngestRequest, IngestStream, Planned, QueryBackend};
use crate::error::ServeError;
use crate::handle::{self, QueryHandle, MAX_CARRIED_RESULT_BYTES};
use crate::log::RequestStats;
use crate::running::RunningQueries;

type DoGetStream = <FlightSqlProtocol as FlightService>::DoGetStream;

/// Table types pz serves.
const TABLE_TYPES: &[&str] = &["TABLE", "VIEW", "LOCAL TEMPORARY"];

/// The Flight SQL side of the server.
pub struct FlightSqlProtocol {
    pub(crate) backend: Arc<dyn QueryBackend>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) running: Arc<RunningQueries>,
    sql_info: SqlInfoData,
    xdbc_info: XdbcTypeInfoData,
}

impl FlightSqlProtocol {
    pub fn new(
        backend: Arc<dyn QueryBackend>,
        auth: Arc<dyn Authenticator>,
        running: Arc<RunningQueries>,
    ) -> Result<Self, ServeError> {
        Ok(FlightSqlProtocol {
            backend,
            auth,
            running,
            sql_info: sql_info()?,
            xdbc_info: xdbc_info()?,
        })
    }

    /// Streams the result of `sql` for `who` (the path of every SQL ticket). The query is
    /// listed as running under `ticket` until its stream ends, so CancelFlightInfo or the
    /// server's stop can end it.
    pub(crate) async fn stream_sql(
        &self,
        who: &Principal,
        ticket: &[u8],
        handle: &QueryHandle,
        stats: Option<&Arc<RequestStats>>,
    ) -> Result<DoGetStream, ServeError> {
        if let Some(s) = stats {
            s.set_statement(&handle.sql);
        }
        let running = self.running.start(ticket, &who.user)?;
        let (schema, stream) = match &handle.result {
            Some(ipc) => {
                let (schema, batches) = handle::read_ipc(ipc)?;
                let stream: SendableRecordBatchStream =
                    Box::pin(MemoryStream::try_new(batches, Arc::clone(&schema), None)?);
                (schema, stream)
            }
            None => {
                running
                    .run(
                        self.backend
                            .execute(who, &handle.sql, handle.parameter_values()?),
                    )
                    .await?
            }
        };
        Ok(encode(schema, running.watch(stream), stats.cloned()))
    }

    /// Cancels the running queries of `info`'s tickets that `who` may cancel.
    pub(crate) fn cancel(&self, info: &FlightInfo, who: &Principal) -> Result<(), ServeError> {
        let tickets: Vec<&[u8]> = info
            .endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref().map(|t| t.ticket.as_ref()))
            .collect();
        if tickets.is_empty() {
            return Err(ServeError::invalid(
                "the FlightInfo to cancel has no endpoint with a ticket",
            ));
        }
        match self.running.cancel(&tickets, who) {
            0 => Err(ServeError::NotFound(
                "no query of this FlightInfo is running (it has ended, has not started, or is not yours)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// The FlightInfo of a planned statement: its schema and one endpoint, with no location
    /// (the client fetches from this server, on its connection), whose ticket holds `handle`.
    fn statement_info(
        &self,
        planned: Planned,
        mut handle: QueryHandle,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, ServeError> {
        if let Some(batches) = &planned.result {
            let ipc = handle::write_ipc(&planned.schema, batches)?;
            if ipc.len() > MAX_CARRIED_RESULT_BYTES {
                return Err(ServeError::ResourceExhausted(format!(
                    "the statement ran, but its result ({} bytes) is larger than a ticket carries ({MAX_CARRIED_RESULT_BYTES}); run it as a query instead",
                    ipc.len()
                )));
            }
            handle.result = Some(ipc);
        }
        let ticket = TicketStatementQuery {
            statement_handle: handle.encode().into(),
        };
        Ok(FlightInfo::new()
            .try_with_schema(&flight_schema(&planned.schema))?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor))
    }

    /// FlightInfo for a metadata command: its schema, and the command itself as the ticket.
    fn metadata_info(
        schema: &Schema,
        command: impl ProstMessageExt,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(ServeError::from)?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

/// The principal the service layer put on the request.
fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the request was not authenticated"))
}

fn stats<T>(request: &Request<T>) -> Option<Arc<RequestStats>> {
    request.extensions().get::<Arc<RequestStats>>().cloned()
}

/// The schema as the Flight encoder sends it (dictionaries as their values), so FlightInfo
/// and the stream agree.
pub(crate) fn flight_schema(schema: &SchemaRef) -> Schema {
    let encoder = FlightDataEncoderBuilder::new()
        .with_schema(Arc::clone(schema))
        .build(futures::stream::empty());
    encoder
        .known_schema()
        .map(|s| s.as_ref().clone())
        .unwrap_or_else(|| schema.as_ref().clone())
}

/// Streams record batches as Flight data, the schema first (so an empty result has one),
/// counting rows into `stats`. Nothing is collected: batches go out as they are made, and a
/// client that goes away drops the query.
pub(crate) fn encode(
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    stats: Option<Arc<RequestStats>>,
) -> DoGetStream {
    let batches = stream.map(move |r| match r {
        Ok(b) => {
            if let Some(s) = &stats {
                s.add_rows(b.num_rows());
            }
            Ok(b)
        }
        Err(e) => Err(FlightError::Tonic(Box::new(Status::from(
            ServeError::from(e),
        )))),
    });
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from)
        .boxed()
}

fn one_batch<E: Into<ServeError>>(
    batch: Result<RecordBatch, E>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(Into::into)?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from)
        .boxed();
    Ok(Response::new(stream))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, ServeError> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(bytes)
}

/// The one batch of parameter rows a DoPut carries.
async fn read_put_batches(
    stream: PeekableFlightDataStream,
) -> Result<Vec<RecordBatch>, ServeError> {
    let batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(FlightError::from),
    )
    .try_collect::<Vec<_>>()
    .await
    .map_err(|e| {
        ServeError::invalid(format!("the parameters sent are not an Arrow stream: {e}"))
    })?;
    Ok(batches)
}

/// An ingest command as the backend's request: ADBC's modes are `create` (make it, fail if
/// it exists), `append` (fail if it does not), `replace` and `create_append`.
fn ingest_request(cmd: &CommandStatementIngest) -> IngestRequest {
    use arrow_flight::sql::{TableExistsOption, TableNotExistOption};
    let (if_missing, if_exists) = cmd
        .table_definition_options
        .as_ref()
        .map(|o| (o.if_not_exist(), o.if_exists()))
        .unwrap_or((
            TableNotExistOption::Unspecified,
            TableExistsOption::Unspecified,
        ));
    IngestRequest {
        table: cmd.table.clone(),
        catalog: cmd.catalog.clone().filter(|c| !c.is_empty()),
        schema: cmd.schema.clone().filter(|s| !s.is_empty()),
        temporary: cmd.temporary,
        create_if_missing: !matches!(if_missing, TableNotExistOption::Fail),
        if_exists: match if_exists {
            TableExistsOption::Append => IfExists::Append,
            TableExistsOption::Replace => IfExists::Replace,
            TableExistsOption::Fail | TableExistsOption::Unspecified => IfExists::Fail,
        },
    }
}

/// The rows a statement's result says it changed (COPY and INSERT report a `count`).
fn changed_rows(planned: &Planned) -> i64 {
    let Some(batches) = &planned.result else {
        return 0;
    };
    batches
        .iter()
        .filter_map(|b| {
            let c = b.column_by_name("count")?;
            let c = c.as_any().downcast_ref::<arrow::array::UInt64Array>()?;
            Some(c.iter().flatten().sum::<u64>() as i64)
        })
        .sum()
}

/// Spec schemas of the key commands, answered empty: pz's tables have no keys.
fn primary_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ])
}

fn foreign_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ])
}

fn empty_of(schema: Schema) -> Result<Response<DoGetStream>, Status> {
    one_batch(Ok::<_, ServeError>(RecordBatch::new_empty(Arc::new(
        schema,
    ))))
}

/// A bitmask of the given enum values (Flight SQL's "supported …" infos).
fn mask(values: &[i32]) -> i32 {
    values.iter().fold(0, |m, v| m | (1 << v))
}

fn sql_info() -> Result<SqlInfoData, ServeError> {
    use arrow_flight::sql::{
        SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity,
        SqlSupportedGroupBy, SqlSupportedUnions, SupportedSqlGrammar,
    };
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "pz");
    b.append(SqlInfo::FlightSqlServerVersion, pz_engine::PZ_VERSION);
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    // Writable for admins; readers are refused changes with PermissionDenied.
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, true);
    // Unquoted names fold to lower case; quoted ones are kept as written.
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // DataFusion puts nulls last in ascending order: they sort as the largest values.
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(
        SqlInfo::SqlSupportedGroupBy,
        mask(&[
            SqlSupportedGroupBy::SqlGroupByUnrelated as i32,
            SqlSupportedGroupBy::SqlGroupByBeyondSelect as i32,
        ]),
    );
    b.append(
        SqlInfo::SqlSupportedGrammar,
        mask(&[
            SupportedSqlGrammar::SqlMinimumGrammar as i32,
            SupportedSqlGrammar::SqlCoreGrammar as i32,
        ]),
    );
    b.append(
        SqlInfo::SqlAnsi92SupportedLevel,
        // SupportedAnsi92SqlGrammarLevel::Ansi92EntrySql (not re-exported by arrow-flight).
        mask(&[0]),
    );
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(
        SqlInfo::SqlSupportedUnions,
        mask(&[
            SqlSupportedUnions::SqlUnion as i32,
            SqlSupportedUnions::SqlUnionAll as i32,
        ]),
    );
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlMaxColumnNameLength, 0i64);
    b.append(SqlInfo::SqlMaxStatementLength, 0i64);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().map_err(ServeError::from)
}

fn xdbc_info() -> Result<XdbcTypeInfoData, ServeError> {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let types: &[(&str, XdbcDataType, Option<i32>, Option<bool>)] = &[
        ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
        ("TINYINT", XdbcDataType::XdbcTinyint, Some(3), Some(false)),
        ("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), Some(false)),
        ("INTEGER", XdbcDataType::XdbcInteger, Some(10), Some(false)),
        ("BIGINT", XdbcDataType::XdbcBigint, Some(19), Some(false)),
        ("FLOAT", XdbcDataType::XdbcFloat, Some(24), Some(false)),
        ("DOUBLE", XdbcDataType::XdbcDouble, Some(53), Some(false)),
        ("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), Some(false)),
        ("VARCHAR", XdbcDataType::XdbcVarchar, None, None),
        ("BINARY", XdbcDataType::XdbcBinary, None, None),
        ("DATE", XdbcDataType::XdbcDate, Some(10), None),
        ("TIMESTAMP", XdbcDataType::XdbcTimestamp, Some(29), None),
    ];
    for &(name, data_type, size, unsigned) in types {
        let text = matches!(data_type, XdbcDataType::XdbcVarchar);
        b.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size: size,
            literal_prefix: text.then(|| "'".into()),
            literal_suffix: text.then(|| "'".into()),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: text,
            searchable: Searchable::Full,
            unsigned_attribute: unsigned,
            fixed_prec_scale: matches!(data_type, XdbcDataType::XdbcDecimal),
            auto_increment: None,
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: size.map(|_| 10),
            interval_precision: None,
        });
    }
    b.build().map_err(ServeError::from)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlProtocol {
    type FlightService = FlightSqlProtocol;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| Status::unauthenticated("the authorization header is not text"))
            })
            .transpose()?;
        let (who, token) = match header.as_deref().map(parse_authorization).transpose()? {
            Some(Credentials::Basic { user, secret }) => {
                let (who, token) = self.auth.login(&user, &secret).await?;
                (who, Some(token))
            }
            Some(Credentials::Bearer(token)) => (self.auth.bearer(&token).await?, Some(token)),
            None => (self.auth.anonymous()?, None),
        };
        tracing::info!(user = %who.user, rpc = "Handshake", outcome = "ok", "request");
        let payload = token.clone().unwrap_or_default();
        let out = futures::stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: payload.into_bytes().into(),
        })]);
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(out));
        if let Some(token) = token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("a token that is not header text"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = principal(&request)?;
        if let Some(s) = stats(&request) {
            s.set_statement(&query.query);
        }
        let planned = self.backend.prepare(&who, &query.query, None, true).await?;
        let info =
            self.statement_info(planned, QueryHandle::new(query.query), request.into_inner())?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = principal(&request)?;
        let handle = QueryHandle::decode(&cmd.prepared_statement_handle)?;
        if let Some(s) = stats(&request) {
            s.set_statement(&handle.sql);
        }
        let planned = self
            .backend
            .prepare(&who, &handle.sql, handle.parameter_values()?, true)
            .await?;
        let info = self.statement_info(planned, handle, request.into_inner())?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let who = principal(&request)?;
        let handle = QueryHandle::decode(&ticket.statement_handle)?;
        let stream = self
            .stream_sql(
                &who,
                &request.get_ref().ticket,
                &handle,
                stats(&request).as_ref(),
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let who = principal(&request)?;
        let handle = QueryHandle::decode(&cmd.prepared_statement_handle)?;
        let stream = self
            .stream_sql(
                &who,
                &request.get_ref().ticket,
                &handle,
                stats(&request).as_ref(),
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let who = principal(&request)?;
        if let Some(s) = stats(&request) {
            s.set_statement(&query.query);
        }
        // Planned, never run: ADBC prepares every statement it executes, DDL included, and
        // runs it with GetFlightInfo afterwards.
        let planned = self
            .backend
            .prepare(&who, &query.query, None, false)
            .await?;
        let dataset_schema = if planned.deferred {
            bytes::Bytes::new()
        } else {
            ipc_schema(&flight_schema(&planned.schema))?
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: QueryHandle::new(query.query).encode().into(),
            dataset_schema,
            parameter_schema: ipc_schema(&planned.parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Handles hold everything; there is nothing to free.
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let mut handle = QueryHandle::decode(&query.prepared_statement_handle)?;
        let batches = read_put_batches(request.into_inner()).await?;
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        match batches.as_slice() {
            [] => handle.parameters = None,
            [one] => {
                handle::row_values(one)?;
                handle.parameters = Some(handle::write_ipc(&one.schema(), batches.as_slice())?);
            }
            more => {
                return Err(ServeError::invalid(format!(
                    "a query binds one row of parameters, got {} rows",
                    more.iter().map(|b| b.num_rows()).sum::<usize>()
                ))
                .into())
            }
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode().into()),
        })
    }

    async fn do_put_statement_update(
        &self,
        ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = principal(&request)?;
        if let Some(s) = stats(&request) {
            s.set_statement(&ticket.query);
        }
        let planned = self
            .backend
            .prepare(&who, &ticket.query, None, true)
            .await?;
        Ok(changed_rows(&planned))
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = principal(&request)?;
        let handle = QueryHandle::decode(&query.prepared_statement_handle)?;
        if let Some(s) = stats(&request) {
            s.set_statement(&handle.sql);
        }
        let batches = read_put_batches(request.into_inner()).await?;
        if batches
            .iter()
            .any(|b| b.num_rows() > 0 && b.num_columns() > 0)
        {
            return Err(ServeError::invalid(
                "parameters bind only into queries, not into statements that change what is served",
            )
            .into());
        }
        let planned = self.backend.prepare(&who, &handle.sql, None, true).await?;
        Ok(changed_rows(&planned))
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let who = principal(&request)?;
        let request_stats = stats(&request);
        if let Some(s) = &request_stats {
            s.set_statement(&format!("ingest into {}", cmd.table));
        }
        if cmd.transaction_id.is_some() {
            return Err(ServeError::Unimplemented(
                "transactions: pz writes each ingest atomically on its own".into(),
            )
            .into());
        }
        let ingest = ingest_request(&cmd);
        // Refused before a byte is read: a reader's upload is not stored even for a moment.
        crate::policy::check_ingest(&who, &cmd.table)?;
        let running = self
            .running
            .start(&cmd.as_any().encode_to_vec(), &who.user)?;
        let mut decoded = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(FlightError::from),
        );
        let first = decoded.next().await.transpose().map_err(|e| {
            ServeError::invalid(format!(
                "the rows sent for ingest are not an Arrow stream: {e}"
            ))
        })?;
        let schema = match (decoded.schema(), &first) {
            (Some(s), _) => Arc::clone(s),
            (None, Some(b)) => b.schema(),
            (None, None) => {
                return Err(ServeError::invalid("the ingest stream sent no schema").into())
            }
        };
        let table = cmd.table.clone();
        let rest = decoded.map_err(move |e| {
            datafusion::error::DataFusionError::External(Box::new(ServeError::invalid(format!(
                "the rows sent for table '{table}' stopped being an Arrow stream: {e}"
            ))))
        });
        let batches: IngestStream = Box::pin(futures::stream::iter(first.map(Ok)).chain(rest));
        let rows = running
            .run(self.backend.ingest(&who, ingest, schema, batches))
            .await?;
        if let Some(s) = &request_stats {
            s.add_rows(rows as usize);
        }
        Ok(rows as i64)
    }

    async fn do_action_cancel_query(
        &self,
        query: arrow_flight::sql::ActionCancelQueryRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<arrow_flight::sql::ActionCancelQueryResult, Status> {
        let who = principal(&request)?;
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|e| ServeError::invalid(format!("CancelQuery carries no FlightInfo: {e}")))?;
        self.cancel(&info, &who)?;
        Ok(arrow_flight::sql::ActionCancelQueryResult {
            // CancelResult::Cancelled (arrow-flight does not re-export the enum).
            result: 1,
        })
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        for c in self.backend.catalogs() {
            b.append(c);
        }
        one_batch(b.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        // Every catalog's schemas: the builder applies the catalog and pattern filters, so a
        // client that names no catalog (ADBC's get_objects) sees them all.
        let mut b = query.into_builder();
        for (c, s) in self.backend.schemas() {
            b.append(c, s);
        }
        one_batch(b.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        for t in self.backend.tables().await? {
            b.append(
                &t.catalog,
                &t.schema,
                &t.name,
                t.table_type,
                &t.arrow_schema,
            )
            .map_err(ServeError::from)?;
        }
        one_batch(b.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        for t in TABLE_TYPES {
            b.append(t);
        }
        one_batch(b.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        one_batch(query.into_builder(&self.sql_info).build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.xdbc_info).schema();
        Self::metadata_info(&schema, query, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        one_batch(query.into_builder(&self.xdbc_info).build())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_info(&primary_keys_schema(), query, request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        empty_of(primary_keys_schema())
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_info(&foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        empty_of(foreign_keys_schema())
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_info(&foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        empty_of(foreign_keys_schema())
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_info(&foreign_keys_schema(), query, request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        empty_of(foreign_keys_schema())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
