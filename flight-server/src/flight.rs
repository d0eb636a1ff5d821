//! The gRPC service as clients see it: every call authenticated and logged, Flight SQL
//! commands handed to [`FlightSqlProtocol`], and plain Arrow Flight for `pyarrow.flight`
//! users (a UTF-8 SQL ticket, `ListFlights`, a path descriptor naming a table).
//!
//! arrow-flight implements `FlightService` for every `FlightSqlService`, answering
//! `ListFlights` and `GetSchema` with "unimplemented" and refusing tickets that are not
//! Flight SQL commands, so plain Flight needs this layer in front.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{Any, CommandStatementQuery};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Criteria,
    Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::auth::{parse_authorization, Credentials, Principal};
use crate::backend::TableEntry;
use crate::error::ServeError;
use crate::flight_sql::{flight_schema, FlightSqlProtocol};
use crate::handle::QueryHandle;
use crate::log::RequestLog;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Type URLs of Flight SQL's commands all start so.
const FLIGHT_SQL_TYPE_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// pz's Flight service.
pub struct PzFlightService {
    sql: Arc<FlightSqlProtocol>,
}

impl PzFlightService {
    pub fn new(sql: Arc<FlightSqlProtocol>) -> Self {
        PzFlightService { sql }
    }

    /// The caller of `request` (put on it for the Flight SQL layer) and the request's log.
    async fn authorize<T>(
        &self,
        request: &mut Request<T>,
        rpc: &'static str,
    ) -> Result<Arc<RequestLog>, Status> {
        let who = match self.principal_of(request).await {
            Ok(who) => who,
            Err(e) => {
                let log = RequestLog::start(rpc, "-");
                log.outcome(e.code());
                return Err(e.into());
            }
        };
        let log = RequestLog::start(rpc, &who.user);
        request.extensions_mut().insert(who);
        request.extensions_mut().insert(Arc::clone(&log.stats));
        Ok(log)
    }

    async fn principal_of<T>(&self, request: &Request<T>) -> Result<Principal, ServeError> {
        let Some(value) = request.metadata().get("authorization") else {
            return self.sql.auth.anonymous();
        };
        let value = value.to_str().map_err(|_| {
            ServeError::Unauthenticated("the authorization header is not text".into())
        })?;
        match parse_authorization(value)? {
            Credentials::Bearer(token) => self.sql.auth.bearer(&token).await,
            Credentials::Basic { user, secret } => Ok(self.sql.auth.login(&user, &secret).await?.0),
        }
    }

    /// The registered table a path descriptor names (`[table]`, `[schema, table]` or
    /// `[catalog, schema, table]`).
    async fn table_of_path(&self, path: &[String]) -> Result<TableEntry, ServeError> {
        self.sql.backend.table(path).await
    }

    fn table_info(t: &TableEntry, descriptor: FlightDescriptor) -> Result<FlightInfo, ServeError> {
        let sql = format!(
            "SELECT * FROM {}.{}.{}",
            quote_ident(&t.catalog),
            quote_ident(&t.schema),
            quote_ident(&t.name)
        );
        Ok(FlightInfo::new()
            .try_with_schema(&flight_schema(&t.arrow_schema))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(sql)))
            .with_descriptor(descriptor))
    }
}

/// Flight's own action (not Flight SQL's older `CancelQuery`, also answered).
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

impl PzFlightService {
    fn cancel_flight_info(
        &self,
        request: &Request<Action>,
    ) -> Result<Response<BoxStream<arrow_flight::Result>>, ServeError> {
        let who = request
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ServeError::Unauthenticated("not authenticated".into()))?;
        let cancel = CancelFlightInfoRequest::decode(request.get_ref().body.as_ref())
            .map_err(|e| ServeError::invalid(format!("not a CancelFlightInfoRequest: {e}")))?;
        let info = cancel.info.ok_or_else(|| {
            ServeError::invalid("the CancelFlightInfoRequest holds no FlightInfo")
        })?;
        self.sql.cancel(&info, &who)?;
        let result = CancelFlightInfoResult {
            status: CancelStatus::Cancelled as i32,
        };
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Ends a unary call's log with its outcome.
fn logged<T>(log: Arc<RequestLog>, r: Result<T, Status>) -> Result<T, Status> {
    match &r {
        Ok(_) => {
            log.outcome(Code::Ok);
        }
        Err(s) => log.outcome(s.code()),
    }
    r
}

/// A response stream that counts what it sends and logs the request when it ends.
struct LoggedStream<T> {
    inner: BoxStream<T>,
    log: Arc<RequestLog>,
    size: fn(&T) -> usize,
}

impl<T> Stream for LoggedStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(item))) => self.log.stats.add_bytes((self.size)(item)),
            Poll::Ready(Some(Err(s))) => self.log.outcome(s.code()),
            Poll::Ready(None) => self.log.finished(),
            Poll::Pending => {}
        }
        polled
    }
}

fn logged_stream<T: Send + 'static>(
    log: Arc<RequestLog>,
    r: Result<Response<BoxStream<T>>, Status>,
    size: fn(&T) -> usize,
) -> Result<Response<BoxStream<T>>, Status> {
    match r {
        Ok(response) => {
            Ok(response.map(|inner| Box::pin(LoggedStream { inner, log, size }) as BoxStream<T>))
        }
        Err(s) => {
            log.outcome(s.code());
            Err(s)
        }
    }
}

fn flight_data_size(d: &FlightData) -> usize {
    d.data_header.len() + d.data_body.len()
}

#[tonic::async_trait]
impl FlightService for PzFlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;
    type DoExchangeStream = BoxStream<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        <FlightSqlProtocol as FlightService>::handshake(&self.sql, request).await
    }

    async fn list_flights(
        &self,
        mut request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let log = self.authorize(&mut request, "ListFlights").await?;
        let r = async {
            let mut infos = Vec::new();
            for t in self.sql.backend.tables().await? {
                if t.schema == "information_schema" {
                    continue;
                }
                let path = vec![t.catalog.clone(), t.schema.clone(), t.name.clone()];
                infos.push(Ok(Self::table_info(&t, FlightDescriptor::new_path(path))?));
            }
            log.stats.add_rows(infos.len());
            Ok::<_, ServeError>(Response::new(
                Box::pin(futures::stream::iter(infos)) as BoxStream<FlightInfo>
            ))
        }
        .await
        .map_err(Status::from);
        logged_stream(log, r, |i: &FlightInfo| i.encoded_len())
    }

    async fn get_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let log = self.authorize(&mut request, "GetFlightInfo").await?;
        let descriptor = request.get_ref().clone();
        let r = if descriptor.r#type == DescriptorType::Path as i32 {
            log.stats.set_statement(&descriptor.path.join("."));
            async {
                let t = self.table_of_path(&descriptor.path).await?;
                Ok::<_, ServeError>(Response::new(Self::table_info(&t, descriptor.clone())?))
            }
            .await
            .map_err(Status::from)
        } else {
            <FlightSqlProtocol as FlightService>::get_flight_info(&self.sql, request).await
        };
        logged(log, r)
    }

    async fn poll_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        let log = self.authorize(&mut request, "PollFlightInfo").await?;
        logged(
            log,
            Err(Status::unimplemented(
                "PollFlightInfo: pz answers GetFlightInfo at once; use it",
            )),
        )
    }

    async fn get_schema(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let log = self.authorize(&mut request, "GetSchema").await?;
        let who = request
            .extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(Principal::anonymous);
        let descriptor = request.into_inner();
        let r = async {
            let schema = if descriptor.r#type == DescriptorType::Path as i32 {
                log.stats.set_statement(&descriptor.path.join("."));
                self.table_of_path(&descriptor.path).await?.arrow_schema
            } else {
                let any = Any::decode(descriptor.cmd.as_ref())
                    .map_err(|e| ServeError::invalid(format!("not a Flight SQL command: {e}")))?;
                let Some(cmd) = any
                    .unpack::<CommandStatementQuery>()
                    .map_err(|e| ServeError::invalid(e.to_string()))?
                else {
                    return Err(ServeError::Unimplemented(format!(
                        "GetSchema answers for tables and CommandStatementQuery, not {}",
                        any.type_url
                    )));
                };
                log.stats.set_statement(&cmd.query);
                let planned = self
                    .sql
                    .backend
                    .prepare(&who, &cmd.query, None, false)
                    .await?;
                if planned.deferred {
                    return Err(ServeError::invalid(
                        "a statement with effects has no schema until it runs",
                    ));
                }
                planned.schema
            };
            let result: SchemaResult =
                SchemaAsIpc::new(&flight_schema(&schema), &IpcWriteOptions::default())
                    .try_into()
                    .map_err(ServeError::from)?;
            Ok::<_, ServeError>(Response::new(result))
        }
        .await
        .map_err(Status::from);
        logged(log, r)
    }

    async fn do_get(
        &self,
        mut request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let log = self.authorize(&mut request, "DoGet").await?;
        let bytes = request.get_ref().ticket.clone();
        let is_flight_sql = Any::decode(bytes.as_ref())
            .map(|a| a.type_url.starts_with(FLIGHT_SQL_TYPE_PREFIX))
            .unwrap_or(false);
        let r = if is_flight_sql {
            <FlightSqlProtocol as FlightService>::do_get(&self.sql, request).await
        } else {
            // A plain Flight ticket: UTF-8 SQL (pyarrow's `flight.Ticket(b"SELECT …")`, and
            // the tickets ListFlights hands out).
            async {
                let sql = std::str::from_utf8(&bytes).map_err(|_| {
                    ServeError::invalid(
                        "a ticket is a Flight SQL command or the UTF-8 text of one SQL statement",
                    )
                })?;
                let who = request
                    .extensions()
                    .get::<Principal>()
                    .cloned()
                    .ok_or_else(|| ServeError::Unauthenticated("not authenticated".into()))?;
                let stream = self
                    .sql
                    .stream_sql(&who, &bytes, &QueryHandle::new(sql), Some(&log.stats))
                    .await?;
                Ok::<_, ServeError>(Response::new(stream))
            }
            .await
            .map_err(Status::from)
        };
        logged_stream(log, r, flight_data_size)
    }

    async fn do_put(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let log = self.authorize(&mut request, "DoPut").await?;
        let r = <FlightSqlProtocol as FlightService>::do_put(&self.sql, request).await;
        logged_stream(log, r, |p: &PutResult| p.app_metadata.len())
    }

    async fn do_exchange(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let log = self.authorize(&mut request, "DoExchange").await?;
        logged(
            log,
            Err(Status::unimplemented(
                "DoExchange is not part of what pz serves",
            )),
        )
    }

    async fn do_action(
        &self,
        mut request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let rpc = "DoAction";
        let log = self.authorize(&mut request, rpc).await?;
        log.stats.set_statement(&request.get_ref().r#type);
        let r = if request.get_ref().r#type == CANCEL_FLIGHT_INFO {
            self.cancel_flight_info(&request).map_err(Status::from)
        } else {
            <FlightSqlProtocol as FlightService>::do_action(&self.sql, request).await
        };
        logged_stream(log, r, |r: &arrow_flight::Result| r.body.len())
    }

    async fn list_actions(
        &self,
        mut request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let log = self.authorize(&mut request, "ListActions").await?;
        let r = <FlightSqlProtocol as FlightService>::list_actions(&self.sql, request)
            .await
            .map(|response| {
                response.map(|sql_actions| {
                    let cancel = ActionType {
                        r#type: CANCEL_FLIGHT_INFO.into(),
                        description: "Cancels the running queries of a FlightInfo. Request: \
                                      CancelFlightInfoRequest; result: CancelFlightInfoResult"
                            .into(),
                    };
                    Box::pin(futures::stream::once(async { Ok(cancel) }).chain(sql_actions))
                        as BoxStream<ActionType>
                })
            });
        logged_stream(log, r, |a: &ActionType| a.r#type.len())
    }
}
