"""netlab/echo as a client sees it: line echo and HTTP on TCP, datagrams on UDP."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

HOST = "127.0.0.1"
POD = {"POD_NAME": "web-1", "POD_IP": "10.244.1.5", "POD_NAMESPACE": "shop",
       "NODE_NAME": "worker-2"}


def local_address(sock: socket.socket) -> str:
    """``ip:port`` of our end, which the server reports as the client."""
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def read_lines(sock: socket.socket, count: int) -> list[str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


def test_tcp_lines_are_echoed_with_the_pod_identity_and_the_client_address(spawn, port):
    tcp = port()
    server = spawn("echo", "--port", str(tcp), env=POD)
    try:
        server.wait_tcp(tcp)
        with socket.create_connection((HOST, tcp), timeout=5) as sock:
            client = local_address(sock)
            sock.sendall(b"hello\nwith crlf\r\n")
            first = read_lines(sock, 2)
            sock.sendall(b"unterminated")
            sock.shutdown(socket.SHUT_WR)  # the end of the stream ends the last line
            rest = read_lines(sock, 1)
            assert sock.recv(1) == b""  # and the server closes once it has answered
        identity = f"pod=web-1 ip=10.244.1.5 client={client}"
        assert first == [f"{identity} echo=hello", f"{identity} echo=with crlf"]
        assert rest == [f"{identity} echo=unterminated"]
        assert f"tcp connection from {client}" in server.logs()
    finally:
        assert server.stop() == 0


def test_without_pod_ip_the_address_the_connection_arrived_on_is_shown(spawn, port):
    tcp = port()
    server = spawn("echo", "--port", str(tcp), env={"POD_NAME": "bare"})
    try:
        server.wait_tcp(tcp)
        with socket.create_connection((HOST, tcp), timeout=5) as sock:
            sock.sendall(b"x\n")
            [line] = read_lines(sock, 1)
        assert line.startswith("pod=bare ip=127.0.0.1 client=127.0.0.1:")
    finally:
        server.stop()


def test_http_requests_get_json_answers_on_a_kept_alive_connection(spawn, port):
    tcp = port()
    server = spawn("echo", "--port", str(tcp), env=POD)
    try:
        server.wait_tcp(tcp)
        connection = http.client.HTTPConnection(HOST, tcp, timeout=5)
        try:
            connection.request("GET", "/shop/cart?id=7")
            response = connection.getresponse()
            body = json.loads(response.read())
            client = local_address(connection.sock)
            assert response.status == 200
            assert response.getheader("Content-Type") == "application/json"
            assert body == {"pod": "web-1", "namespace": "shop", "node": "worker-2",
                            "podIP": "10.244.1.5", "client": client,
                            "path": "/shop/cart?id=7", "method": "GET"}

            connection.request("POST", "/orders", body=b'{"n": 1}',
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            second = json.loads(response.read())
            # Same connection (same client port), body consumed, method reported.
            assert second["client"] == client
            assert (second["method"], second["path"]) == ("POST", "/orders")

            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"ok\n")

            connection.request("GET", "/hostname")
            assert connection.getresponse().read() == b"web-1"
        finally:
            connection.close()
        assert "http 127.0.0.1:" in server.logs() and "GET /shop/cart?id=7 200" in server.logs()
    finally:
        server.stop()


def test_http_1_0_and_connection_close_end_the_connection(spawn, port):
    tcp = port()
    server = spawn("echo", "--port", str(tcp), env=POD)
    try:
        server.wait_tcp(tcp)
        with socket.create_connection((HOST, tcp), timeout=5) as sock:
            sock.sendall(b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" in head
        assert json.loads(body)["path"] == "/a"
    finally:
        server.stop()


def test_udp_datagrams_are_answered_with_the_identity_and_the_payload(spawn, port):
    udp = port()
    server = spawn("echo", "--port", str(udp), env=POD)
    try:
        server.wait_udp(udp, b"probe")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.connect((HOST, udp))
            client = local_address(sock)
            sock.send(b"ping 1\n")
            assert sock.recv(65535) == (
                f"pod=web-1 ip=10.244.1.5 client={client} echo=ping 1\n".encode())
            sock.send(b"")  # an empty datagram is a datagram too
            assert sock.recv(65535).decode().endswith(f"client={client} echo=\n")
        assert f"udp datagram from {client}" in server.logs()
    finally:
        server.stop()


def test_udp_without_pod_ip_shows_the_local_address(spawn, port):
    udp = port()
    server = spawn("echo", "--port", str(udp), env={"POD_NAME": "bare"})
    try:
        answer = server.wait_udp(udp, b"hi")
        assert answer.decode().startswith("pod=bare ip=127.0.0.1 client=127.0.0.1:")
    finally:
        server.stop()


def test_ports_come_from_env_and_specific_arguments_win(spawn, port):
    tcp, udp = port(), port()
    # PORT would put both on one port; the arguments move UDP elsewhere.
    server = spawn("echo", "--udp-port", str(udp), env={**POD, "PORT": str(tcp)})
    try:
        server.wait_tcp(tcp)
        assert server.wait_udp(udp, b"u").endswith(b"echo=u\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.connect((HOST, tcp))
            sock.send(b"nobody home")
            with pytest.raises(ConnectionRefusedError):
                sock.recv(100)
    finally:
        server.stop()


def test_udp_can_be_turned_off(spawn, port):
    tcp = port()
    server = spawn("echo", "--tcp-port", str(tcp), "--udp-port", "-1", env=POD)
    try:
        server.wait_tcp(tcp)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.connect((HOST, tcp))
            sock.send(b"x")
            with pytest.raises(ConnectionRefusedError):
                sock.recv(100)
        assert f"listening on tcp 127.0.0.1:{tcp} udp off" in server.logs()
    finally:
        server.stop()


def test_sigterm_exits_0_at_once_even_with_a_client_connected(spawn, port):
    tcp = port()
    server = spawn("echo", "--port", str(tcp), env=POD)
    try:
        server.wait_tcp(tcp)
        with socket.create_connection((HOST, tcp), timeout=5) as sock:
            sock.sendall(b"x\n")
            read_lines(sock, 1)
            started = time.monotonic()
            assert server.stop(timeout=5) == 0
            assert time.monotonic() - started < 3
            assert sock.recv(100) == b""  # the server closed our connection
    finally:
        server.stop()


def test_a_port_already_taken_fails_with_a_message(spawn, port):
    tcp = port()
    with socket.socket() as taken:
        taken.bind((HOST, tcp))
        taken.listen()
        server = spawn("echo", "--port", str(tcp))
        try:
            assert server.process.wait(15) == 1
            assert "cannot listen" in server.logs()
        finally:
            server.stop()
