"""The local stack's TLS material and credentials: a private CA and a server certificate for
127.0.0.1 and localhost, made once under ``.stack/tls`` and kept, as a bank's platform team
would hand them to the job (a CA file to trust, a user and a password from a secret).

Only for the local stack: the key is not encrypted and the password is fixed and known.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

USER = "clickstream"
"""The user the secured listeners know (Kafka SASL, Redis ACL)."""
PASSWORD = "local-stack-secret"
"""Its password; a real deployment gives one from a mounted secret."""
VALID_DAYS = 3650


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the server's certificate live.

    Attributes:
        folder: ``.stack/tls``.
    """

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate (PEM) clients trust."""
        return self.folder / "ca.pem"

    @property
    def server_certificate(self) -> Path:
        """The server's certificate (PEM), signed by the CA, for 127.0.0.1 and localhost."""
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        """The server's private key (PKCS#8 PEM, not encrypted)."""
        return self.folder / "server-key.pem"

    @property
    def server_key_and_chain(self) -> Path:
        """Key then certificate then CA in one PEM file, as Kafka's PEM key store takes it."""
        return self.folder / "server-keystore.pem"

    def ensure(self) -> TlsFiles:
        """Make the CA and the server's certificate unless they exist (they are kept).

        Returns:
            These files.
        """
        if self.server_key_and_chain.is_file() and self.ca.is_file():
            return self
        # A development dependency: the CLI that mounts the stack's commands runs without it.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.folder.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        until = now + dt.timedelta(days=VALID_DAYS)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank-clickstream local CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.ca.write_bytes(ca.public_bytes(pem))
        self.server_certificate.write_bytes(server.public_bytes(pem))
        self.server_key.write_bytes(key_pem)
        self.server_key.chmod(0o600)
        chain = key_pem + server.public_bytes(pem) + ca.public_bytes(pem)
        self.server_key_and_chain.write_bytes(chain)
        self.server_key_and_chain.chmod(0o600)
        return self
