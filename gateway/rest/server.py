"""The REST shim's server: uvicorn on a socket bound up front (port 0 = any free port),
run on its own thread so the all-in-one process can start and stop it like the gRPC
servers; over TLS when the settings name a certificate (facegate/tls.py)."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from facegate.settings import Settings, TlsSettings
from facegate.tls import RestContexts, handshake_first
from gateway.rest.app import RestApp

_START_TIMEOUT_S = 30.0


class RestServer:
    def __init__(self, app: RestApp, sock: socket.socket, tls: TlsSettings) -> None:
        config = uvicorn.Config(
            app,
            http=_protocol(tls),
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._socket = sock
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
            name="facegate-rest",
            daemon=True,
        )
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(_START_TIMEOUT_S / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            raise RuntimeError("the REST server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self._socket.close()


def create_server(settings: Settings) -> tuple[RestServer, int]:
    """The REST API, bound but not started (``settings.rest_port`` 0 = any)."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on connections whose
    # listening socket says TCP; with protocol 0 every response waited ~40 ms for the
    # client's delayed ACK (Nagle).
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.rest_port))
    sock.listen(1024)
    port: int = sock.getsockname()[1]
    app = RestApp(settings.rest, settings.gateway_address, tls=settings.tls)
    return RestServer(app, sock, settings.tls), port


def _protocol(tls: TlsSettings) -> type[asyncio.Protocol] | str:
    """uvicorn's HTTP protocol, behind our own TLS handshake when TLS is on: that one
    logs refused handshakes and takes renewed certificates (uvicorn's ``ssl`` does
    neither)."""
    if not tls.enabled:
        return "auto"
    return handshake_first(import_from_string(HTTP_PROTOCOLS["auto"]), RestContexts(tls))
