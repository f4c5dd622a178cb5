"""Tenant credentials and application API keys: making them, and keeping them safe at rest.

A tenant's SigV4 secret must be readable again (a signature can only be verified by
recomputing it), so it is stored encrypted: AES-256-GCM under the deployment's master
key, with the access key id as associated data so a ciphertext copied onto another
tenant's row does not decrypt. API keys only ever need to be recognised, so the store
holds their SHA-256 (they are 256-bit random strings: a slow password hash would add
nothing but latency to every request) and an 8-character hint for display.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_BYTES = 32
_NONCE_BYTES = 12
_ACCESS_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
API_KEY_HINT_CHARS = 8


def new_access_key_id() -> str:
    """20 characters like AWS's (``AKFG`` + 16 base-32 characters: 80 random bits)."""
    return "AKFG" + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """40 characters of base64 (240 random bits), the length of an AWS secret key."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def new_api_key() -> str:
    """40 URL-safe characters (about 240 random bits), never starting with "-": a key is
    typed as a command-line argument, where a leading "-" reads as an option."""
    while True:
        key = secrets.token_urlsafe(30)
        if not key.startswith("-"):
            return key


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def api_key_hint(api_key: str) -> str:
    """What listings show of a key they can no longer read: its first characters."""
    return api_key[:API_KEY_HINT_CHARS] + "…"


class SecretBox:
    """Encrypts and decrypts tenants' secrets with the master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError(f"the master key must be {MASTER_KEY_BYTES} bytes")
        self._aead = AESGCM(master_key)

    def seal(self, secret: str, *, access_key_id: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), access_key_id.encode())
        return nonce + sealed

    def open(self, ciphertext: bytes, *, access_key_id: str) -> str:
        """The secret; ValueError when the ciphertext was not sealed for this key id
        under this master key (a wrong master key in the settings, or tampering)."""
        nonce, sealed = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, access_key_id.encode())
        except InvalidTag:
            raise ValueError(
                f"the secret of {access_key_id} does not decrypt with this master key"
            ) from None
        return plain.decode("utf-8")


def parse_master_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ValueError("the master key is not valid base64") from exc
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(f"the master key must be base64 of {MASTER_KEY_BYTES} bytes")
    return key


def load_master_key(configured: str, key_file: Path) -> bytes:
    """The configured key, else the key file's, creating the file (mode 0600) on first
    use so a laptop install needs no set-up. The file appears complete or not at all (a
    hard link of a written temporary file), so two processes starting together agree on
    one key."""
    if configured:
        return parse_master_key(configured)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{key_file.name}.", dir=key_file.parent)
        temporary = Path(name)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode("ascii") + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, key_file)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return parse_master_key(key_file.read_text())
