"""The HTTP service: FastAPI routes over the models holding an alias, behind a raw-ASGI fast path.

    app = build_app(ServeConfig(tracking_uri="sqlite:///mlflow.db", models=("recsys-quickstart",)))
    uvicorn.run(app, loop="uvloop", http="httptools", access_log=False)

`GET /users/{user_id}/recommendations` for a known user and a cached k is answered by `FastPath` from pre-serialised
bytes without entering FastAPI; everything else (other k, unknown users, invalid input, every other route) goes to
the FastAPI app, which owns validation, error messages and the OpenAPI schema. Reloads build a new `ServingState`
in a worker thread and swap one reference, so requests in flight finish on the state they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, model_validator

from recsys.errors import RecsysError
from recsys.logging import get_logger
from recsys.serving.loader import LoadedModel, ModelLoader, ServeConfig, ServingState, public_error
from recsys.serving.predictor import coerce_ids

_log = get_logger(__name__)

ADMIN_TOKEN_ENV = "RECSYS_ADMIN_TOKEN"
USER_PREFIX, USER_SUFFIX = "/users/", "/recommendations"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_ID_LEN = 256
MAX_HISTORY = 1000


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class ScoredItem(BaseModel):
    item_id: int | str
    score: float | None


class ItemList(BaseModel):
    k: int
    reason: str = Field(description="`personalised`, `neighbours`, or the fallback used (`popular_items`)")
    fallback: bool
    model: ModelRef
    items: list[ScoredItem]


class Recommendations(ItemList):
    user_id: str


class SimilarItems(ItemList):
    item_id: str


class HistoryRequest(BaseModel):
    items: list[int | str] = Field(default_factory=list, max_length=MAX_HISTORY,
                                   description="the user's item ids, e.g. this session's (unknown ids are ignored)")
    k: int | None = Field(None, ge=1, description="list length; default the model's k")
    user_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LEN,
                                description="optional: a known user's training history is added to `items`")


class FoldedIn(ItemList):
    user_id: str | None
    unknown_items: list[str] = Field(description="given item ids the model does not know (ignored)")


class PredictorAnswer(BaseModel):
    model: ModelRef
    results: list[dict[str, Any]] = Field(description="the predictor's output rows")


class SegmentRequest(BaseModel):
    sessions: list[dict[str, float]] = Field(min_length=1, max_length=1000,
                                             description="one object of session features per session")
    session_ids: list[str] | None = Field(None, description="optional ids, one per session, echoed back")

    @model_validator(mode="after")
    def _same_length(self) -> SegmentRequest:
        if self.session_ids is not None and len(self.session_ids) != len(self.sessions):
            raise ValueError(f"session_ids must have one id per session: got {len(self.session_ids)} ids "
                             f"for {len(self.sessions)} sessions")
        return self


class LoadedModelInfo(ModelRef):
    run_id: str | None
    task: str
    loaded_at: str


class ModelsInfo(BaseModel):
    alias: str
    loaded: bool = Field(description="false until the first load has finished (models, missing: empty till then)")
    models: list[LoadedModelInfo]
    tasks: dict[str, str] = Field(description="task -> registered model answering it")
    missing: list[str] = Field(description="configured models with no version holding the alias")
    errors: dict[str, str] = Field(description="model name -> why its alias version could not be loaded")
    last_reload_error: str | None = Field(description="why the last reload failed (the previous models kept serving)")


class Message(BaseModel):
    detail: str


class Invalid(BaseModel):
    detail: str = Field(description="what is wrong, one clause per invalid field")
    errors: list[dict[str, Any]] = Field(default_factory=list, description="the validation errors, structured")


class ServiceHolder:
    """Owns the current `ServingState` (one reference) and rebuilds it on reload."""

    def __init__(self, config: ServeConfig, loader: ModelLoader | None = None) -> None:
        self.config = config
        self.loader = loader or ModelLoader(config)
        self.state = ServingState()
        self.last_error: str | None = None
        self._reload_lock = threading.Lock()

    def reload(self) -> dict[str, Any]:
        """Build a new state fully, then swap it in; on failure the current state keeps serving."""
        with self._reload_lock:
            before = self.state
            try:
                new = self.loader.load(before)
            except Exception as exc:
                self.last_error = public_error(exc)
                _log.exception("reload failed; still serving %s", before.key())
                raise
            self.state = new
            self.last_error = None
        changed = sorted(set(new.key()) - set(before.key()))
        if changed or not before.loaded:
            _log.info("serving %s", [f"{n} v{v}" for n, v in new.key()] or "nothing")
        return {"changed": [{"name": n, "version": v} for n, v in changed],
                "models": [m.describe() for m in new.models], "missing": list(new.missing), "errors": new.errors}


class FastPath:
    """Raw-ASGI front: answers cached recommendations from bytes, delegates everything else to `app`."""

    def __init__(self, app: Any, holder: ServiceHolder) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in BODY_METHODS:
            await self._limited(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(USER_PREFIX) and path.endswith(USER_SUFFIX):
                index = self.holder.state.recommend
                if index is not None:
                    qs: bytes = scope["query_string"]
                    if not qs:
                        k = index.default_k
                    elif qs[:2] == b"k=" and qs[2:].isdigit() and len(qs) < 8:
                        k = int(qs[2:])
                    else:
                        k = -1
                    cached = index.cache.get(k)
                    if cached is not None:
                        user_id = path[len(USER_PREFIX):-len(USER_SUFFIX)]
                        messages = cached.get(user_id)
                        if messages is None and 0 < len(user_id) <= MAX_ID_LEN and "/" not in user_id:
                            messages = index.cold_start_messages(user_id, k)  # what the route would answer
                        if messages is not None:
                            await send(messages[0])
                            await send(messages[1])
                            return
        await self.app(scope, receive, send)


    async def _limited(self, scope: dict, receive: Any, send: Any) -> None:
        """Bodies over `max_body_bytes` get 413 before parsing: by Content-Length at once, else (chunked) as
        soon as the received bytes pass the limit. Nothing larger is ever buffered or handed to the routes."""
        limit = self.holder.config.max_body_bytes
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen = 0
        refused = False

        async def counted() -> dict:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a streamed (chunked) body passed the limit: answer now, stop the app reading
                    refused = True
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            if not refused:  # after the 413 the app's own answer (to the 'disconnect') is dropped
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise


async def _too_large(send: Any, limit: int) -> None:
    body = orjson.dumps({"detail": f"request body is larger than the limit of {limit} bytes "
                                   f"({limit / (1 << 20):.2g} MiB); send less per request "
                                   "(e.g. at most 1000 sessions per POST /segments)"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _bearer_check():
    bearer = HTTPBearer(auto_error=False, description=f"admin token from ${ADMIN_TOKEN_ENV}")

    def check(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        expected = os.environ.get(ADMIN_TOKEN_ENV, "")
        if not expected:
            raise HTTPException(401, f"admin endpoints are disabled: start the service with ${ADMIN_TOKEN_ENV} set",
                                headers={"WWW-Authenticate": "Bearer"})
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
            raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def _require(state: ServingState, task: str, alias: str, names: tuple[str, ...]) -> LoadedModel:
    model = state.by_task.get(task)
    if model is None:
        if not state.loaded:
            raise HTTPException(503, "models are still loading; retry when GET /ready returns 200")
        failed = {n: e for n, e in state.errors.items() if n in names and n not in state.loaded_names}
        if failed:
            why = "; ".join(f"{n}@{alias}: {e}" for n, e in failed.items())
            raise HTTPException(503, f"no loaded {alias} answers task {task!r}: the version holding alias {alias!r} "
                                     f"failed to load ({why}); fix or re-promote it, then POST /admin/reload")
        raise HTTPException(503, f"no {alias} for task {task!r}: none of the served models {list(names)} "
                                 f"has a {task!r} version with alias {alias!r}; promote one, then POST /admin/reload")
    return model


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


def create_api(holder: ServiceHolder) -> FastAPI:
    """The FastAPI app (routes, validation, OpenAPI). `build_app` puts the fast path in front of it."""
    cfg = holder.config
    poll_task: list[asyncio.Task] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poll_task.append(asyncio.create_task(_poll(holder)))
        yield
        for t in poll_task:
            t.cancel()
        holder.loader.close()

    api = FastAPI(title="recsys serving", version="1", lifespan=lifespan,
                  description=f"Models holding alias `{cfg.alias}` among {list(cfg.models)} "
                              f"in the registry at the configured tracking URI.")
    admin = _bearer_check()
    errors: dict[int | str, dict[str, Any]] = {404: {"model": Message}, 422: {"model": Invalid},
                                               503: {"model": Message}}

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = [f"{' '.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(msgs) or "invalid request",
                                                      "errors": jsonable_encoder(exc.errors())})

    @api.get("/users/{user_id}/recommendations", response_model=Recommendations, responses=errors,
             tags=["recommend"], summary="top-k items for a user (unknown users: most popular items)")
    async def recommendations(user_id: str = Path(min_length=1, max_length=MAX_ID_LEN),
                        k: int | None = Query(None, ge=1, le=cfg.max_k,
                                              description="list length; default the model's k")) -> Response:
        state = holder.state
        _require(state, "recommend", cfg.alias, cfg.models)
        index = state.recommend
        assert index is not None  # _require: a recommend model is loaded
        return _json(index.recommendations(user_id, k or index.default_k))

    @api.post("/recommendations", response_model=FoldedIn, responses=errors, tags=["recommend"],
              summary="top-k items for a user given by their history (fold-in; users the model never saw)")
    def recommendations_from_history(body: HistoryRequest) -> Response:
        if body.k is not None and body.k > cfg.max_k:
            raise HTTPException(422, f"k must be <= max_k={cfg.max_k}, but got k={body.k}")
        state = holder.state
        _require(state, "recommend", cfg.alias, cfg.models)
        index = state.recommend
        assert index is not None  # _require: a recommend model is loaded
        return _json(index.fold_in(body.user_id, body.items, body.k or index.default_k))

    @api.get("/items/{item_id}/similar", response_model=SimilarItems, responses=errors, tags=["recommend"],
             summary="the k items most like an item (the `similar` champion if one is served, else the recommend one)")
    async def similar(item_id: str = Path(min_length=1, max_length=MAX_ID_LEN),
                k: int | None = Query(None, ge=1, le=cfg.max_k)) -> Response:
        state = holder.state
        if "similar" in state.by_task:
            return _similar_from(state.by_task["similar"], item_id, k)
        model = _require(state, "recommend", cfg.alias, cfg.models)
        index = state.recommend
        assert index is not None  # _require: a recommend model is loaded
        if index.sim_items is None:
            raise HTTPException(503, f"{model.name} v{model.version} ({cfg.alias}) does not answer similar-item "
                                     f"queries; promote a model that does (item_knn, als)")
        body = index.similar(item_id, k or index.default_k)
        if body is None:
            raise HTTPException(404, f"item {item_id!r} is unknown to {model.name} v{model.version}; "
                                     f"similar items need an item from its catalogue")
        return _json(body)

    @api.get("/products/{product_id}/audience", response_model=PredictorAnswer, responses=errors,
             tags=["audience"], summary="the n users a merchant should target for a product")
    def audience(product_id: str = Path(min_length=1, max_length=MAX_ID_LEN),
                 n: int = Query(100, ge=1, le=10000)) -> dict[str, Any]:
        model = _require(holder.state, "audience", cfg.alias, cfg.models)
        rows = _predict(model, pd.DataFrame({"item_id": [product_id]}), {"n": n})
        if not rows:
            raise HTTPException(404, f"product {product_id!r} is unknown to {model.name} v{model.version} "
                                     f"and it has no fallback audience")
        return {"model": model.info, "results": rows}

    @api.get("/search", response_model=PredictorAnswer, responses=errors, tags=["search"],
             summary="the k items that best match a text query")
    def search(q: str = Query(min_length=1, max_length=500, description="query text"),
               k: int = Query(10, ge=1, le=cfg.max_k)) -> dict[str, Any]:
        if not q.strip():
            raise HTTPException(422, "q must contain non-space characters, but got only whitespace")
        model = _require(holder.state, "search", cfg.alias, cfg.models)
        return {"model": model.info, "results": _predict(model, pd.DataFrame({"query": [q]}), {"k": k})}

    @api.post("/segments", response_model=PredictorAnswer, responses=errors, tags=["segment"],
              summary="assign sessions (feature objects) to behavioural segments")
    def segments(body: SegmentRequest) -> dict[str, Any]:
        model = _require(holder.state, "segment", cfg.alias, cfg.models)
        frame = pd.DataFrame(body.sessions)
        if body.session_ids is not None:
            frame.insert(0, "session_id", body.session_ids)
        return {"model": model.info, "results": _predict(model, frame, {})}

    @api.get("/health", response_model=dict[str, str], tags=["ops"], summary="liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/ready", response_model=dict[str, Any], responses={503: {"model": Message}}, tags=["ops"],
             summary="200 once at least one model is loaded")
    async def ready() -> JSONResponse:
        state = holder.state
        if not state.loaded:
            return JSONResponse({"detail": "models are still loading", "ready": False}, status_code=503)
        if not state.models:
            detail = (f"the versions holding alias {cfg.alias!r} failed to load: "
                      + "; ".join(f"{n}: {e}" for n, e in state.errors.items())) if state.errors else \
                f"no model holds alias {cfg.alias!r} among {list(cfg.models)}"
            return JSONResponse({"detail": detail, "ready": False, "errors": state.errors}, status_code=503)
        return JSONResponse({"ready": True, "tasks": sorted(state.by_task)})

    @api.get("/models", response_model=ModelsInfo, tags=["ops"], summary="the loaded models")
    async def models() -> dict[str, Any]:
        state = holder.state
        return {"alias": cfg.alias, "loaded": state.loaded, "models": [m.describe() for m in state.models],
                "tasks": {t: m.name for t, m in state.by_task.items()}, "missing": list(state.missing),
                "errors": state.errors, "last_reload_error": holder.last_error}

    @api.post("/admin/reload", dependencies=[Depends(admin)], tags=["admin"],
              responses={401: {"model": Message}, 503: {"model": Message}},
              summary="re-resolve the alias now and swap in changed models")
    async def reload() -> JSONResponse:
        try:
            out = await asyncio.to_thread(holder.reload)
        except Exception as exc:  # noqa: BLE001 - the old state keeps serving; say why
            return JSONResponse({"detail": f"reload failed, still serving the previous models: {public_error(exc)}"},
                                503)
        return JSONResponse(out)

    return api


def _similar_from(model: LoadedModel, item_id: str, k: int | None) -> Response:
    """`/items/{id}/similar` answered by the champion of the `similar` task (its predictor, per request)."""
    k = k or int(getattr(model.predictor, "default_k", 10))
    rows = _predict(model, pd.DataFrame({"item_id": [item_id]}), {"k": k})
    known = getattr(getattr(model.predictor, "model", None), "items_", None)
    if not rows and (known is None or known.index(coerce_ids(np.asarray([item_id]), known))[0] < 0):
        raise HTTPException(404, f"item {item_id!r} is unknown to {model.name} v{model.version}; "
                                 f"similar items need an item from its catalogue")
    items = [{"item_id": r["similar_item_id"], "score": r["score"]} for r in rows]
    return _json(orjson.dumps({"item_id": item_id, "k": k, "reason": "neighbours", "fallback": False,
                               "model": model.info, "items": items}))


def _predict(model: LoadedModel, frame: pd.DataFrame, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return model.predict(frame, params)
    except (RecsysError, KeyError, ValueError) as exc:
        raise HTTPException(422, f"{model.name} v{model.version} rejected the input: {exc}") from exc


async def _poll(holder: ServiceHolder) -> None:
    """Initial load, then re-resolve the alias every `poll_interval` seconds (0: only on POST /admin/reload)."""
    interval = holder.config.poll_interval
    while True:
        try:
            await asyncio.to_thread(holder.reload)
        except Exception:  # noqa: BLE001 - logged by reload; keep serving and try again later
            _log.debug("alias poll failed; next try in %ss", interval)
        if interval <= 0 and holder.state.loaded:
            return
        await asyncio.sleep(interval if interval > 0 else 1.0)


def build_app(config: ServeConfig) -> FastPath:
    """The ASGI app to serve: the fast path in front of the FastAPI app (`.app`, `.holder` for tests/tools)."""
    holder = ServiceHolder(config)
    return FastPath(create_api(holder), holder)


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, port_file: str | None = None) -> None:
    """Run the service with uvicorn (uvloop + httptools, one worker, no access log, no proxy-header rewriting).

    The socket is bound here, before uvicorn starts: `port=0` takes a free port from the OS with no window for
    another process to grab it, and `port_file` (written atomically once bound) reports the port to whoever
    started the service.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RecsysError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port, "
                          "or --port 0 for any free one") from exc
    bound = sock.getsockname()[1]
    _log.info("serving on http://%s:%d", host, bound)
    if port_file:
        tmp = f"{port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{bound}\n")
        os.replace(tmp, port_file)
    server = uvicorn.Server(uvicorn.Config(
        build_app(config), host=host, port=bound, loop="uvloop", http="httptools", access_log=False,
        log_level="warning", lifespan="on", proxy_headers=False, server_header=False))
    server.run(sockets=[sock])
