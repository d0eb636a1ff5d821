"""A query's and the server's life through the real clients: CancelFlightInfo stops a
running query, SIGTERM stops the server cleanly (running queries cancelled, a half-sent
ingest leaves nothing), and TLS with a certificate the client trusts.

Run by cli/tests/serve_clients.rs with PZ_BIN set.
"""

import datetime
import ipaddress
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pz_serve
from pz_serve import pz, wait_for_line

# Never ends on its own: a triple cross join of the mock sky with a condition no row meets.
ENDLESS = (
    "SELECT count(*) AS n FROM objects a, objects b, objects c "
    "WHERE a.ra + b.ra + c.ra > 1e9"
)


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-lifecycle")
    data = work / "data"
    pz(work, data, "simulate", "--objects", "3000", "--specz", "100", "--seed", "8", "--out", "sky")
    pz(work, data, "sql", "-c",
       f"CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{work}/sky/objects'")
    pz(work, data, "user", "add", "root", "--admin")
    pz(work, data, "user", "add", "ann")
    pz(work, data, "user", "add", "bob")
    tokens = {u: pz(work, data, "token", "create", u).strip() for u in ["root", "ann", "bob"]}
    return {"work": work, "data": data, "tokens": tokens}


def options(token):
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def read_in_thread(client, ticket, opts):
    """Starts reading `ticket`; returns the thread and what it ended with."""
    outcome = {}

    def read():
        started = time.monotonic()
        try:
            # Chunk by chunk: pyarrow's read_all answers a CANCELLED status by raising
            # KeyboardInterrupt in the main thread, as if Ctrl-C had been pressed.
            reader, rows = client.do_get(ticket, opts), 0
            while True:
                try:
                    rows += reader.read_chunk().data.num_rows
                except StopIteration:
                    break
            outcome["rows"] = rows
        except Exception as e:  # the error is what the test looks at
            outcome["error"] = e
        outcome["seconds"] = time.monotonic() - started

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t, outcome


def cancel_request(info):
    """A CancelFlightInfoRequest (field 1: the FlightInfo), as protobuf bytes."""
    body = info.serialize()
    n, varint = len(body), bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        varint.append(byte | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(varint) + body


def test_cancel_flight_info_stops_a_running_query(sky):
    s = pz_serve.Server(sky["work"], sky["data"])
    try:
        client = flight.FlightClient(s.uri)
        ann, root = options(sky["tokens"]["ann"]), options(sky["tokens"]["root"])
        ticket = flight.Ticket(ENDLESS.encode())
        t, outcome = read_in_thread(client, ticket, ann)
        time.sleep(2)
        assert t.is_alive(), outcome
        info = flight.FlightInfo(
            pa.schema([]), flight.FlightDescriptor.for_command(b"-"),
            [flight.FlightEndpoint(ticket, [])], -1, -1,
        )
        action = flight.Action("CancelFlightInfo", cancel_request(info))
        # Another reader may not cancel ann's query; for them it does not exist.
        with pytest.raises(pa.ArrowException) as e:
            list(client.do_action(action, options(sky["tokens"]["bob"])))
        assert "no query of this FlightInfo is running" in str(e.value)
        assert t.is_alive()
        results = list(client.do_action(action, ann))
        # CancelFlightInfoResult{status: CANCEL_STATUS_CANCELLED (1)}
        assert [r.body.to_pybytes() for r in results] == [b"\x08\x01"]
        t.join(timeout=30)
        assert not t.is_alive(), "the cancelled query did not end"
        assert isinstance(outcome.get("error"), flight.FlightCancelledError), outcome
        assert "cancelled (CancelFlightInfo)" in str(outcome["error"])
        # Nothing of that FlightInfo runs any more.
        with pytest.raises(pa.ArrowException) as e:
            list(client.do_action(action, ann))
        assert "no query of this FlightInfo is running" in str(e.value)
        # The server answers at once afterwards.
        started = time.monotonic()
        got = client.do_get(flight.Ticket(b"SELECT 1 AS one"), root).read_all()
        assert got.column("one").to_pylist() == [1]
        assert time.monotonic() - started < 5
        assert "CancelFlightInfo" in [a.type for a in client.list_actions(ann)]
    finally:
        s.stop()
    wait_for_line(s.logs, lambda l: "CancelFlightInfo" in l)


def slow_batches(n, pause):
    schema = pa.schema([("id", pa.int64()), ("z", pa.float64())])
    for i in range(n):
        time.sleep(pause)
        yield pa.record_batch([pa.array([i] * 1000, pa.int64()), pa.array([0.5] * 1000)],
                              schema=schema)


def test_sigterm_cancels_running_queries_and_leaves_nothing_half_written(sky):
    s = pz_serve.Server(sky["work"], sky["data"])
    client = flight.FlightClient(s.uri)
    query, query_outcome = read_in_thread(
        client, flight.Ticket(ENDLESS.encode()), options(sky["tokens"]["ann"])
    )
    ingest_outcome = {}

    def ingest():
        try:
            with flight_sql.connect(
                s.uri,
                db_kwargs={"username": "root", "password": sky["tokens"]["root"]},
            ) as conn, conn.cursor() as cur:
                schema = pa.schema([("id", pa.int64()), ("z", pa.float64())])
                reader = pa.RecordBatchReader.from_batches(schema, slow_batches(600, 0.05))
                ingest_outcome["rows"] = cur.adbc_ingest("half_sent", reader, mode="create")
        except Exception as e:
            ingest_outcome["error"] = e

    uploader = threading.Thread(target=ingest, daemon=True)
    uploader.start()
    time.sleep(3)
    assert query.is_alive() and uploader.is_alive(), (query_outcome, ingest_outcome)
    started = time.monotonic()
    s.stop()  # SIGTERM; asserts exit status 0 and "pz serve: stopped"
    assert time.monotonic() - started < 20
    query.join(timeout=10)
    uploader.join(timeout=10)
    assert "server is stopping" in str(query_outcome.get("error")), query_outcome
    assert "rows" not in ingest_outcome, ingest_outcome
    wait_for_line(s.logs, lambda l: "running queries cancelled" in l)

    # Restarted, the store is as before the ingest: no table, no file of it.
    again = pz_serve.Server(sky["work"], sky["data"])
    try:
        with flight_sql.connect(
            again.uri, db_kwargs={"username": "ann", "password": sky["tokens"]["ann"]}
        ) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) AS n FROM information_schema.tables "
                "WHERE table_name = 'half_sent'"
            )
            assert cur.fetch_arrow_table().column("n").to_pylist() == [0]
        ingested = sky["data"] / "ingested"
        assert not list(ingested.glob("half_sent-*")), list(ingested.iterdir())
        assert not list((ingested / ".staging").glob("*")), list((ingested / ".staging").iterdir())
    finally:
        again.stop()


def self_signed_certificate(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "server.crt").write_bytes(cert_pem)
    (directory / "server.key").write_bytes(key_pem)
    return directory / "server.crt", directory / "server.key", cert_pem


def test_tls_with_a_certificate_the_client_trusts(sky):
    cert, key, cert_pem = self_signed_certificate(sky["work"])
    s = pz_serve.Server(sky["work"], sky["data"], "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert s.uri.startswith("grpc+tls://127.0.0.1:"), s.uri
        client = flight.FlightClient(s.uri, tls_root_certs=cert_pem)
        got = client.do_get(
            flight.Ticket(b"SELECT count(*) AS n FROM objects"), options(sky["tokens"]["ann"])
        ).read_all()
        assert got.column("n").to_pylist() == [3000]
        with flight_sql.connect(
            s.uri,
            db_kwargs={
                "username": "ann",
                "password": sky["tokens"]["ann"],
                "adbc.flight.sql.client_option.tls_root_certs": cert_pem.decode(),
            },
        ) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetch_arrow_table().column("one").to_pylist() == [1]
        # A client that does not trust the certificate gets no answer.
        with pytest.raises(pa.ArrowException):
            flight.FlightClient(s.uri).do_get(
                flight.Ticket(b"SELECT 1"), options(sky["tokens"]["ann"])
            ).read_all()
        # Nor does one speaking plain gRPC to the TLS port.
        plain = s.uri.replace("grpc+tls://", "grpc://")
        with pytest.raises(pa.ArrowException):
            flight.FlightClient(plain).do_get(
                flight.Ticket(b"SELECT 1"), options(sky["tokens"]["ann"])
            ).read_all()
    finally:
        s.stop()


def test_a_key_that_is_not_pem_is_named(sky):
    (sky["work"] / "bad.key").write_text("not a key")
    cert, _, _ = self_signed_certificate(sky["work"])
    import subprocess

    r = subprocess.run(
        [pz_serve.PZ, "--data-dir", str(sky["data"]), "serve", "--listen", "127.0.0.1:0",
         "--tls-cert", str(cert), "--tls-key", str(sky["work"] / "bad.key")],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "--tls-key" in r.stderr and "bad.key" in r.stderr and "not a PEM file" in r.stderr
