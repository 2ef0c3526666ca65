"""A TCP link to the test PostgreSQL that a test can break on purpose.

The faults are those of a real network or a crashing server, produced on the
wire so that the driver reacts exactly as it would in production: the link cut
in the middle of a query, a stray message that leaves a connection's protocol
state broken, a server that answers "starting up" (57P03), one that accepts and
never answers, and one that refuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import struct
import urllib.parse
from dataclasses import dataclass, field


class Fault(enum.Enum):
    NONE = "none"
    CUT_ON_QUERY = "cut_on_query"  # the next bytes a client sends close the link both ways
    STARTING_UP = "starting_up"  # new connections get FATAL 57P03
    SILENT = "silent"  # new connections are accepted and never answered
    REFUSE = "refuse"  # new connections are closed at once


def _upstream(url: str) -> tuple[str | None, str, int]:
    """(unix socket path or None, host, port) of the server ``url`` names."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "127.0.0.1"
    port = int(query.get("port") or parts.port or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", host, port
    return None, host, port


def _through(url: str, port: int) -> str:
    """``url`` with the server replaced by 127.0.0.1:``port``."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("host", "port")]
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urllib.parse.urlunsplit(
        (parts.scheme, f"{credentials}127.0.0.1:{port}", parts.path, urllib.parse.urlencode(query), "")
    )


def _error_response(sqlstate: str, message: str) -> bytes:
    fields = f"SFATAL\0VFATAL\0C{sqlstate}\0M{message}\0\0".encode()
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


@dataclass
class FaultyLink:
    upstream_url: str
    fault: Fault = Fault.NONE
    url: str = ""
    _server: asyncio.Server | None = None
    _pairs: set[_Pair] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> FaultyLink:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = _through(self.upstream_url, port)
        return self

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop_all(self) -> None:
        """Closes every open connection, as a server restart would."""
        for pair in list(self._pairs):
            pair.abort()
        self._pairs.clear()

    def inject_stray_message(self) -> None:
        """Sends each idle connection a DataRow nobody asked for: the driver's
        protocol state is left broken, and its next query on that connection fails
        with InternalClientError ("cannot switch to state ...")."""
        for pair in self._pairs:
            pair.client.write(b"D" + struct.pack("!IH", 6, 0))

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pair = _Pair(writer)
        try:
            if self.fault is Fault.REFUSE:
                return
            if self.fault is Fault.SILENT:
                await asyncio.sleep(3600)
                return
            if self.fault is Fault.STARTING_UP:
                await reader.read(8192)  # the startup message
                writer.write(_error_response("57P03", "the database system is starting up"))
                await writer.drain()
                return
            path, host, port = _upstream(self.upstream_url)
            if path is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(path)
            else:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            pair.server = up_writer
            self._pairs.add(pair)
            await asyncio.gather(self._forward(reader, up_writer, pair), self._copy(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._pairs.discard(pair)
            pair.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair) -> None:
        while data := await reader.read(65536):
            if self.fault is Fault.CUT_ON_QUERY:
                pair.abort()
                return
            writer.write(data)
            await writer.drain()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
