"""Open Inference Protocol v2 endpoints: thin translations of HTTP to the data plane."""

from __future__ import annotations

from inspect import signature

from fastapi import APIRouter, Response

from fortify.service.deps import Admin, Inferrer, Plane
from fortify.service.protocol import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
)

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 503)}
# OIP clients (tritonclient among them) send JSON without a Content-Type: parse it anyway. FastAPI
# releases before this option already did.
_LENIENT = {"strict_content_type": False} if "strict_content_type" in signature(APIRouter).parameters else {}
router = APIRouter(prefix="/v2", tags=["inference"], responses=ERRORS, **_LENIENT)


def _flag(value: bool) -> Response:
    # the protocol: 200 means true, a 4xx false, and the bodies are empty
    return Response(status_code=200 if value else 400)


@router.get("", response_model=MetadataServerResponse, summary="Server metadata")
def server_metadata(plane: Plane) -> MetadataServerResponse:
    return plane.server_metadata()


@router.get("/health/live", summary="Liveness (no key needed)", response_class=Response)
def live(plane: Plane) -> Response:
    return _flag(plane.live())


@router.get("/health/ready", summary="Readiness (no key needed)", response_class=Response)
def ready(plane: Plane) -> Response:
    return _flag(plane.ready())


@router.get("/models/{model_name}", response_model=MetadataModelResponse, summary="Model metadata")
def model_metadata(model_name: str, plane: Plane, _: Inferrer) -> MetadataModelResponse:
    return plane.model_metadata(model_name)


@router.get("/models/{model_name}/versions/{model_version}", response_model=MetadataModelResponse)
def version_metadata(model_name: str, model_version: str, plane: Plane, _: Inferrer) -> MetadataModelResponse:
    return plane.model_metadata(model_name, model_version)


@router.get("/models/{model_name}/ready", summary="Model readiness", response_class=Response)
def model_ready(model_name: str, plane: Plane, _: Inferrer) -> Response:
    return _flag(plane.model_ready(model_name))


@router.get("/models/{model_name}/versions/{model_version}/ready", response_class=Response)
def version_ready(model_name: str, model_version: str, plane: Plane, _: Inferrer) -> Response:
    return _flag(plane.model_ready(model_name, model_version))


@router.post("/models/{model_name}/infer", response_model=InferenceResponse, response_model_exclude_none=True)
async def infer(model_name: str, body: InferenceRequest, plane: Plane, who: Inferrer) -> InferenceResponse:
    return await plane.infer(model_name, None, body, who)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
)
async def infer_version(
    model_name: str, model_version: str, body: InferenceRequest, plane: Plane, who: Inferrer
) -> InferenceResponse:
    return await plane.infer(model_name, model_version, body, who)


@router.post("/repository/index", summary="Model repository index (extension)")
def repository_index(plane: Plane, _: Admin) -> list[dict[str, str]]:
    state = "READY" if plane.ready() else "UNAVAILABLE"
    name = plane.settings.model_name
    return [{"name": name, "version": v, "state": state, "reason": ""} for v in plane.served]
