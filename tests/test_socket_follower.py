"""``SocketFollower`` against a tiny websockets server on loopback: order, resuming with ``last_seq``, refusals,
the reconnect budget, rotation over URLs, silence, and the credentials it sends.

Each connection the server accepts runs the next of the test's scripts; the server records every request it saw.
The follower runs on the test's thread with a deadline, so a broken follower fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from utilities.client.socket_follower import (
    Arrived,
    AttemptFailed,
    Closed,
    Connected,
    Reconnect,
    SocketEvent,
    SocketFollower,
    Why,
)
from utilities.procs.ports import free_port

pytestmark = pytest.mark.area("Progress WebSocket")

BATCH = "b-1"
SAFETY_S = 15.0  # a follow that outlives this is a bug in the follower, reported as DEADLINE
FAST = Reconnect(budget_s=5.0, interval_s=0.01)

Script = Callable[[ServerConnection], None]


def message(kind: str, seq: int, *, from_seq: int | None = None, status: str = "processing") -> str:
    first = 1 if kind == "snapshot" else seq if from_seq is None else from_seq
    return json.dumps({"type": kind, "seq": seq, "from_seq": first, "status": status, "batch_id": BATCH})


def send(*frames: str) -> Script:
    def script(ws: ServerConnection) -> None:
        for frame in frames:
            ws.send(frame)
        for _ in ws:  # until the client closes
            pass

    return script


def send_then_close(
    *frames: str, code: int | None, reason: str = "", before_close: threading.Event | None = None
) -> Script:
    """Send ``frames``, then close with ``code`` (None: cut the TCP connection, no close frame)."""

    def script(ws: ServerConnection) -> None:
        for frame in frames:
            ws.send(frame)
        if before_close is not None:
            before_close.set()
        if code is None:
            ws.socket.shutdown(socket.SHUT_RDWR)
        else:
            ws.close(code, reason)

    return script


@dataclass
class TinyServer:
    """A stand-in for the progress socket: connection N runs ``scripts[N]`` (the last one from then on)."""

    scripts: list[Script]
    refuse_with: HTTPStatus | None = None
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    accepted: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        return connection.respond(self.refuse_with, "refused\n") if self.refuse_with else None

    def _handle(self, ws: ServerConnection) -> None:
        index, self.accepted = self.accepted, self.accepted + 1  # one connection at a time in these tests
        self.scripts[min(index, len(self.scripts) - 1)](ws)


@pytest.fixture
def tiny_server() -> Iterator[Callable[..., TinyServer]]:
    servers: list[Any] = []

    def start(*scripts: Script, refuse_with: HTTPStatus | None = None) -> TinyServer:
        tiny = TinyServer(list(scripts) or [send()], refuse_with, port=free_port())
        server = serve(tiny._handle, "127.0.0.1", tiny.port, process_request=tiny._process_request)
        threading.Thread(target=server.serve_forever, name="tiny-ws", daemon=True).start()
        servers.append(server)
        return tiny

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A port that refuses connections: bound, never listening (so nothing else can take it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def follow(follower: SocketFollower, *, until_terminal: bool = True) -> tuple[list[SocketEvent], Any]:
    """Run the follower to its end on this thread; every event it reported, and its ending."""
    events: list[SocketEvent] = []

    def on_event(event: SocketEvent) -> None:
        events.append(event)
        if until_terminal and isinstance(event, Arrived) and event.message.get("status") == "completed":
            follower.stop()

    return events, follower.follow(on_event)


def of(kind: type, events: list[SocketEvent]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_messages_reach_the_caller_in_order_with_their_problems(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(
        send(message("snapshot", 2), message("progress", 3), "not json", message("completed", 4, status="completed"))
    )
    events, ending = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, validate=False))

    assert ending.why is Why.STOPPED, ending
    assert [type(e) for e in events] == [Connected, Arrived, Arrived, Arrived, Arrived, Closed]
    arrived = of(Arrived, events)
    assert [a.message["type"] for a in arrived] == ["snapshot", "progress", "<not JSON>", "completed"]
    assert [a.problems for a in arrived] == [(), (), ("not JSON",), ()]
    assert [a.at for a in arrived] == sorted(a.at for a in arrived)
    assert of(Closed, events)[0].why is Why.STOPPED and of(Closed, events)[0].code is None


def test_schema_problems_are_reported_when_validating(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send(message("completed", 4, status="completed")))
    events, _ = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, validate=True))

    assert of(Arrived, events)[0].problems, "a message missing most of the contract's fields passed its schema"


@pytest.mark.parametrize(("code", "seen_code", "seen_reason"), [(1012, 1012, "restarting"), (None, 1006, "")])
def test_a_drop_resumes_from_the_newest_covered_seq(
    tiny_server: Callable[..., TinyServer], code: int | None, seen_code: int, seen_reason: str
) -> None:
    server = tiny_server(
        send_then_close(message("snapshot", 3), message("progress", 5, from_seq=4), code=code, reason="restarting"),
        send(message("progress", 6), message("completed", 7, status="completed")),
    )
    events, ending = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=FAST, validate=False))

    assert ending.why is Why.STOPPED, ending
    assert [(c.index, c.last_seq) for c in of(Connected, events)] == [(0, None), (1, 5)]
    assert [parse_qs(urlsplit(r.path).query).get("last_seq") for r in server.requests] == [None, ["5"]]
    first_close = of(Closed, events)[0]
    assert (first_close.code, first_close.reason, first_close.why) == (seen_code, seen_reason, Why.DROPPED)
    assert [a.connection for a in of(Arrived, events)] == [0, 0, 1, 1]
    assert all(not a.step.missing for a in of(Arrived, events))


def test_a_handshake_refusal_ends_it_without_a_retry(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(refuse_with=HTTPStatus.FORBIDDEN)
    events, ending = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=FAST))

    assert (ending.why, ending.http_status, ending.detail) == (Why.REFUSED, 403, "handshake refused: HTTP 403")
    assert len(server.requests) == 1 and events == []


@pytest.mark.parametrize(("code", "why"), [(4403, Why.REFUSED), (4401, Why.REFUSED), (1008, Why.POLICY)])
def test_a_refusal_or_policy_close_ends_it_without_a_retry(
    tiny_server: Callable[..., TinyServer], code: int, why: Why
) -> None:
    server = tiny_server(send_then_close(code=code, reason="no"))
    events, ending = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=FAST))

    assert (ending.why, ending.close_code, ending.detail) == (why, code, f"closed by the server: {code} no")
    assert len(server.requests) == 1 and len(of(Connected, events)) == 1


def test_without_reconnecting_a_drop_ends_it(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send_then_close(message("snapshot", 1), code=1012, reason="restarting"))
    _, ending = follow(SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=None, validate=False))

    assert (ending.why, ending.close_code, ending.detail) == (Why.DROPPED, 1012, "dropped: 1012 restarting")
    assert len(server.requests) == 1


def test_a_drop_with_the_reconnect_budget_spent_fails_saying_so(
    tiny_server: Callable[..., TinyServer], dead_url: str
) -> None:
    gone = threading.Event()  # set by the server before it drops: from then on only a dead port is offered
    server = tiny_server(send_then_close(message("snapshot", 1), code=1012, before_close=gone))
    follower = SocketFollower(
        lambda: [dead_url] if gone.is_set() else [server.url],
        BATCH,
        deadline_s=SAFETY_S,
        reconnect=Reconnect(budget_s=0.3, interval_s=0.05),
        validate=False,
    )
    events, ending = follow(follower)

    assert ending.why is Why.UNREACHABLE, ending
    assert ending.detail.startswith("could not connect for 0.3 s: "), ending.detail
    assert isinstance(ending.error, OSError)
    assert of(Closed, events)[0].why is Why.DROPPED
    failed = of(AttemptFailed, events)
    assert len(failed) >= 2 and {f.url.split("/api")[0] for f in failed} == {dead_url.replace("http", "ws")}
    assert failed[-1].at - failed[0].at >= 0.3, "gave up before the budget was spent"


def test_attempts_rotate_over_the_urls_when_one_refuses_connections(
    tiny_server: Callable[..., TinyServer], dead_url: str
) -> None:
    server = tiny_server(
        send_then_close(message("snapshot", 2), code=1012),
        send(message("progress", 3), message("completed", 4, status="completed")),
    )
    follower = SocketFollower(
        lambda: [dead_url, server.url], BATCH, deadline_s=SAFETY_S, reconnect=FAST, validate=False
    )
    events, ending = follow(follower)

    assert ending.why is Why.STOPPED, ending
    host = {dead_url.replace("http://", ""): "dead", server.url.replace("http://", ""): "live"}
    steps = [
        (type(e).__name__, host[urlsplit(e.url).netloc]) for e in events if isinstance(e, AttemptFailed | Connected)
    ]
    assert steps == [("AttemptFailed", "dead"), ("Connected", "live"), ("AttemptFailed", "dead"), ("Connected", "live")]
    assert of(Connected, events)[1].last_seq == 2


def test_silence_beyond_the_recv_timeout_is_reported_as_silence(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send(message("snapshot", 1)))
    events, ending = follow(
        SocketFollower(server.url, BATCH, recv_timeout_s=0.3, deadline_s=SAFETY_S, reconnect=None, validate=False)
    )

    assert (ending.why, ending.detail) == (Why.SILENCE, "nothing for 0.3 s")
    closed = of(Closed, events)
    assert [(c.why, c.code) for c in closed] == [(Why.SILENCE, None)]
    assert closed[0].at - of(Arrived, events)[0].at >= 0.3


def test_a_silence_with_reconnecting_on_reconnects(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send(message("snapshot", 1)), send(message("completed", 2, status="completed")))
    events, ending = follow(
        SocketFollower(server.url, BATCH, recv_timeout_s=0.2, deadline_s=SAFETY_S, reconnect=FAST, validate=False)
    )

    assert ending.why is Why.STOPPED, ending
    assert [(c.index, c.last_seq) for c in of(Connected, events)] == [(0, None), (1, 1)]


def test_the_deadline_ends_a_silent_follow(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send())
    _, ending = follow(SocketFollower(server.url, BATCH, deadline_s=0.3))

    assert (ending.why, ending.detail) == (Why.DEADLINE, "no end within 0.3 s")


@pytest.mark.parametrize("in_query", [False, True])
def test_credentials_and_origin_reach_the_server(tiny_server: Callable[..., TinyServer], in_query: bool) -> None:
    server = tiny_server(send(message("completed", 1, status="completed")))
    follower = SocketFollower(
        server.url,
        BATCH,
        token="tok",
        token_in_query=in_query,
        cookie="sess",
        origin="http://ui.example",
        last_seq=7,
        deadline_s=SAFETY_S,
        validate=False,
    )
    follow(follower)

    (request,) = server.requests
    query = parse_qs(urlsplit(request.path).query)
    assert urlsplit(request.path).path == f"/api/v1/batch/ws/{BATCH}"
    assert query.get("last_seq") == ["7"]
    assert query.get("token") == (["tok"] if in_query else None)
    assert request.headers.get("Authorization") == (None if in_query else "Bearer tok")
    assert request.headers["Cookie"] == "batchqa_session=sess"
    assert request.headers["Origin"] == "http://ui.example"


def test_stop_from_another_thread_ends_a_blocked_read(tiny_server: Callable[..., TinyServer]) -> None:
    server = tiny_server(send(message("snapshot", 1)))
    follower = SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=FAST, validate=False)
    arrived = threading.Event()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(follower.follow(lambda e: arrived.set() if isinstance(e, Arrived) else None))
    )
    thread.start()
    assert arrived.wait(SAFETY_S)
    follower.stop()
    thread.join(SAFETY_S)

    assert not thread.is_alive() and result[0].why is Why.STOPPED
    assert len(server.requests) == 1


def test_pause_drops_the_connection_and_resume_reconnects_from_the_covered_seq(
    tiny_server: Callable[..., TinyServer],
) -> None:
    server = tiny_server(send(message("snapshot", 4)), send(message("completed", 5, status="completed")))
    follower = SocketFollower(server.url, BATCH, deadline_s=SAFETY_S, reconnect=FAST, validate=False)
    dropped = threading.Event()
    events: list[SocketEvent] = []

    def on_event(event: SocketEvent) -> None:
        events.append(event)
        if isinstance(event, Arrived) and event.connection == 0:
            follower.pause()
        elif isinstance(event, Closed) and event.connection == 0:
            dropped.set()
        elif isinstance(event, Arrived) and event.message["status"] == "completed":
            follower.stop()

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(follower.follow(on_event)))
    thread.start()
    assert dropped.wait(SAFETY_S)
    assert of(Closed, events)[0].why is Why.DROPPED and len(of(Connected, events)) == 1
    follower.resume()
    thread.join(SAFETY_S)

    assert result[0].why is Why.STOPPED, result
    assert [(c.index, c.last_seq) for c in of(Connected, events)] == [(0, None), (1, 4)]
