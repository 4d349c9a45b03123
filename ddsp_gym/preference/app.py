"""The ``ddsp-gym prefer`` web app: a person votes A/B, the search finds their patch.

A FastAPI app serving one page (plain HTML/JS/CSS packaged with ddsp_gym: no CDN, no
analytics, works offline) and a small JSON API over a :class:`SessionStore`:

=======  =========================================  =====================================
GET      ``/``                                      the page
POST     ``/api/sessions``                          create a session ``{seed?}`` -> 201
GET      ``/api/sessions/{id}``                     state: pair, best knobs, history
GET      ``/api/sessions/{id}/audio/{cand}.wav``    ``cand`` = ``<pair>-a``, ``<pair>-b``, ``best``
POST     ``/api/sessions/{id}/play``                ``{candidate}``: a new take (hardware)
POST     ``/api/sessions/{id}/vote``                ``{pair, choice}``: choice a, b, both_bad
POST     ``/api/sessions/{id}/undo``                ``{pair}``: take back the last vote
=======  =========================================  =====================================

Robustness: a malformed body is a 422, an unknown session or candidate a 404, a vote or
undo for any pair but the current one a 409 (replays, stale tabs), all with a JSON
``detail`` and nothing changed. Ids and candidate names are matched against strict
patterns before they reach the file system; files are only ever named by the server.
Requests must come to a local host name (DNS-rebinding guard), POSTs must be JSON and,
when the browser says where they come from, from this page (no CORS, no cross-site
votes).
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ddsp_gym.preference.candidates import Player, SoundSpec
from ddsp_gym.preference.session import (
    NothingToUndoError,
    Session,
    SessionCorruptError,
    SessionNotFoundError,
    SessionState,
    SessionStore,
    StaleVoteError,
)

CANDIDATE_PATTERN = re.compile(r"^(?:(?P<pair>[0-9]{1,9})-(?P<side>[ab])|(?P<best>best))$")
MAX_BODY_BYTES = 4096  # the API's bodies are a few dozen bytes
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
STATIC = resources.files("ddsp_gym.preference") / "static"


class _Body(BaseModel):
    # Unknown fields and type coercion ("1" for 1) are refused: a malformed request
    # must not be read as something else.
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateRequest(_Body):
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class VoteRequest(_Body):
    pair: int = Field(ge=0, description="the id of the pair this vote answers")
    choice: Literal["a", "b", "both_bad"]


class UndoRequest(_Body):
    pair: int = Field(ge=0, description="the id of the pair shown when undo was pressed")


class PlayRequest(_Body):
    candidate: str = Field(max_length=16)


def _error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def create_app(
    store: SessionStore,
    player: Player,
    seed: int = 0,
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS,
    search: str = "model",
) -> FastAPI:
    """The app over ``store``; ``player`` plays every candidate (one sound, one backend).

    Sessions made for another sound or backend than ``player``'s are refused with a 409
    that says which server resumes them.
    """
    app = FastAPI(title="ddsp-gym prefer", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def config_for(knobs: Any, seed: int) -> Any:  # new sessions use ``search``
        return player.spec.config(knobs, seed, search)

    @app.middleware("http")
    async def same_origin_json(request: Request, call_next):
        # A cross-site form POST needs no CORS preflight; insisting on JSON and, where the
        # browser names it, on our own origin keeps other pages from voting.
        if request.method == "POST":
            # A chunked body has no length to check up front: refused (browsers send one).
            length = request.headers.get("content-length", "0")
            if "transfer-encoding" in request.headers:
                length = "-"
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return JSONResponse(
                    {
                        "detail": f"request bodies are at most {MAX_BODY_BYTES} bytes, sent "
                        "with a Content-Length"
                    },
                    status_code=413,
                )
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return JSONResponse(
                    {"detail": "POST bodies must be JSON (Content-Type: application/json)"},
                    status_code=415,
                )
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
                return JSONResponse(
                    {"detail": f"requests from {origin} are not accepted"}, status_code=403
                )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def session_of(session_id: str) -> Session:
        try:
            session = store.open(session_id)
        except SessionNotFoundError as err:
            raise _error(404, str(err)) from None
        except SessionCorruptError as err:
            raise _error(500, str(err)) from None
        if not session.config.same_sound(config_for(player.knobs, session.config.seed)):
            c = session.config
            raise _error(
                409,
                f"session {session_id} tunes {c.target} on the {c.backend} backend; this "
                f"server plays {config_for(player.knobs, 0).target} on {player.spec.backend}: "
                f"resume it with `ddsp-gym prefer --root {store.root} --session {session_id}`",
            )
        return session

    def guarded(action):
        try:
            return action()
        except SessionNotFoundError as err:
            raise _error(404, str(err)) from None
        except (StaleVoteError, NothingToUndoError) as err:
            raise _error(409, str(err)) from None
        except SessionCorruptError as err:
            raise _error(500, str(err)) from None

    def view(session: Session, state: SessionState) -> dict[str, Any]:
        return state_json(session, state, player)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html")

    @app.post("/api/sessions", status_code=201)
    def create(body: CreateRequest) -> dict[str, Any]:
        session = store.create(config_for(player.knobs, seed if body.seed is None else body.seed))
        return view(session, session.state())

    @app.get("/api/sessions/{session_id}")
    def get_state(session_id: str) -> dict[str, Any]:
        session = session_of(session_id)
        return view(session, guarded(session.state))

    @app.post("/api/sessions/{session_id}/vote")
    def vote(session_id: str, body: VoteRequest) -> dict[str, Any]:
        session = session_of(session_id)
        return view(session, guarded(lambda: session.vote(body.pair, body.choice)))

    @app.post("/api/sessions/{session_id}/undo")
    def undo(session_id: str, body: UndoRequest) -> dict[str, Any]:
        session = session_of(session_id)
        return view(session, guarded(lambda: session.undo(body.pair)))

    def unit_of(session: Session, candidate: str) -> tuple[float, ...]:
        match = CANDIDATE_PATTERN.fullmatch(candidate)
        if match is None:
            raise _error(404, f"no candidate {candidate!r} (names are <pair>-a, <pair>-b, best)")
        if match["best"]:
            return session.best(guarded(session.state).votes)
        return guarded(lambda: session.candidate(int(match["pair"]), match["side"]))

    @app.get("/api/sessions/{session_id}/audio/{candidate}.wav")
    def audio(session_id: str, candidate: str) -> FileResponse:
        session = session_of(session_id)
        played = player.render_to(session.audio_folder, unit_of(session, candidate))
        return FileResponse(played.path, media_type="audio/wav")

    @app.post("/api/sessions/{session_id}/play")
    def play(session_id: str, body: PlayRequest) -> dict[str, Any]:
        """Hardware: play the candidate on the synth now (a new take, heard in the room)
        and keep the recording; elsewhere the page plays the WAV itself."""
        session = session_of(session_id)
        unit = unit_of(session, body.candidate)
        if not player.is_device:
            return {"played": False, "candidate": body.candidate}
        played = player.render_to(session.audio_folder, unit, fresh=True)
        return {
            "played": True,
            "candidate": body.candidate,
            "knobs": played.knobs,
            "take": played.take,
        }

    return app


def state_json(session: Session, state: SessionState, player: Player) -> dict[str, Any]:
    """What the page shows: the pair, the best patch with its knob values, the history."""
    knobs = session.config.knobs
    best = session.best(state.votes)
    base = f"/api/sessions/{session.id}/audio"
    pair = state.pair

    def patch(unit: tuple[float, ...]) -> dict[str, Any]:
        return {
            "unit": list(unit),
            "knobs": {k.name: k.physical(u) for k, u in zip(knobs, unit, strict=True)},
        }

    counts = {"a": 0, "b": 0, "both_bad": 0}
    for vote in state.votes:
        counts[vote.outcome] += 1
    return {
        "session": session.id,
        "sound": session.config.target,
        "backend": session.config.backend,
        "device": player.is_device,
        "seed": session.config.seed,
        "knobs": [
            {"name": k.name, "low": k.low, "high": k.high, "unit": k.unit, "curve": k.curve}
            for k in knobs
        ],
        "pair": {
            "id": pair.id,
            "a": {**patch(pair.a), "audio": f"{base}/{pair.id}-a.wav"},
            "b": {**patch(pair.b), "audio": f"{base}/{pair.id}-b.wav"},
        },
        "best": {**patch(best), "audio": f"{base}/best.wav"},
        "votes": len(state.votes),
        "counts": counts,
        "history": list(state.history),
        "recovered": state.recovered,
    }


def page_url(host: str, port: int, session_id: str) -> str:
    """The URL that opens (or resumes) ``session_id``."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/?session={session_id}"


def static_folder() -> Path:
    return Path(str(STATIC))


def _check_port_free(host: str, port: int) -> None:
    """OSError saying so if ``host:port`` cannot be bound (uvicorn would exit instead)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port} ({err.strerror}); try --port") from None


def _announcing_server(config, announce):
    """uvicorn's server, calling ``announce()`` once it listens (not before)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                announce()

    return Server(config)


def serve(
    spec: SoundSpec | None,
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    session_id: str | None = None,
    seed: int = 0,
    open_browser: bool = False,
    search: str = "model",
) -> int:
    """Run the app until Ctrl-C, then close the player (a synth: all notes off).

    ``session_id`` resumes that session, with the sound and backend it was made for
    (``spec`` None), or checks that ``spec`` is that. Otherwise a new session is made.
    """
    import uvicorn

    store = SessionStore(root)
    session = None
    if session_id is not None:
        try:
            session = store.open(session_id)
        except SessionNotFoundError as err:
            raise ValueError(str(err)) from None
        saved = SoundSpec.of(session.config)
        if spec is not None and spec != saved:
            raise ValueError(
                f"session {session_id} tunes {session.config.target} on "
                f"{saved.backend}; leave out --env/--plant/--backend to resume it"
            )
        spec, seed = saved, session.config.seed
    assert spec is not None
    _check_port_free(host, port)
    local = host in LOCAL_HOSTS
    if not local:
        print(
            f"prefer: warning: listening on {host}, not 127.0.0.1: anyone who can reach "
            "this machine can vote and play your synth",
            file=sys.stderr,
        )
    print(f"prefer: loading {spec.env_id or spec.plant} on the {spec.backend} backend…", flush=True)
    player = Player(spec, seed=seed)
    try:
        if session is None:
            session = store.create(spec.config(player.knobs, seed, search))
        app = create_app(store, player, seed, LOCAL_HOSTS if local else ("*",), search)
        url = page_url(host, port, session.id)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")

        def announce() -> None:
            print(f"prefer: session {session.id} in {session.folder}", flush=True)
            print(f"prefer: open {url}  (Ctrl-C stops)", flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(url)

        server = _announcing_server(config, announce)
        try:
            server.run()
        except KeyboardInterrupt:
            # uvicorn shuts down on the first Ctrl-C, then raises it again: a clean stop.
            pass
    finally:
        player.close()
    print("prefer: stopped; the session is saved", flush=True)
    return 0
