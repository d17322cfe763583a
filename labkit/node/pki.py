"""The node's certificates: one CA, and a certificate per component, as local-up-cluster.sh makes them.

Each client certificate's subject is what the API server's authenticators read: the CN is the
user, each O a group. The admin is in ``system:masters``; the kubelet is
``system:node:<node>`` in ``system:nodes`` (so the Node authorizer and NodeRestriction accept
it); the API server's client for the kubelet is in ``system:masters`` too, which the kubelet's
Webhook authorization then allows (local-up binds ``system:kubelet-api-admin`` instead: one
RBAC object fewer here). The service-account key signs and checks pods' tokens.
See docs/node.md.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = 365


@dataclass(frozen=True)
class Identity:
    """One certificate to make: its file stem, user, groups, and (for servers) host names."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


def identities(node_name: str, node_ip: str, service_ip: str) -> list[Identity]:
    """Every certificate the node needs."""
    return [
        Identity("apiserver", "kube-apiserver", hosts=("127.0.0.1", "localhost", node_ip, service_ip, "kubernetes",
                                                       "kubernetes.default", "kubernetes.default.svc")),
        Identity("admin", "labkit-admin", ("system:masters",)),
        Identity("apiserver-kubelet-client", "kube-apiserver", ("system:masters",)),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kubelet", f"system:node:{node_name}", ("system:nodes",)),
    ]


def ensure_pki(directory: Path, node_name: str, node_ip: str, service_ip: str) -> None:
    """Make the CA, the service-account key and every certificate that is not already there."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(path: Path, key) -> None:
        path.touch(mode=0o600)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    if not ca_cert_path.exists() or not ca_key_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit-node-ca")])
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        write_key(ca_key_path, ca_key)
        ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        for stale in directory.glob("*.crt"):  # signed by a CA that is gone
            if stale != ca_cert_path:
                stale.unlink()
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)

    sa_key_path = directory / "service-account.key"
    if not sa_key_path.exists():
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_key(sa_key_path, sa_key)
        (directory / "service-account.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    for who in identities(node_name, node_ip, service_ip):
        cert_path, key_path = directory / f"{who.stem}.crt", directory / f"{who.stem}.key"
        if cert_path.exists() and key_path.exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, who.user)]
                            + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in who.groups])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if who.hosts else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if who.hosts:
            names: list[x509.GeneralName] = []
            for host in who.hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        write_key(key_path, key)
        cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
