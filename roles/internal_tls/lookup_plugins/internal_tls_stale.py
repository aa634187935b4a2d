"""Which of a host's certificates must be issued (anew), read on the controller.

The role's fast path: a run that finds every certificate current skips the
community.crypto tasks (about ten module runs per host and play) and costs
one file read per certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCUMENTATION = r"""
name: internal_tls_stale
short_description: The names of a host's certificates that are missing, changed or expiring
description:
  - Returns the name of each certificate (an entry of internal_tls_certificates) that is not current in
    FOLDER (NAME.crt, NAME.key). Current means the key pair matches, CA signed it, its common name is
    "HOST NAME", its subject alternative names and extended key usages are exactly the ones asked, and more
    than renew_days are left before it expires. A missing CA certificate makes every certificate stale.
options:
  _terms:
    description: The certificates ({name, names, usages}).
    required: true
  folder:
    description: The host's folder on the controller.
    type: str
    required: true
  ca:
    description: The CA certificate (PEM) on the controller.
    type: str
    required: true
  host:
    description: The host's inventory name (the common name's first part).
    type: str
    required: true
  renew_days:
    description: A certificate with fewer days left is stale.
    type: int
    required: true
"""

USAGES = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def stale(certificates, folder: str, ca: str, host: str, renew_days: int, now=None) -> list[str]:
    """The names of CERTIFICATES that must be issued (anew)."""
    now = now or datetime.datetime.now(datetime.UTC)
    authority = _read(Path(ca), x509.load_pem_x509_certificate)
    if authority is None:
        return [wanted["name"] for wanted in certificates]
    return [
        wanted["name"]
        for wanted in certificates
        if not _current(Path(folder) / wanted["name"], wanted, authority, host, renew_days, now)
    ]


def _current(base: Path, wanted: dict, authority, host: str, renew_days: int, now) -> bool:
    certificate = _read(base.with_suffix(".crt"), x509.load_pem_x509_certificate)
    key = _read(base.with_suffix(".key"), lambda data: serialization.load_pem_private_key(data, None))
    if not (certificate and key):
        return False
    if certificate.public_key().public_bytes(*PUBLIC) != key.public_key().public_bytes(*PUBLIC):
        return False
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (
        [name.value for name in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        == [f"{host} {wanted['name']}"]
        and _names(certificate) == {_name(name) for name in wanted.get("names") or []}
        and _usages(certificate) == {USAGES[usage] for usage in wanted["usages"]}
        and certificate.not_valid_after_utc - now > datetime.timedelta(days=int(renew_days))
    )


def _read(path: Path, load):
    try:
        return load(path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None


def _name(entry: str) -> str:
    """A SAN entry as _names() spells it: DNS names in lower case, IP addresses normalized."""
    kind, _, value = entry.partition(":")
    return f"IP:{ipaddress.ip_address(value)}" if kind == "IP" else f"{kind}:{value.lower()}"


def _names(certificate) -> set[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {f"DNS:{name.lower()}" for name in extension.get_values_for_type(x509.DNSName)} | {
        f"IP:{address}" for address in extension.get_values_for_type(x509.IPAddress)
    }


def _usages(certificate) -> set:
    try:
        return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return stale(
                terms,
                self.get_option("folder"),
                self.get_option("ca"),
                self.get_option("host"),
                self.get_option("renew_days"),
            )
        except (KeyError, ValueError) as error:
            raise AnsibleLookupError(f"internal_tls_stale: {error}") from error
