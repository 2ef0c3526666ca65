"""Temporal client wiring shared by the API, the worker, scripts and tests."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from app.codec import EncryptionCodec
from app.settings import Settings


def data_converter(keys: list[bytes]) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))


async def connect(settings: Settings, address: str | None = None) -> Client:
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.encryption_keys),
    )
