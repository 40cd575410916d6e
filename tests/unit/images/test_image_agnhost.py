"""The agnhost subcommands, answering in the formats Kubernetes e2e tests parse."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from netlab.images.agnhost import SERVE_HOSTNAME_FLAGS, FlagError, parse_flags

HOST = "127.0.0.1"
# Straight to 127.0.0.1, whatever http_proxy the environment sets.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def local_address(sock: socket.socket) -> str:
    """``ip:port`` of our end, which the server reports as the client."""
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with OPENER.open(f"http://{HOST}:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def udp_ask(port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect((HOST, port))
        sock.send(payload)
        return sock.recv(2048)


# --- serve-hostname ----------------------------------------------------------------------

def test_serve_hostname_answers_http_by_default(spawn, port):
    http = port()
    server = spawn("agnhost", "serve-hostname", f"--port={http}", env={"HOSTNAME": "sh-1"})
    try:
        server.wait_tcp(http)
        assert get(http, "/") == (200, "sh-1")
        assert get(http, "/any/path") == (200, "sh-1")
    finally:
        assert server.stop() == 0


def test_serve_hostname_raw_tcp_and_udp(spawn, port):
    raw = port()
    server = spawn("agnhost", "serve-hostname", "--tcp", "--udp", "--http=false",
                   "--port", str(raw), env={"HOSTNAME": "sh-2"})
    try:
        assert server.wait_udp(raw, b"x") == b"sh-2"
        server.wait_tcp(raw)
        with socket.create_connection((HOST, raw), timeout=5) as sock:
            data = b""
            while chunk := sock.recv(100):  # the hostname, then the server closes
                data += chunk
        assert data == b"sh-2"
        assert "UDP request from 127.0.0.1:" in server.logs()
    finally:
        server.stop()


def test_serve_hostname_refuses_tcp_and_http_together_as_agnhost_does(spawn):
    server = spawn("agnhost", "serve-hostname", "--tcp")
    try:
        assert server.process.wait(15) == 1
        assert "Can't server TCP/UDP mode and HTTP mode at the same time" in server.logs()
    finally:
        server.stop()


# --- netexec -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_netexecs(spawn_for_module, port):
    """Two netexec servers, "nx-a" and "nx-b": (program, http, udp) for each, shared by
    the tests that only send requests."""
    servers = []
    for name in ("nx-a", "nx-b"):
        http, udp = port(), port()
        program = spawn_for_module("agnhost", "netexec", f"--http-port={http}",
                                   "--udp-port", str(udp), env={"HOSTNAME": name})
        servers.append((program, http, udp))
    for program, http, udp in servers:
        program.wait_tcp(http)
        program.wait_udp(udp, b"hostname")
    return servers


def test_netexec_http_endpoints(two_netexecs):
    _, http, _ = two_netexecs[0]
    assert get(http, "/hostname") == (200, "nx-a")
    assert get(http, "/hostName") == (200, "nx-a")
    assert get(http, "/echo?msg=hello%20world") == (200, "hello world")
    assert get(http, "/echo?msg=teapot&code=418") == (418, "teapot")
    assert get(http, "/healthz") == (200, "")
    status, now = get(http, "/")
    assert status == 200 and now.startswith("NOW: 20")
    status, body = get(http, "/shell?cmd=echo%20out;%20exit%203")
    assert json.loads(body) == {"output": "out\n", "error": "exit status 3"}


def test_netexec_clientip_is_the_address_the_server_saw(two_netexecs):
    _, http, _ = two_netexecs[0]
    with socket.create_connection((HOST, http), timeout=5) as sock:
        client = local_address(sock)
        sock.sendall(f"GET /clientip HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body.decode() == client


def test_netexec_udp_commands(two_netexecs):
    _, _, udp = two_netexecs[0]
    assert udp_ask(udp, b"hostname") == b"nx-a"
    assert udp_ask(udp, b"echo Hello There\n") == b"hello there"  # agnhost lower-cases
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect((HOST, udp))
        sock.send(b"clientip")
        assert sock.recv(100).decode() == local_address(sock)


def test_dial_over_http_returns_each_try_in_responses(two_netexecs):
    (_, http_a, _), (_, http_b, _) = two_netexecs
    status, body = get(http_a, f"/dial?request=hostname&host={HOST}&port={http_b}"
                               "&protocol=http&tries=3")
    assert status == 200
    assert body == '{"responses":["nx-b","nx-b","nx-b"]}'  # agnhost's exact bytes
    status, body = get(http_a, f"/dial?request=echo?msg=hi&host={HOST}&port={http_b}")
    assert json.loads(body) == {"responses": ["hi"]}  # protocol and tries default


def test_dial_over_udp_returns_each_try_in_responses(two_netexecs):
    (_, http_a, _), (_, _, udp_b) = two_netexecs
    status, body = get(http_a, f"/dial?request=hostname&host={HOST}&port={udp_b}"
                               "&protocol=udp&tries=2")
    assert (status, json.loads(body)) == (200, {"responses": ["nx-b", "nx-b"]})


def test_dial_failures_go_to_errors_and_responses_is_left_out(two_netexecs, port):
    (_, http_a, _), _ = two_netexecs
    closed = port()  # nobody listens here
    status, body = get(http_a, f"/dial?request=hostname&host={HOST}&port={closed}"
                               "&protocol=http&tries=2")
    result = json.loads(body)
    assert status == 200 and set(result) == {"errors"}
    assert len(result["errors"]) == 2
    assert "connection refused" in result["errors"][0]
    status, body = get(http_a, f"/dial?request=hostname&host={HOST}&port={closed}"
                               "&protocol=udp")
    result = json.loads(body)
    assert set(result) == {"errors"} and "connection refused" in result["errors"][0]


@pytest.mark.parametrize(("query", "message"), [
    ("host=127.0.0.1&port=80", "request parameter not specified. <nil>\n"),
    ("request=hostname&host=127.0.0.1&port=80&tries=x", "tries parameter is invalid."),
    ("request=hostname&host=127.0.0.1&port=80&protocol=icmp", "unsupported protocol. icmp\n"),
    ("request=hostname&host=127.0.0.1&port=http", "host and/or port param are invalid."),
])
def test_dial_rejects_bad_parameters_with_400(two_netexecs, query, message):
    (_, http_a, _), _ = two_netexecs
    status, body = get(http_a, f"/dial?{query}")
    assert status == 400 and body.startswith(message)


def test_netexec_exit_endpoint_exits_with_the_code(spawn, port):
    http = port()
    server = spawn("agnhost", "netexec", f"--http-port={http}", "--udp-port=-1")
    try:
        server.wait_tcp(http)
        assert get(http, "/healthz") == (200, "")  # ready without UDP, too
        assert get(http, "/exit?code=3&timeout=1s") == (200, "")
        assert server.process.wait(10) == 3
    finally:
        server.stop()


def test_netexec_sigterm_exits_0(spawn, port):
    http, udp = port(), port()
    server = spawn("agnhost", "netexec", f"--http-port={http}", f"--udp-port={udp}")
    try:
        server.wait_tcp(http)
    finally:
        assert server.stop() == 0
    assert f"Started HTTP server on port {http}" in server.logs()


# --- connect, pause, the command line -----------------------------------------------------

def test_connect_succeeds_or_says_refused(spawn, port):
    http = port()
    server = spawn("agnhost", "serve-hostname", f"--port={http}")
    try:
        server.wait_tcp(http)
        ok = spawn("agnhost", "connect", f"{HOST}:{http}", "--timeout=5s")
        assert ok.process.wait(15) == 0
        refused = spawn("agnhost", "connect", f"{HOST}:{port()}", "--timeout=5s")
        assert refused.process.wait(15) == 1
        assert refused.logs() == "REFUSED\n"
    finally:
        server.stop()


def test_pause_waits_for_sigterm_and_exits_0(spawn):
    paused = spawn("agnhost", "pause")
    try:
        deadline = time.monotonic() + 15
        while paused.logs() != "Paused\n":  # printed once SIGTERM is being waited for
            paused.check_alive()
            assert time.monotonic() < deadline, paused.logs()
            time.sleep(0.05)
        with pytest.raises(subprocess.TimeoutExpired):
            paused.process.wait(0.3)  # pause does not end by itself
        assert paused.stop() == 0
    finally:
        paused.stop()


def test_unknown_subcommand_fails_naming_the_supported_ones(spawn):
    program = spawn("agnhost", "porter")
    try:
        assert program.process.wait(15) == 1
        logs = program.logs()
        assert 'unknown command "porter"' in logs and "netexec" in logs
    finally:
        program.stop()


def test_flags_parse_as_pflag_does():
    flags, positional = parse_flags(["--tcp", "--http=false", "--port", "80", "extra"],
                                    SERVE_HOSTNAME_FLAGS)
    assert (flags["tcp"], flags["http"], flags["udp"], flags["port"]) == (True, False, False, 80)
    assert positional == ["extra"]
    # A bool takes no separate value: "false" is an argument, as in pflag.
    flags, positional = parse_flags(["--http", "false"], SERVE_HOSTNAME_FLAGS)
    assert flags["http"] is True and positional == ["false"]
    with pytest.raises(FlagError, match="unknown flag: --nope"):
        parse_flags(["--nope"], SERVE_HOSTNAME_FLAGS)
    with pytest.raises(FlagError, match='invalid argument "x" for "--port"'):
        parse_flags(["--port=x"], SERVE_HOSTNAME_FLAGS)
    with pytest.raises(FlagError, match="flag needs an argument: --port"):
        parse_flags(["--port"], SERVE_HOSTNAME_FLAGS)
