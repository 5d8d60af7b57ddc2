"""``ft.blackbox.from_url``: a deployed Open Inference Protocol v2 endpoint as a ``BlackBox``.

Every score- and label-based attack (Square, HopSkipJump, OnePixel, ConstrainedPGD, extraction) then
red-teams the endpoint through its auth, limits and guard. Each chunk of at most ``batch_size`` rows
is one infer request with FP32 JSON data; 429 and 503 answers are retried after their ``Retry-After``
(or an exponential backoff), transport errors with backoff, within ``max_retries`` and ``max_wait_s``.
What the endpoint said is kept in ``endpoint``: requests, retries, verdict counts, review rate.
Needs ``httpx`` (the ``serve`` extra). Works with any OIP server that returns a ``label`` output
(``output="labels"``) or a ``probabilities`` output (``"scores"``; fortify with
``expose_probabilities``); for servers that are not fortify, pass ``num_classes`` and ``bounds``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from torch import Tensor

from fortify.model import BlackBox, Output
from fortify.types import FortifyError

RETRY_STATUSES = (429, 502, 503, 504)


class EndpointError(FortifyError):
    """The endpoint refused a query for good (auth, a block, bad input) or stayed unavailable."""


class RemoteModel:
    """The HTTP side of ``from_url``: one OIP model, called with a batch, with retries and a tally."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None,
        version: str | None,
        timeout_s: float,
        max_retries: int,
        max_wait_s: float,
        backoff_s: float,
    ) -> None:
        import httpx

        self._httpx = httpx
        base = url.rstrip("/")
        self.alerts_url = base + "/alerts"
        path = f"/v2/models/{quote(model, safe='')}"
        if version is not None:
            path += f"/versions/{quote(version, safe='')}"
        self.metadata_url, self.infer_url = base + path, base + path + "/infer"
        headers = {"X-API-Key": api_key} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s)
        self.max_retries, self.max_wait_s, self.backoff_s = max_retries, max_wait_s, backoff_s
        self.output_name = "label"
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.waited_s = 0.0
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[int] = Counter()

    def metadata(self, *, retries: int | None = None) -> dict[str, Any]:
        """The model's OIP metadata (name, versions, platform, inputs, outputs, parameters); ``retries``
        overrides ``max_retries`` for this request."""
        return self._send("GET", self.metadata_url, None, retries=retries)

    def infer(self, x: Tensor) -> np.ndarray:
        """Labels ``(n,)`` or probabilities ``(n, C)`` for ``x`` ``(n, ...)``, as the endpoint says."""
        return self.infer_with_status(x, self.output_name)[0]

    def infer_with_status(self, x: Tensor, output_name: str) -> tuple[np.ndarray, list[str]]:
        """Output ``output_name`` for ``x`` and the endpoint's verdict status per row."""
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.detach().cpu().float().flatten().tolist(),
                }
            ],
            "outputs": [{"name": output_name}, {"name": "status"}],
        }
        response = self._send("POST", self.infer_url, body)
        outputs = {o.get("name"): o for o in response.get("outputs", [])}
        if output_name not in outputs:
            raise EndpointError(f"the endpoint's response has no {output_name!r} output")
        statuses = [str(s) for s in outputs.get("status", {}).get("data", [])]
        with self._lock:
            self.statuses.update(statuses)
        out = outputs[output_name]
        data = np.asarray([np.nan if v is None else v for v in out.get("data", [])], dtype=np.float64)
        try:
            return data.reshape(out.get("shape", [len(data)])), statuses
        except ValueError as exc:
            raise EndpointError(
                f"output {output_name!r} does not match its shape {out.get('shape')}"
            ) from exc

    def judge(self, x: Tensor, batch_size: int) -> tuple[Tensor, list[str]]:
        """The endpoint's labels ``(n,)`` and statuses for ``x``, in chunks; not counted as queries."""
        import torch

        labels: list[Tensor] = []
        statuses: list[str] = []
        for chunk in x.split(batch_size):
            out, status = self.infer_with_status(chunk, "label")
            labels.append(torch.from_numpy(out).long())
            statuses += status
        return torch.cat(labels), statuses

    def alerts(self, since: float) -> list[dict[str, Any]]:
        """Alerts the endpoint fired since ``since`` (epoch seconds), newest first, at most 1,000; needs a
        key with the review role. ``EndpointError`` when the answer has no list of ``items``."""
        items = self._send("GET", f"{self.alerts_url}?since={since}&limit=1000", None).get("items")
        if not isinstance(items, list):
            raise EndpointError(f"GET {self.alerts_url}: the answer has no list of items")
        return [item for item in items if isinstance(item, dict)]

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None, *, retries: int | None = None
    ) -> dict[str, Any]:
        httpx = self._httpx
        delay, waited = self.backoff_s, 0.0
        tries = (self.max_retries if retries is None else retries) + 1
        for attempt in range(tries):
            wait = delay
            try:
                response = self.client.request(method, url, json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    self.requests += 1
                    self.codes[response.status_code] += 1
                if response.status_code < 400:
                    return _json_object(response, f"{method} {url}")
                problem = f"HTTP {response.status_code}: {_error_text(response)}"
                if response.status_code not in RETRY_STATUSES:
                    raise EndpointError(f"{method} {url} -> {problem}")
                wait = _retry_after(response.headers.get("retry-after"), delay)
            if attempt == tries - 1 or waited + wait > self.max_wait_s:
                break
            with self._lock:
                self.retries += 1
                self.waited_s += wait
            time.sleep(wait)
            waited += wait
            delay *= 2
        raise EndpointError(f"{method} {url} failed after {attempt + 1} tries ({problem})")

    def stats(self) -> dict[str, Any]:
        """What the endpoint said so far: HTTP requests and codes, retries, verdict counts, review rate."""
        with self._lock:
            total = sum(self.statuses.values())
            flagged = total - self.statuses.get("ACCEPTED", 0)
            return {
                "requests": self.requests,
                "retries": self.retries,
                "waited_s": round(self.waited_s, 3),
                "http_codes": {str(k): v for k, v in sorted(self.codes.items())},
                "verdicts": dict(self.statuses),
                "review_rate": flagged / total if total else None,
            }

    def close(self) -> None:
        self.client.close()


class RemoteBlackBox(BlackBox):
    """A ``BlackBox`` over an OIP endpoint; ``endpoint`` is its ``RemoteModel`` (``endpoint.stats()``)."""

    def __init__(
        self, endpoint: RemoteModel, num_classes: int, bounds: Sequence[float], output: Output, **kw: Any
    ):
        super().__init__(endpoint.infer, num_classes, bounds, output, **kw)
        self.endpoint = endpoint

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "endpoint": self.endpoint.infer_url,
            "endpoint_stats": self.endpoint.stats(),
        }


def from_url(
    url: str,
    model: str = "fortify",
    api_key: str | None = None,
    *,
    version: str | None = None,
    output: Output | Literal["auto"] = "labels",
    num_classes: int | None = None,
    bounds: Sequence[float] | None = None,
    batch_size: int = 64,
    timeout_s: float = 30.0,
    max_retries: int = 8,
    probe_retries: int = 2,
    max_wait_s: float = 120.0,
    backoff_s: float = 0.25,
) -> RemoteBlackBox:
    """A ``BlackBox`` that queries model ``model`` at ``url`` (``http://host:port``) over OIP v2.

    ``output="labels"`` reads the ``label`` output; ``"scores"`` reads ``probabilities`` (a fortify
    server must set ``expose_probabilities``); ``"auto"`` takes scores when the metadata lists
    ``probabilities``, else labels. ``num_classes`` and ``bounds`` default to the metadata's
    parameters (fortify publishes them). The metadata request, the first contact, is retried only
    ``probe_retries`` times, so an unreachable URL fails within a second or two; later requests get
    ``max_retries``. Raises ``EndpointError`` (a ``FortifyError``) when the endpoint refuses for good
    (401, 403, 4xx) or stays unavailable past the retry budget.

    >>> bb = ft.blackbox.from_url("http://127.0.0.1:8000", model="fortify", api_key=key)
    >>> x_adv = ft.attacks.HopSkipJump()(bb, x, y, ft.Linf(0.1)); bb.endpoint.stats()
    """
    try:
        import httpx  # noqa: F401
    except ImportError as exc:
        raise FortifyError("from_url needs httpx: pip install 'fortify[serve]'") from exc
    if output not in ("labels", "scores", "auto"):
        raise FortifyError(f"output must be 'labels', 'scores' or 'auto', got {output!r}")
    endpoint = RemoteModel(
        url,
        model,
        api_key=api_key,
        version=version,
        timeout_s=timeout_s,
        max_retries=max_retries,
        max_wait_s=max_wait_s,
        backoff_s=backoff_s,
    )
    try:
        meta = endpoint.metadata(retries=probe_retries)
    except EndpointError as exc:
        endpoint.close()
        raise EndpointError(f"{url}: cannot reach model {model!r}: {exc}") from None
    params = meta.get("parameters")
    params = params if isinstance(params, dict) else {}
    if num_classes is None:
        num_classes = params.get("num_classes")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            raise FortifyError(f"{url}: the metadata does not give num_classes; pass num_classes=")
    if bounds is None:
        low, high = params.get("bounds_low", 0.0), params.get("bounds_high", 1.0)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise FortifyError(f"{url}: the metadata's bounds are not numbers; pass bounds=")
        bounds = (float(low), float(high))
    outputs = meta.get("outputs")
    names = {o.get("name") for o in outputs if isinstance(o, dict)} if isinstance(outputs, list) else set()
    chosen: Output = output if output != "auto" else "scores" if "probabilities" in names else "labels"
    endpoint.output_name = "label" if chosen == "labels" else "probabilities"
    if endpoint.output_name not in names:
        raise FortifyError(
            f"{url}: model {model!r} has no {endpoint.output_name!r} output "
            f"(outputs: {sorted(str(n) for n in names)})"
        )
    return RemoteBlackBox(endpoint, num_classes, bounds, chosen, batch_size=batch_size)


def _json_object(response: Any, what: str) -> dict[str, Any]:
    """The response's JSON object; ``EndpointError`` for anything else (the endpoint is untrusted)."""
    try:
        value = response.json()
    except ValueError:
        raise EndpointError(f"{what}: the answer is not JSON") from None
    if not isinstance(value, dict):
        raise EndpointError(f"{what}: the answer is not a JSON object")
    return value


def _retry_after(header: str | None, default: float) -> float:
    try:
        return max(0.0, float(header)) if header is not None else default
    except ValueError:
        return default


def _error_text(response: Any) -> str:
    try:
        return str(response.json().get("error", response.text))[:200]
    except ValueError:
        return response.text[:200]
