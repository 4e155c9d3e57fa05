"""A throw-away self-signed certificate for `tickring sim --tls` (wss:// and https://).

The `cryptography` package is used when it is installed; otherwise (as in this venv) we shell
out to `openssl req -x509` (an EC P-256 key: generated in milliseconds). The key and
certificate live in a temporary directory only while the SSLContext loads them. Clients
connect with verification disabled (ssl.CERT_NONE, check_hostname=False); the certificate
names CN=localhost with subjectAltName DNS:localhost and IP:127.0.0.1, so a client that trusts
the printed certificate file could verify it too (see `server_context(keep_cert=...)`).
"""
from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
import tempfile


def _with_cryptography(cert_path: str, key_path: str) -> bool:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _with_openssl(cert_path: str, key_path: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("--tls needs either the 'cryptography' package or the 'openssl' command; "
                           "neither is available")
    cmd = [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", key_path, "-out", cert_path, "-days", "7", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl could not make a self-signed certificate: {r.stderr.strip()}")


def make_cert(directory: str) -> tuple[str, str, str]:
    """Write cert.pem and key.pem into directory; returns (cert, key, how)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if _with_cryptography(cert, key):
        return cert, key, "cryptography"
    _with_openssl(cert, key)
    return cert, key, "openssl"


def server_context(keep_cert: str | None = None) -> tuple[ssl.SSLContext, str]:
    """An SSLContext serving a fresh self-signed certificate; returns (context, how it was made).

    keep_cert: a path to copy the certificate (PEM) to, for clients that want to verify it."""
    with tempfile.TemporaryDirectory(prefix="tickring-sim-tls-") as d:
        cert, key, how = make_cert(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if keep_cert:
            shutil.copyfile(cert, keep_cert)
    return ctx, how


def client_context() -> ssl.SSLContext:
    """An SSLContext that accepts the simulator's self-signed certificate (no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
