"""Temporal client wiring shared by the API, the worker, scripts and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from app.codec import EncryptionCodec
from app.metrics import temporal_runtime
from app.settings import Settings


def data_converter(keys: list[bytes]) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS (client certificate) and/or a private CA from settings; plain TLS for
    an API key alone (Temporal Cloud); no TLS otherwise."""
    files = (
        settings.temporal_tls_client_cert_path,
        settings.temporal_tls_client_key_path,
        settings.temporal_tls_server_ca_path,
    )
    if not any(files) and not settings.temporal_tls_server_name:
        return bool(settings.temporal_tls or settings.temporal_api_key)
    cert, key, ca = (path.read_bytes() if path else None for path in files)
    return TLSConfig(
        client_cert=cert,
        client_private_key=key,
        server_root_ca_cert=ca,
        domain=settings.temporal_tls_server_name,
    )


async def connect(
    settings: Settings,
    address: str | None = None,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """The process's client: its runtime records the SDK's metrics (app/metrics.py)."""
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.encryption_keys),
        tls=tls_config(settings),
        api_key=settings.temporal_api_key or None,
        runtime=temporal_runtime(),
        interceptors=interceptors,
        lazy=lazy,
    )
