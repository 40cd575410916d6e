"""The network subcommands of Kubernetes' e2e test image, ``agnhost``, for netlab pods.

Kubernetes network tests run ``registry.k8s.io/e2e-test-images/agnhost`` with a
subcommand as the first argument, and parse what it answers. This module speaks the
same flags and formats for the subcommands those tests use, so their manifests run
unchanged on netlab:

- ``netexec``: HTTP on ``--http-port`` (8080) and UDP on ``--udp-port`` (8081; -1 for
  none). HTTP endpoints ``/`` (``NOW: <time>``), ``/hostname`` and ``/hostName``,
  ``/echo?msg=&code=``, ``/clientip`` (``ip:port``), ``/dial?request=&host=&port=
  &protocol=http|udp&tries=`` (``{"errors":[...],"responses":[...]}``, where either
  key is left out as agnhost leaves it out), ``/healthz``, ``/shell?cmd=``,
  ``/redirect?location=&code=``, ``/exit?code=&timeout=&wait=`` and ``/shutdown``.
  UDP commands ``hostname``, ``echo <msg>`` and ``clientip``.
- ``serve-hostname``: the hostname over HTTP (default), or raw over ``--tcp`` and/or
  ``--udp``, on ``--port`` (9376).
- ``connect host:port``: one connection attempt, errors reported as ``TIMEOUT``,
  ``REFUSED``, ``DNS``, ``OTHER`` or ``UNKNOWN`` on stderr, exit 1.
- ``pause``: wait for SIGTERM.

Differences from agnhost, all on paths network tests do not take: SCTP and
``/upload`` are not supported; ``/healthz`` is also ready when UDP is turned off; and
every subcommand exits 0 promptly on SIGTERM (agnhost's ``serve-hostname`` lingers
60 s and ``pause`` exits 2), because the kubelet waits for a pod's processes to end.

The hostname is ``HOSTNAME`` from the environment, else ``POD_NAME``, else the
kernel's. ``NETLAB_BIND_ADDRESS`` restricts every listener to one address.
Logs use Go's ``log`` format on stderr, as agnhost's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import json
import os
import signal
import socket
import sys
import time
from typing import Any, Callable, cast

from netlab.images._common import (
    bind_address,
    format_addr,
    golog,
    hostname,
    listen_sockets,
    stop_event,
)
from netlab.units import parse_duration

_STARTED = time.monotonic()


# --- flags, parsed as Go's pflag parses them --------------------------------------------

class FlagError(Exception):
    """A command line cobra would reject; the message is cobra's."""


class _Help(Exception):
    pass


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_flags(argv: list[str], spec: dict[str, tuple[str, Any]]) -> tuple[dict[str, Any],
                                                                           list[str]]:
    """Values for ``spec`` (name -> (kind, default), kind in bool/int/string/duration)
    and the positional arguments.

    pflag rules: ``--name=value`` or ``--name value``, but a bool takes only the
    ``=`` form (``--http=false``), since ``--http false`` makes ``false`` an argument.
    Flags and arguments may be interleaved; ``--`` ends the flags.
    """
    values = {name: default for name, (_, default) in spec.items()}
    positional: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            positional.extend(argv[index:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        if arg in ("-h", "--help"):
            raise _Help
        name, has_value, value = arg.lstrip("-").partition("=")
        if name not in spec:
            raise FlagError(f"unknown flag: --{name}")
        kind = spec[name][0]
        if kind == "bool":
            if not has_value:
                values[name] = True
            elif value in _TRUE or value in _FALSE:
                values[name] = value in _TRUE
            else:
                raise FlagError(f'invalid argument "{value}" for "--{name}" flag: '
                                f'strconv.ParseBool: parsing "{value}": invalid syntax')
            continue
        if not has_value:
            if index >= len(argv):
                raise FlagError(f"flag needs an argument: --{name}")
            value = argv[index]
            index += 1
        try:
            if kind == "int":
                values[name] = int(value)
            elif kind == "duration":
                values[name] = parse_duration(value, signed=True)
            else:
                values[name] = value
        except ValueError:
            parser = "strconv.ParseInt" if kind == "int" else "time.ParseDuration"
            raise FlagError(f'invalid argument "{value}" for "--{name}" flag: '
                            f'{parser}: parsing "{value}": invalid syntax') from None
    return values, positional


# --- shared helpers ----------------------------------------------------------------------

def _go_json(value: object) -> str:
    """What Go's ``json.Marshal`` writes: sorted map keys, no spaces, HTML-safe."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _errno_text(exc: BaseException | None) -> str:
    """Go's wording for a syscall error: ``connection refused``, ``no route to host``."""
    number = getattr(exc, "errno", None)
    if number:
        return os.strerror(number).lower()
    return str(exc) if exc else "unknown error"


def _go_now() -> str:
    """``time.Now().String()`` as Go prints it, monotonic reading included."""
    now = datetime.datetime.now().astimezone()
    fraction = f"{now.microsecond:06d}".rstrip("0")
    offset = now.strftime("%z")
    return (f"{now:%Y-%m-%d %H:%M:%S}{'.' + fraction if fraction else ''} {offset} "
            f"{now.tzname()} m=+{time.monotonic() - _STARTED:.9f}")


# --- netexec -----------------------------------------------------------------------------

NETEXEC_FLAGS: dict[str, tuple[str, Any]] = {
    "http-port": ("int", 8080),
    "udp-port": ("int", 8081),
    "sctp-port": ("int", -1),
    "tls-cert-file": ("string", ""),
    "tls-private-key-file": ("string", ""),
    "http-override": ("string", ""),
    "udp-listen-addresses": ("string", ""),
}
DIAL_TIMEOUT = 5.0


class _DialError(Exception):
    """One failed try of /dial; the message goes into "errors" verbatim."""


class _UDPCommands(asyncio.DatagramProtocol):
    """netexec's UDP server: ``hostname``, ``echo <msg>``, ``clientip``."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's protocol is given its DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        assert self.transport is not None
        client = format_addr(addr)
        # agnhost lower-cases the whole datagram, the echoed message included.
        text = data[:2048].decode("utf-8", "replace").strip().lower()
        if text == "hostname":
            golog("Sending udp hostName response")
            self.transport.sendto(hostname().encode(), addr)
        elif text.startswith("echo "):
            message = text.split(" ", 1)[1]
            golog(f"Echoing {message} to UDP client {client}")
            self.transport.sendto(message.encode(), addr)
        elif text == "clientip":
            golog(f"Sending clientip back to UDP client {client}")
            self.transport.sendto(client.encode(), addr)
        elif text:
            golog(f"Unknown UDP command received from {client}: {text}")


class NetExec:
    """The HTTP handlers of ``agnhost netexec``, on aiohttp."""

    def __init__(self, flags: dict[str, Any], stop: asyncio.Event) -> None:
        from aiohttp import web  # here, so that pause and connect start without it

        self.web = web
        self.flags = flags
        self.stop = stop
        self.ready = False
        self.exit_code = 0
        self.routes: dict[str, Callable[[Any, Any], Any]] = {
            "/": self.root, "/clientip": self.clientip, "/dial": self.dial,
            "/echo": self.echo, "/exit": self.exit, "/healthz": self.healthz,
            "/hostname": self.hostname, "/hostName": self.hostname,
            "/redirect": self.redirect, "/shell": self.shell, "/shutdown": self.shutdown,
            "/upload": self.upload,
        }

    def text(self, body: str, status: int = 200) -> Any:
        return self.web.Response(text=body, status=status, content_type="text/plain")

    def error(self, message: str, status: int) -> Any:
        """Go's ``http.Error``: the message and a newline, marked nosniff."""
        response = self.text(message + "\n", status)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def handle(self, request: Any) -> Any:
        from multidict import MultiDict
        from yarl import URL

        url = URL(self.flags["http-override"]) if self.flags["http-override"] else request.url
        form = MultiDict(url.query)
        if (request.method == "POST"
                and request.content_type == "application/x-www-form-urlencoded"):
            form.extend(await request.post())
        # Go's ServeMux: exact paths, everything else is the root handler.
        route = self.routes.get(url.path, self.root)
        return await route(request, form)

    async def root(self, request: Any, form: Any) -> Any:
        golog("GET /")
        return self.text(f"NOW: {_go_now()}")

    async def clientip(self, request: Any, form: Any) -> Any:
        golog("GET /clientip")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return self.text(format_addr(peer) if peer else "")

    async def hostname(self, request: Any, form: Any) -> Any:
        golog(f"GET {request.path}")
        return self.text(hostname())

    async def healthz(self, request: Any, form: Any) -> Any:
        golog("GET /healthz")
        return self.web.Response(status=200 if self.ready else 412)

    async def echo(self, request: Any, form: Any) -> Any:
        message, code_text = form.get("msg", ""), form.get("code", "")
        golog(f"GET /echo?msg={message}&code={code_text}")
        status = 200
        if code_text:
            try:
                status = int(code_text)
            except ValueError:
                return self.text(f"argument 'code' must be an integer or empty, got "
                                 f"{json.dumps(code_text)}\n")
            if not 100 <= status <= 999:
                return self.error(f"invalid WriteHeader code {status}", 500)
        return self.text(message, status)

    async def redirect(self, request: Any, form: Any) -> Any:
        import html

        location, code_text = form.get("location", ""), form.get("code", "")
        golog(f"{request.method} /redirect?msg={location}&code={code_text}")
        status = 302
        if code_text:
            try:
                status = int(code_text)
            except ValueError:
                return self.text(f"argument 'code' must be an integer or empty, got "
                                 f"{json.dumps(code_text)}\n")
        from http import HTTPStatus

        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        body = (f'<a href="{html.escape(location)}">{reason}</a>.\n\n'
                if request.method in ("GET", "HEAD") else "")
        response = self.web.Response(text=body, status=status, content_type="text/html")
        response.headers["Location"] = location
        return response

    async def exit(self, request: Any, form: Any) -> Any:
        wait_text, timeout_text = form.get("wait", ""), form.get("timeout", "")
        code_text = form.get("code", "")
        golog(f"GET /exit?code={code_text}&timeout={timeout_text}&wait={wait_text}")
        try:
            timeout = parse_duration(timeout_text, signed=True) if timeout_text else 0.0
        except ValueError:
            return self.text("argument 'timeout' must be a valid golang duration or empty, "
                             f"got {json.dumps(timeout_text)}\n")
        try:
            wait = parse_duration(wait_text, signed=True) if wait_text else 0.0
        except ValueError:
            return self.text("argument 'wait' must be a valid golang duration or empty, "
                             f"got {json.dumps(wait_text)}\n")
        try:
            code = int(code_text) if code_text else 0
        except ValueError:
            return self.text("argument 'code' must be an integer [0-127] or empty, "
                             f"got {json.dumps(code_text)}\n")
        golog(f"Will begin shutdown in {wait}s, allowing {timeout}s for connections to "
              f"close, then will exit with {code}")
        if wait > 0:
            await asyncio.sleep(wait)
        if timeout <= 0:
            sys.stdout.flush()
            os._exit(code)  # agnhost's os.Exit: no answer, no goodbye
        self.exit_code = code
        response = self.web.Response()
        await response.prepare(request)
        await response.write_eof()
        self.stop.set()
        return response

    async def shutdown(self, request: Any, form: Any) -> Any:
        golog("GET /shutdown")
        sys.stdout.flush()
        os._exit(0)

    async def upload(self, request: Any, form: Any) -> Any:
        golog("GET /upload")
        return self.error("netlab's agnhost does not support /upload", 501)

    async def shell(self, request: Any, form: Any) -> Any:
        command = form.get("shellCommand") or form.get("cmd", "")
        golog(f"GET /shell?cmd={command}")
        process = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        result: dict[str, str] = {}
        if output:
            result["output"] = output.decode("utf-8", "replace")
        if process.returncode:
            # Go's *exec.ExitError wording: "exit status 1", "signal: killed".
            result["error"] = (f"exit status {process.returncode}" if process.returncode > 0
                               else f"signal: {signal.strsignal(-process.returncode)}".lower())
        golog(f"Output: {result}")
        return self.text(_go_json(result))

    async def dial(self, request: Any, form: Any) -> Any:
        host, port = form.get("host", ""), form.get("port", "")
        payload, protocol = form.get("request", ""), form.get("protocol", "")
        tries_text = form.get("tries", "")
        golog(f"GET /dial?host={host}&protocol={protocol}&port={port}&request={payload}"
              f"&tries={tries_text}")
        tries = 1
        if tries_text:
            try:
                tries = int(tries_text)
            except ValueError:
                return self.error(f'tries parameter is invalid. strconv.Atoi: parsing '
                                  f'"{tries_text}": invalid syntax', 400)
        if not payload:
            # agnhost prints its (nil) error variable here too.
            return self.error("request parameter not specified. <nil>", 400)
        protocol = protocol.lower()
        if protocol not in ("", "http", "udp"):
            return self.error(f"unsupported protocol. {protocol}", 400)
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        try:
            addr = await _resolve(host, port, kind)
        except (OSError, ValueError) as exc:
            return self.error(f"host and/or port param are invalid. {exc}", 400)

        dialer = self._dial_udp if protocol == "udp" else self._dial_http
        responses: list[str] = []
        errors: list[str] = []
        last = ""
        for _ in range(tries):
            try:
                last = await dialer(payload, addr)
                responses.append(last)
            except _DialError as exc:
                last = ""
                errors.append(str(exc))
        output: dict[str, list[str]] = {}
        # agnhost keys "responses" on the last try's answer, not on the list.
        if last:
            output["responses"] = responses
        if errors:
            output["errors"] = errors
        return self.text(_go_json(output))

    async def _dial_http(self, payload: str, addr: tuple) -> str:
        import aiohttp

        url = f"http://{format_addr(addr)}/{payload}"
        # A fresh connection per try, as agnhost's fresh transport per try: a Service
        # then balances every try on its own.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=DIAL_TIMEOUT)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session, \
                    session.get(url) as response:
                return (await response.read()).decode("utf-8", "replace")
        except asyncio.TimeoutError:
            raise _DialError(f'Get "{url}": context deadline exceeded '
                             "(Client.Timeout exceeded while awaiting headers)") from None
        except aiohttp.ClientConnectorError as exc:
            raise _DialError(f'Get "{url}": dial tcp {format_addr(addr)}: connect: '
                             f"{_errno_text(exc.os_error)}") from None
        except aiohttp.ServerDisconnectedError:
            raise _DialError(f'Get "{url}": EOF') from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _DialError(f'Get "{url}": {exc}') from None

    async def _dial_udp(self, payload: str, addr: tuple) -> str:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, _addr: tuple) -> None:
                if not answer.done():
                    answer.set_result(data)

            def error_received(self, exc: Exception) -> None:
                if not answer.done():  # ICMP port unreachable arrives here
                    answer.set_exception(exc)

        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        try:
            transport, _ = await loop.create_datagram_endpoint(
                Client, remote_addr=addr, family=family)
        except OSError as exc:
            raise _DialError(f"udp dial failed. err:dial udp {format_addr(addr)}: "
                             f"{_errno_text(exc)}") from None
        where = f"{format_addr(transport.get_extra_info('sockname'))}->{format_addr(addr)}"
        try:
            transport.sendto(payload.encode())
            try:
                data = await asyncio.wait_for(answer, DIAL_TIMEOUT)
            except asyncio.TimeoutError:
                raise _DialError("reading from udp connection failed. "
                                 f"err:'read udp {where}: i/o timeout'") from None
            except OSError as exc:
                raise _DialError("reading from udp connection failed. "
                                 f"err:'read udp {where}: read: {_errno_text(exc)}'") from None
            if not data:
                raise _DialError("reading from udp connection failed. err:'<nil>'")
            return data[:2048].decode("utf-8", "replace")
        finally:
            transport.close()


async def _resolve(host: str, port: str, kind: int) -> tuple:
    """The first address for host:port, IPv4 first, as Go's resolver prefers it."""
    if not port.isdigit():
        raise ValueError(f"address {host}:{port}: invalid port")
    infos = await asyncio.get_running_loop().getaddrinfo(host or None, int(port), type=kind)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos[0][4][:2]


async def netexec(flags: dict[str, Any]) -> int:
    from aiohttp import web

    if flags["sctp-port"] != -1:
        golog("SCTP is not supported by netlab's agnhost; --sctp-port is ignored")
    stop = stop_event()
    server = NetExec(flags, stop)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    ssl_context = None
    if flags["tls-cert-file"]:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(flags["tls-cert-file"],
                                    flags["tls-private-key-file"] or None)
    loop = asyncio.get_running_loop()
    transports = []
    try:
        if flags["udp-port"] != -1:
            listen = [address.strip() for address in flags["udp-listen-addresses"].split(",")
                      if address.strip()] or [bind_address()]
            for address in listen:
                for sock in listen_sockets(address, flags["udp-port"], socket.SOCK_DGRAM):
                    transport, _ = await loop.create_datagram_endpoint(_UDPCommands, sock=sock)
                    transports.append(transport)
                golog(f"Started UDP server on port {address or ''} {flags['udp-port']}")
        for sock in listen_sockets(bind_address(), flags["http-port"], socket.SOCK_STREAM):
            await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    except OSError as exc:
        golog(f"Error occurred: failed to listen: {exc}")
        await runner.cleanup()
        return 1
    # agnhost is ready once its UDP server runs; with UDP off, once HTTP does.
    server.ready = True
    golog(f"Started HTTP server on port {flags['http-port']}")
    await stop.wait()
    for transport in transports:
        transport.close()
    await runner.cleanup()
    golog(f"Shut down; exiting with {server.exit_code}")
    return server.exit_code


# --- serve-hostname ----------------------------------------------------------------------

SERVE_HOSTNAME_FLAGS: dict[str, tuple[str, Any]] = {
    "tcp": ("bool", False), "udp": ("bool", False), "http": ("bool", True),
    "close": ("bool", False), "port": ("int", 9376),
}


class _UDPHostname(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's protocol is given its DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        assert self.transport is not None
        golog(f"UDP request from {format_addr(addr)}")
        self.transport.sendto(self.name.encode(), addr)


async def serve_hostname(flags: dict[str, Any]) -> int:
    if flags["http"] and (flags["tcp"] or flags["udp"]):
        # agnhost's own refusal; the TCP and UDP modes need --http=false.
        golog("Can't server TCP/UDP mode and HTTP mode at the same time")
        return 1
    name = hostname()
    port = flags["port"]
    stop = stop_event()
    loop = asyncio.get_running_loop()
    closers: list[Callable[[], Any]] = []
    runner = None
    try:
        if flags["tcp"]:
            async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                golog(f"TCP request from {format_addr(writer.get_extra_info('peername'))}")
                writer.write(name.encode())
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                writer.close()

            for sock in listen_sockets(bind_address(), port, socket.SOCK_STREAM):
                closers.append((await asyncio.start_server(answer, sock=sock)).close)
        if flags["udp"]:
            for sock in listen_sockets(bind_address(), port, socket.SOCK_DGRAM):
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UDPHostname(name), sock=sock)
                closers.append(transport.close)
        if flags["http"]:
            from aiohttp import web

            async def http_answer(request: Any) -> Any:
                peer = request.transport.get_extra_info("peername") if request.transport else None
                golog(f"HTTP request from {format_addr(peer) if peer else ''}")
                response = web.Response(text=name, content_type="text/plain")
                if flags["close"]:
                    response.force_close()
                    response.headers["Connection"] = "close"
                return response

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", http_answer)
            runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                   shutdown_timeout=2.0)
            await runner.setup()
            for sock in listen_sockets(bind_address(), port, socket.SOCK_STREAM):
                await web.SockSite(runner, sock).start()
    except OSError as exc:
        golog(f"Error from net.Listen(): {exc}")
        return 1
    golog(f"Serving on port {port}.")
    await stop.wait()
    golog("Shutting down after receiving signal: terminated.")
    for close in closers:
        close()
    if runner is not None:
        await runner.cleanup()
    return 0


# --- connect -----------------------------------------------------------------------------

CONNECT_FLAGS: dict[str, tuple[str, Any]] = {
    "timeout": ("duration", 0.0), "protocol": ("string", "tcp"),
    "udp-data": ("string", "hostname"), "sctp-data": ("string", "hostname"),
}


def _fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 1


def connect(flags: dict[str, Any], positional: list[str]) -> int:
    """One connection attempt, reported with agnhost's fixed error prefixes."""
    if len(positional) != 1:
        return _fail(f"Error: accepts 1 arg(s), received {len(positional)}")
    dest = positional[0]
    protocol = flags["protocol"]
    timeout = flags["timeout"] or None
    if protocol not in ("", "tcp", "udp"):
        return _fail("OTHER: SCTP is not supported by netlab" if protocol == "sctp"
                     else f"Unsupported protocol {protocol}")
    host, sep, port = dest.rpartition(":")
    if not sep or not port:
        return _fail(f"UNKNOWN: address {dest}: missing port in address")
    host = host.strip("[]")
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host, int(port), type=kind)
    except (OSError, ValueError) as exc:
        return _fail(f"DNS: lookup {host}: {exc}")
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, addr = infos[0]
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        if kind == socket.SOCK_STREAM:
            try:
                sock.connect(addr)
            except socket.timeout:
                return _fail("TIMEOUT")
            except ConnectionRefusedError:
                return _fail("REFUSED")
            except OSError as exc:
                return _fail(f"OTHER: dial tcp {dest}: connect: {_errno_text(exc)}")
            return 0
        try:
            sock.connect(addr)
            where = f"{format_addr(sock.getsockname())}->{format_addr(addr)}"
        except OSError as exc:
            return _fail(f"OTHER: dial udp {dest}: {_errno_text(exc)}")
        try:
            sock.send(f"{flags['udp-data']}\n".encode())
            data = sock.recv(1024)
        except socket.timeout:
            return _fail(f"TIMEOUT: read udp {where}: i/o timeout")
        except OSError as exc:
            prefix = "REFUSED" if exc.errno == errno.ECONNREFUSED else "UNKNOWN"
            return _fail(f"{prefix}: read udp {where}: read: {_errno_text(exc)}")
        if not data:
            return _fail("OTHER: No data received from the server. Cannot guarantee the "
                         "server received the request.")
        return 0


# --- pause -------------------------------------------------------------------------------

def pause() -> int:
    """Do nothing until told to stop: the process that keeps a container running."""
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    print("Paused", flush=True)
    received = signal.sigwait(signals)
    return 0 if received == signal.SIGTERM else 1


# --- the agnhost command -----------------------------------------------------------------

SUBCOMMANDS = {
    "connect": "Attempts a TCP or UDP connection and returns useful errors",
    "netexec": "Creates HTTP and UDP servers with various endpoints",
    "pause": "Pauses the execution",
    "serve-hostname": "Serves the hostname",
}


def _usage() -> str:
    lines = ["agnhost (netlab): the network subcommands of the Kubernetes e2e test image.", "",
             "Usage:", "  agnhost [command]", "", "Available Commands:"]
    lines += [f"  {name:<16}{text}" for name, text in SUBCOMMANDS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    specs = {"netexec": NETEXEC_FLAGS, "serve-hostname": SERVE_HOSTNAME_FLAGS,
             "connect": CONNECT_FLAGS, "pause": {}}
    if command not in specs:
        sys.stderr.write(f'Error: unknown command "{command}" for "agnhost"\n'
                         f"netlab's agnhost has: {', '.join(SUBCOMMANDS)}\n")
        return 1
    try:
        flags, positional = parse_flags(rest, specs[command])
    except _Help:
        sys.stdout.write(f"{command}: {SUBCOMMANDS[command]}\n\nFlags:\n" + "".join(
            f"      --{name} {kind}  (default {default!r})\n"
            for name, (kind, default) in specs[command].items()))
        return 0
    except FlagError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    if command == "connect":
        return connect(flags, positional)
    if positional:
        sys.stderr.write(f'Error: unknown command "{positional[0]}" for "agnhost {command}"\n')
        return 1
    if command == "pause":
        return pause()
    runner = netexec if command == "netexec" else serve_hostname
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(runner(flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
