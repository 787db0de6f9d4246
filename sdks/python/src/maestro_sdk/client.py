"""The HTTP API client: submit, list, get, receipts (ours and Sigstore bundles), proofs,
checkpoints, keys, search and disclosure packs, with :class:`ApiError` subclasses that carry
the API's stable error ``code`` (and the validation problems, retry time or denied
execution when the API sends them).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping, Optional, Union

import httpx

from .keys import PublicKey
from .models import (
    ConsistencyProof,
    ErrorBody,
    Execution,
    ExecutionList,
    InclusionProof,
    Keys,
    LogInfo,
    Manifest,
    SearchResults,
)
from .receipt import Report, Trust, verify_receipt


class ApiError(Exception):
    """An error answer of the API: HTTP ``status``, stable ``code``, ``message`` and the
    full ``body``."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(f"{status} {body.code}: {body.message}")
        self.status = status
        self.code = body.code
        self.message = body.message
        self.body = body


class ManifestRejected(ApiError):
    """``manifest_invalid``: ``problems`` lists every problem."""

    @property
    def problems(self) -> list[Any]:
        return list(self.body.problems)


class DeniedByPolicy(ApiError):
    """``denied_by_policy``: ``execution`` is the recorded (denied) execution."""

    @property
    def execution(self) -> Optional[Execution]:
        return self.body.execution


class RateLimited(ApiError):
    """``rate_limited`` or ``queue_full``: retry after ``retry_after`` seconds."""

    @property
    def retry_after(self) -> Optional[int]:
        return self.body.retry_after_seconds


class NotFound(ApiError):
    """``not_found`` (also another tenant's object)."""


class Unauthorized(ApiError):
    """``unauthenticated`` or ``forbidden``."""


_BY_CODE: dict[str, type[ApiError]] = {
    "manifest_invalid": ManifestRejected,
    "denied_by_policy": DeniedByPolicy,
    "rate_limited": RateLimited,
    "queue_full": RateLimited,
    "not_found": NotFound,
    "unauthenticated": Unauthorized,
    "forbidden": Unauthorized,
}


def _error(response: httpx.Response) -> ApiError:
    try:
        body = ErrorBody.model_validate(response.json())
    except (ValueError, json.JSONDecodeError):
        body = ErrorBody(code="http_error", message=response.text[:200] or response.reason_phrase)
    return _BY_CODE.get(body.code, ApiError)(response.status_code, body)


ManifestInput = Union[Manifest, Mapping[str, Any], str]
"""A manifest as a model, a parsed document, or YAML/JSON text."""


class Client:
    """A client of one appliance. ``url`` and ``token`` default to ``MAESTRO_URL`` and
    ``MAESTRO_TOKEN``. Use it as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        base = url or os.environ.get("MAESTRO_URL") or "http://127.0.0.1:7070"
        self.token = token if token is not None else os.environ.get("MAESTRO_TOKEN")
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=base.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = kwargs.pop("params", None)
        if params is not None:
            kwargs["params"] = {k: _param(v) for k, v in params.items() if v is not None}
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response

    # --- executions ---

    def submit(
        self,
        manifest: Optional[ManifestInput] = None,
        *,
        workflow: Optional[str] = None,
        wait: Optional[str] = None,
        canary: bool = False,
        tenant: Optional[str] = None,
    ) -> Execution:
        """Submits a manifest (model, document or YAML/JSON text) or an embedded workflow by
        name. ``wait`` (e.g. ``"30s"``, at most 5m) waits for the result. Raises
        :class:`ManifestRejected`, :class:`DeniedByPolicy`, :class:`RateLimited`, …"""
        params: dict[str, Any] = {"wait": wait}
        if isinstance(manifest, str):
            params.update({"tenant": tenant, "canary": canary or None})
            r = self._request(
                "POST",
                "/api/v1/executions",
                params=params,
                content=manifest.encode("utf-8"),
                headers={"content-type": "application/yaml"},
            )
        else:
            body: dict[str, Any] = {"canary": canary}
            if manifest is not None:
                body["manifest"] = (
                    manifest.to_document() if isinstance(manifest, Manifest) else dict(manifest)
                )
            if workflow is not None:
                body["workflow"] = workflow
            if tenant is not None:
                body["tenant"] = tenant
            r = self._request("POST", "/api/v1/executions", params=params, json=body)
        return Execution.model_validate(r.json())

    def list_executions(
        self,
        *,
        status: Optional[str] = None,
        name: Optional[str] = None,
        canary: Optional[bool] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        tenant: Optional[str] = None,
    ) -> ExecutionList:
        """One page of executions, newest first."""
        r = self._request(
            "GET",
            "/api/v1/executions",
            params={"status": status, "name": name, "canary": canary, "limit": limit, "cursor": cursor, "tenant": tenant},
        )
        return ExecutionList.model_validate(r.json())

    def iter_executions(self, **filters: Any) -> Iterator[Any]:
        """Every execution matching the filters, following cursors."""
        cursor = None
        while True:
            page = self.list_executions(cursor=cursor, **filters)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get_execution(self, execution_id: str, *, tenant: Optional[str] = None) -> Execution:
        """One execution."""
        r = self._request("GET", f"/api/v1/executions/{execution_id}", params={"tenant": tenant})
        return Execution.model_validate(r.json())

    def wait(self, execution_id: str, *, timeout: float = 60.0, interval: float = 0.2) -> Execution:
        """Polls an execution until it is final."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            e = self.get_execution(execution_id)
            if e.is_final:
                return e
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} is still {e.status}")
            time.sleep(interval)

    # --- receipts and the log ---

    def receipt(self, execution_id: str, *, format: str = "maestro", tenant: Optional[str] = None) -> bytes:
        """The receipt file of an execution (``format="sigstore"``: a Sigstore bundle)."""
        return self._request(
            "GET",
            f"/api/v1/executions/{execution_id}/receipt",
            params={"format": None if format == "maestro" else format, "tenant": tenant},
        ).content

    def receipt_by_digest(self, digest: str, *, format: str = "maestro") -> bytes:
        """A receipt by its digest (``sha256:…``)."""
        return self._request(
            "GET", f"/api/v1/receipts/{digest}", params={"format": None if format == "maestro" else format}
        ).content

    def proof(self, execution_id: str, *, tree_size: Optional[int] = None) -> InclusionProof:
        """The inclusion proof of an execution's receipt, with its signed checkpoint."""
        r = self._request("GET", f"/api/v1/executions/{execution_id}/proof", params={"tree_size": tree_size})
        return InclusionProof.model_validate(r.json())

    def consistency(self, old_size: int, new_size: Optional[int] = None) -> ConsistencyProof:
        """A consistency proof between two tree sizes."""
        r = self._request("GET", "/api/v1/log/consistency", params={"from": old_size, "to": new_size})
        return ConsistencyProof.model_validate(r.json())

    def log(self) -> LogInfo:
        """The log origin and latest checkpoint."""
        return LogInfo.model_validate(self._request("GET", "/api/v1/log").json())

    def checkpoint(self) -> str:
        """The latest signed checkpoint note."""
        return self._request("GET", "/api/v1/log/checkpoint").text

    def keys(self) -> Keys:
        """The public keys that verify receipts and checkpoints."""
        return Keys.model_validate(self._request("GET", "/api/v1/keys").json())

    def trust(self, *, pin_origin: bool = True) -> Trust:
        """A :class:`Trust` from the appliance's published keys (trust on first use: for real
        verification, distribute the keys out of band)."""
        k = self.keys()
        return Trust([PublicKey.from_pem(v.pem) for v in k.keys], k.log_origin if pin_origin else None)

    def verify(self, execution_id: str, trust: Optional[Trust] = None) -> Report:
        """Downloads an execution's receipt and verifies it offline."""
        return verify_receipt(self.receipt(execution_id), trust or self.trust())

    # --- search, disclosure, meta ---

    def search(
        self, q: str = "", *, limit: Optional[int] = None, cursor: Optional[str] = None, tenant: Optional[str] = None
    ) -> SearchResults:
        """Searches executions, receipts and decisions (``docs/search.md``)."""
        r = self._request("GET", "/api/v1/search", params={"q": q, "limit": limit, "cursor": cursor, "tenant": tenant})
        return SearchResults.model_validate(r.json())

    def disclosure(
        self,
        region: str,
        *,
        execution_id: Optional[str] = None,
        artifacts: bool = False,
        explain: bool = False,
        tenant: Optional[str] = None,
        out: Optional[str] = None,
    ) -> bytes:
        """Downloads a disclosure pack (deterministic tar.gz) for a region, of the tenant or
        of one execution; streams it to ``out`` when given (and returns b"")."""
        path = (
            f"/api/v1/executions/{execution_id}/disclosure" if execution_id else "/api/v1/disclosure"
        )
        params = {
            "region": region,
            "tenant": tenant,
            "artifacts": True if artifacts else None,
            "explain": "all" if explain else None,
        }
        params = {k: _param(v) for k, v in params.items() if v is not None}
        with self._http.stream("GET", path, params=params) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            if out is None:
                return r.read()
            tmp = out + ".partial"
            with open(tmp, "wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
            os.replace(tmp, out)
            return b""

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of Manifest v1."""
        data: dict[str, Any] = self._request("GET", "/api/v1/schema/manifest-v1.json").json()
        return data

    def version(self) -> dict[str, Any]:
        """Version, store schema version and log origin."""
        data: dict[str, Any] = self._request("GET", "/api/v1/version").json()
        return data

    def workflows(self) -> Any:
        """The embedded workflows."""
        return self._request("GET", "/api/v1/workflows").json()

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False


def _param(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v
