"""Throw-away certificate authorities and certificates for TLS tests (``cryptography``,
files in a temporary folder)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from facegate.settings import TlsSettings

LOCAL_NAMES = ("localhost",)
LOCAL_ADDRESSES = ("127.0.0.1",)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path
    certificate: x509.Certificate


class Authority:
    """A self-signed CA that issues certificates for 127.0.0.1 / localhost."""

    def __init__(self, folder: Path, name: str = "facegate test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, *, days: int = 10, dns_names: tuple[str, ...] = LOCAL_NAMES
    ) -> Issued:
        """A certificate for both server and client use, valid for ``days``, naming
        ``dns_names`` and 127.0.0.1."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in LOCAL_ADDRESSES]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now.replace(microsecond=0) + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_file = self.folder / f"{name}.pem"
        key_file = self.folder / f"{name}-key.pem"
        write_pair(certificate, key, cert_file, key_file)
        return Issued(cert_file, key_file, certificate)


def write_pair(
    certificate: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    cert_file: Path,
    key_file: Path,
) -> None:
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def replace_files(source: Issued, target: Issued) -> None:
    """Put ``source``'s certificate and key where ``target``'s are, the way a renewal
    does (both files swapped at once)."""
    for new, old in ((source.cert_file, target.cert_file), (source.key_file, target.key_file)):
        staged = old.with_suffix(".next")
        staged.write_bytes(new.read_bytes())
        staged.replace(old)


def mtls_settings(authority: Authority, issued: Issued, **fields: bool) -> TlsSettings:
    """Settings serving ``issued`` and requiring client certificates from ``authority``
    on gRPC servers (``fields`` override, e.g. rest_require_client_cert=True)."""
    return TlsSettings(
        cert_file=issued.cert_file,
        key_file=issued.key_file,
        ca_file=authority.ca_file,
        require_client_cert=fields.get("require_client_cert", True),
        rest_require_client_cert=fields.get("rest_require_client_cert", False),
    )
