"""AES-GCM payload codec: Temporal history never holds plaintext personal data.

Every payload (workflow inputs, Update arguments, activity results) is encrypted
before it leaves the process. The first configured key encrypts; all configured
keys decrypt, selected by the key id stored beside the ciphertext, so a key can be
rotated by prepending a new one and keeping the old one until old histories age out.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
_NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class UnknownEncryptionKey(Exception):
    pass


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("EncryptionCodec needs at least one key")
        self._encrypt_id = key_id(keys[0])
        self._encrypt_key = AESGCM(keys[0])
        self._decrypt_keys = {key_id(k): AESGCM(k) for k in keys}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        key_ref = self._encrypt_id.encode()
        # The key id is authenticated data, so a ciphertext cannot be re-labelled.
        ciphertext = self._encrypt_key.encrypt(nonce, payload.SerializeToString(), key_ref)
        return Payload(
            metadata={"encoding": ENCODING, "encryption-key-id": key_ref},
            data=nonce + ciphertext,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_ref = payload.metadata.get("encryption-key-id", b"")
        aes = self._decrypt_keys.get(key_ref.decode())
        if aes is None:
            raise UnknownEncryptionKey(
                f"payload was encrypted with key {key_ref.decode()!r}, which is not configured"
            )
        plaintext = aes.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_ref)
        decoded = Payload()
        decoded.ParseFromString(plaintext)
        return decoded
