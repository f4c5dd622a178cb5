"""TLS settings and certificate files: reading, checking, reloading when they change."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from facegate.settings import Settings, TlsSettings
from facegate.tls import CertificateFiles, handshake_failure_reason, read_material
from tests.support.tls import Authority, Issued, replace_files


def settings_for(issued: Issued, authority: Authority) -> TlsSettings:
    return TlsSettings(
        cert_file=issued.cert_file, key_file=issued.key_file, ca_file=authority.ca_file
    )


def test_plaintext_by_default() -> None:
    assert not Settings.from_env({}).tls.enabled


def test_variables() -> None:
    tls = Settings.from_env(
        {
            "FACEGATE_TLS_CERT_FILE": "/tls/tls.crt",
            "FACEGATE_TLS_KEY_FILE": "/tls/tls.key",
            "FACEGATE_TLS_CA_FILE": "/tls/ca.crt",
            "FACEGATE_TLS_REQUIRE_CLIENT_CERT": "true",
        }
    ).tls
    assert tls == TlsSettings(
        cert_file=Path("/tls/tls.crt"),
        key_file=Path("/tls/tls.key"),
        ca_file=Path("/tls/ca.crt"),
        require_client_cert=True,
    )
    assert tls.enabled


@pytest.mark.parametrize(
    "env",
    [
        {"FACEGATE_TLS_CERT_FILE": "/tls/tls.crt"},
        {"FACEGATE_TLS_REQUIRE_CLIENT_CERT": "1"},
        {
            "FACEGATE_TLS_CERT_FILE": "/tls/tls.crt",
            "FACEGATE_TLS_KEY_FILE": "/tls/tls.key",
            "FACEGATE_TLS_REST_REQUIRE_CLIENT_CERT": "1",
        },
    ],
)
def test_incomplete_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="FACEGATE_TLS"):
        Settings.from_env(env)


def test_a_key_of_another_certificate_is_refused_without_quoting_it(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    one, other = authority.issue("one"), authority.issue("other")
    mixed = TlsSettings(cert_file=one.cert_file, key_file=other.key_file)
    with pytest.raises(ValueError, match="is not the key of") as refused:
        read_material(mixed)
    assert other.key_file.read_text() not in str(refused.value)


def test_files_are_read_again_only_when_they_change(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    served = authority.issue("served", days=5)
    files = CertificateFiles(settings_for(served, authority))
    assert files.current.not_after == served.certificate.not_valid_after_utc.timestamp()
    assert _expiry() == files.current.not_after
    assert files.renewed() is None

    renewed = authority.issue("renewed", days=9)
    replace_files(renewed, served)

    material = files.renewed()
    assert material is not None
    assert material.certificate_chain == renewed.cert_file.read_bytes()
    assert _expiry() == renewed.certificate.not_valid_after_utc.timestamp()
    assert files.renewed() is None


def test_a_half_replaced_pair_is_not_used_until_complete(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    served = authority.issue("served")
    files = CertificateFiles(settings_for(served, authority))
    before = files.current
    renewed = authority.issue("renewed", days=3)
    _swap(renewed.cert_file, served.cert_file)  # the key not yet

    assert files.renewed() is None
    assert files.current == before
    assert _expiry() == before.not_after

    _swap(renewed.key_file, served.key_file)
    material = files.renewed()
    assert material is not None
    assert material.not_after == renewed.certificate.not_valid_after_utc.timestamp()


def test_handshake_failure_reasons_name_the_cause() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    assert handshake_failure_reason(verify) == (
        "certificate verify failed: unable to get local issuer certificate"
    )
    assert handshake_failure_reason(TimeoutError()) == "handshake timed out"
    assert handshake_failure_reason(ConnectionResetError("reset by peer")) == "reset by peer"


def _expiry() -> float | None:
    return REGISTRY.get_sample_value(
        "facegate_tls_certificate_expiry_timestamp_seconds", {"role": "server"}
    )


def _swap(source: Path, target: Path) -> None:
    staged = target.with_suffix(".next")
    staged.write_bytes(source.read_bytes())
    staged.replace(target)
