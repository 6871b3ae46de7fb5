"""The server TLS context: swapping certificates, ALPN and TLS-ALPN-01, versions, client CAs.

Handshakes run in memory between two real OpenSSL connections (no sockets,
no reactor): the server side is exactly what :class:`ServerTLS` hands a
listener.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto
from OpenSSL._util import lib as _openssl
from twisted.internet import ssl
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import TLSConfig
from paxd.tls.certificates import CertificateBundle, TLSSetupError
from paxd.tls.context import (
    MOZILLA_INTERMEDIATE,
    ServerTLS,
    TLSPolicy,
    cipher_string,
    policy_from_config,
)
from paxd.tls.responders import ACME_IDENTIFIER_OID, TLSALPN01Responder
from tests.tls.support import CapturedLogs, TestCA, self_signed_bundle


class HandshakeFailed(Exception):
    """One side of an in-memory handshake gave up."""


def client_context(
    trust: x509.Certificate | None = None,
    alpn: list[bytes] | None = None,
    max_version: int | None = None,
    client: CertificateBundle | None = None,
) -> SSL.Context:
    context = SSL.Context(SSL.TLS_METHOD)
    if trust is not None:
        store = context.get_cert_store()
        assert store is not None
        store.add_cert(crypto.X509.from_cryptography(trust))
        context.set_verify(SSL.VERIFY_PEER)
    if alpn:
        context.set_alpn_protos(alpn)
    if max_version is not None:
        context.set_min_proto_version(0)
        context.set_max_proto_version(max_version)
        context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    if client is not None:
        context.use_certificate(client.leaf)
        context.use_privatekey(client.key)  # type: ignore[arg-type]
    return context


def handshake(
    server: SSL.Connection, context: SSL.Context, server_name: bytes = b"localhost"
) -> SSL.Connection:
    """Pump bytes between a client on *context* and *server* until both are done."""
    client = SSL.Connection(context, None)
    client.set_tlsext_host_name(server_name)
    client.set_connect_state()
    server.set_accept_state()
    done = {"client": False, "server": False}
    for _ in range(50):
        for name, side, peer in (("client", client, server), ("server", server, client)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except SSL.WantReadError:
                    pass
                except SSL.Error as e:
                    raise HandshakeFailed(f"{name}: {e}") from None
            try:
                data = side.bio_read(65536)
            except SSL.WantReadError:
                continue
            peer.bio_write(data)
        if all(done.values()):
            # TLS 1.3: the server's verdict on a client certificate comes after
            # the client thinks it is done; exchange a record to hear it.
            client.send(b"ping")
            server.bio_write(client.bio_read(65536))
            try:
                server.recv(4)
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                raise HandshakeFailed(f"server: {e}") from None
            return client
    raise HandshakeFailed("the handshake did not finish")


def served(client: SSL.Connection) -> x509.Certificate:
    certificate = client.get_peer_certificate(as_cryptography=True)
    assert certificate is not None
    return certificate


class SwapTests(SynchronousTestCase):
    """New connections get the current certificate; open ones keep theirs."""

    def test_swap(self) -> None:
        ca = TestCA()
        first, second = ca.server(), ca.server()
        tls = ServerTLS(first)
        before = tls.serverConnectionForTLS(None)
        tls.swap(second)
        after = tls.serverConnectionForTLS(None)
        self.assertEqual(
            served(handshake(before, client_context(ca.cert))).serial_number, first.serial
        )
        self.assertEqual(
            served(handshake(after, client_context(ca.cert))).serial_number, second.serial
        )
        self.assertIs(tls.bundle, second)

    def test_chain_sent(self) -> None:
        """The intermediate goes with the server certificate."""
        ca = TestCA()
        tls = ServerTLS(ca.server())
        client = handshake(tls.serverConnectionForTLS(None), client_context(ca.cert))
        chain = client.get_peer_cert_chain(as_cryptography=True)
        assert chain is not None
        self.assertEqual([c.subject for c in chain][1:], [ca.cert.subject])


class ALPNTests(SynchronousTestCase):
    """``http/1.1`` only, and RFC 8737 validation for pending challenges."""

    def setUp(self) -> None:
        self.bundle = self_signed_bundle(["registry.example"])
        self.challenges = TLSALPN01Responder()
        self.tls = ServerTLS(self.bundle, challenges=self.challenges)

    def connect(self, alpn: list[bytes], name: bytes = b"registry.example") -> SSL.Connection:
        return handshake(
            self.tls.serverConnectionForTLS(None), client_context(alpn=alpn), server_name=name
        )

    def test_http11(self) -> None:
        client = self.connect([b"h2", b"http/1.1"])
        self.assertEqual(client.get_alpn_proto_negotiated(), b"http/1.1")
        self.assertEqual(served(client).serial_number, self.bundle.serial)

    def test_no_h2(self) -> None:
        """paxd speaks HTTP/1.1 only: h2 alone negotiates nothing."""
        client = self.connect([b"h2"])
        self.assertEqual(client.get_alpn_proto_negotiated(), b"")

    def test_acme_tls_without_challenge(self) -> None:
        client = self.connect([b"acme-tls/1"])
        self.assertEqual(client.get_alpn_proto_negotiated(), b"")
        self.assertEqual(served(client).serial_number, self.bundle.serial)

    def test_acme_tls_challenge(self) -> None:
        """A validator offering acme-tls/1 gets the challenge certificate."""
        self.challenges.start_responding("registry.example", "token", "token.thumbprint")
        client = self.connect([b"acme-tls/1"], name=b"Registry.Example")
        self.assertEqual(client.get_alpn_proto_negotiated(), b"acme-tls/1")
        certificate = served(client)
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
        self.assertTrue(extension.critical)
        value = extension.value
        assert isinstance(value, x509.UnrecognizedExtension)
        self.assertEqual(value.value, b"\x04\x20" + hashlib.sha256(b"token.thumbprint").digest())
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["registry.example"])

    def test_normal_clients_during_challenge(self) -> None:
        """While a challenge is pending, ordinary clients still get the real certificate."""
        self.challenges.start_responding("registry.example", "token", "token.thumbprint")
        client = self.connect([b"http/1.1"])
        self.assertEqual(served(client).serial_number, self.bundle.serial)

    def test_challenge_for_other_name(self) -> None:
        self.challenges.start_responding("other.example", "token", "token.thumbprint")
        client = self.connect([b"acme-tls/1"])
        self.assertEqual(served(client).serial_number, self.bundle.serial)

    def test_stop_responding(self) -> None:
        self.challenges.start_responding("registry.example", "token", "token.thumbprint")
        self.challenges.stop_responding("registry.example", "token")
        client = self.connect([b"acme-tls/1"])
        self.assertEqual(served(client).serial_number, self.bundle.serial)


class PolicyTests(SynchronousTestCase):
    """``minimumtls``, ``clientcas`` and ``ciphersuites`` are enforced."""

    def test_default_refuses_tls11(self) -> None:
        """TLS 1.2 at least by default (the context says so even where OpenSSL has no 1.1)."""
        tls = ServerTLS(self_signed_bundle(["localhost"]))
        # set_options(0) reads the flags; only a context no connection has used yet allows it
        options = tls._build(tls.bundle).set_options(0)
        self.assertTrue(options & SSL.OP_NO_TLSv1_1)
        self.assertTrue(options & SSL.OP_NO_TLSv1)
        with self.assertRaises(HandshakeFailed):
            handshake(
                tls.serverConnectionForTLS(None), client_context(max_version=SSL.TLS1_1_VERSION)
            )

    def test_tls13_minimum(self) -> None:
        tls = ServerTLS(
            self_signed_bundle(["localhost"]), TLSPolicy(minimum=ssl.TLSVersion.TLSv1_3)
        )
        with self.assertRaises(HandshakeFailed):
            handshake(
                tls.serverConnectionForTLS(None), client_context(max_version=SSL.TLS1_2_VERSION)
            )
        client = handshake(tls.serverConnectionForTLS(None), client_context())
        self.assertEqual(client.get_protocol_version_name(), "TLSv1.3")

    def test_client_certificates(self) -> None:
        clients = TestCA("client CA")
        stranger = TestCA("stranger CA")
        tls = ServerTLS(self_signed_bundle(["localhost"]), TLSPolicy(client_cas=(clients.cert,)))
        with self.assertRaises(HandshakeFailed):
            handshake(tls.serverConnectionForTLS(None), client_context())
        with self.assertRaises(HandshakeFailed):
            handshake(
                tls.serverConnectionForTLS(None),
                client_context(client=stranger.client()),
            )
        handshake(
            tls.serverConnectionForTLS(None),
            client_context(client=clients.client()),
        )

    def test_ciphers(self) -> None:
        """A TLS 1.2 client offering only a suite outside the configured list is refused."""
        names = ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",)
        tls = ServerTLS(self_signed_bundle(["localhost"]), TLSPolicy(ciphers=cipher_string(names)))
        context = client_context(max_version=SSL.TLS1_2_VERSION)
        context.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256")
        with self.assertRaises(HandshakeFailed):
            handshake(tls.serverConnectionForTLS(None), context)
        context = client_context(max_version=SSL.TLS1_2_VERSION)
        client = handshake(tls.serverConnectionForTLS(None), context)
        self.assertEqual(client.get_cipher_name(), "ECDHE-ECDSA-AES256-GCM-SHA384")

    def test_cipher_names(self) -> None:
        self.assertEqual(
            cipher_string(("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256")),
            "ECDHE-RSA-AES128-GCM-SHA256",
        )
        self.assertIsNone(cipher_string(()))
        error = self.assertRaises(TLSSetupError, cipher_string, ("TLS_FOO",))
        self.assertIn("http.tls.ciphersuites.0: unknown cipher suite 'TLS_FOO'", str(error))

    def test_from_config(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        ca = TestCA()
        path = ca.write_ca(directory)
        policy = policy_from_config(
            TLSConfig(certificate="x", key="y", minimumtls="TLS1.3", clientcas=(path,))
        )
        self.assertEqual(policy.minimum, ssl.TLSVersion.TLSv1_3)
        self.assertEqual(
            [c.public_bytes(serialization.Encoding.DER) for c in policy.client_cas],
            [ca.cert.public_bytes(serialization.Encoding.DER)],
        )
        self.assertEqual(policy_from_config(TLSConfig()).minimum, ssl.TLSVersion.TLSv1_2)

    def test_from_config_bad_ca(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "ca.crt").write_text("not a certificate")
        error = self.assertRaises(
            TLSSetupError, policy_from_config, TLSConfig(clientcas=(str(directory / "ca.crt"),))
        )
        self.assertIn("http.tls.clientcas.0", str(error))


def only_groups(context: SSL.Context, groups: bytes) -> SSL.Context:
    """*context* offering only *groups* for key exchange (as a client that has no others)."""
    assert _openssl.SSL_CTX_set1_curves_list(context._context, groups) == 1
    return context


class MozillaIntermediateTests(SynchronousTestCase):
    """The default policy is Mozilla's intermediate profile (sslyze checks it in test_sslyze)."""

    def setUp(self) -> None:
        self.tls = ServerTLS(self_signed_bundle(["localhost"]))

    def tls12_client(self, ciphers: bytes) -> SSL.Context:
        context = client_context(max_version=SSL.TLS1_2_VERSION)
        context.set_cipher_list(ciphers)
        return context

    def test_cbc_and_ccm_suites_refused(self) -> None:
        """The six suites sslyze flagged on issue 13's run: each alone is refused."""
        for suite in (
            b"ECDHE-ECDSA-AES128-SHA",
            b"ECDHE-ECDSA-AES256-SHA",
            b"ECDHE-ECDSA-AES128-SHA256",
            b"ECDHE-ECDSA-AES256-SHA384",
            b"ECDHE-ECDSA-AES128-CCM",
            b"ECDHE-ECDSA-AES256-CCM",
        ):
            with self.assertRaises(HandshakeFailed, msg=suite):
                handshake(self.tls.serverConnectionForTLS(None), self.tls12_client(suite))

    def test_aead_suites_with_forward_secrecy_accepted(self) -> None:
        for suite in (
            b"ECDHE-ECDSA-AES128-GCM-SHA256",
            b"ECDHE-ECDSA-AES256-GCM-SHA384",
            b"ECDHE-ECDSA-CHACHA20-POLY1305",
        ):
            client = handshake(self.tls.serverConnectionForTLS(None), self.tls12_client(suite))
            self.assertEqual(client.get_cipher_name(), suite.decode())
        client = handshake(self.tls.serverConnectionForTLS(None), client_context())
        self.assertEqual(client.get_protocol_version_name(), "TLSv1.3")

    def test_key_exchange_groups(self) -> None:
        for group in (b"X448", b"P-521"):
            with self.assertRaises(HandshakeFailed, msg=group):
                handshake(
                    self.tls.serverConnectionForTLS(None), only_groups(client_context(), group)
                )
        for group in (b"X25519", b"P-256", b"P-384"):
            handshake(self.tls.serverConnectionForTLS(None), only_groups(client_context(), group))

    def test_from_config(self) -> None:
        self.assertEqual(policy_from_config(TLSConfig()).ciphers, MOZILLA_INTERMEDIATE)
        self.assertEqual(
            policy_from_config(TLSConfig(minimumtls="tls1.3")).ciphers, MOZILLA_INTERMEDIATE
        )

    def test_ciphersuites_still_override(self) -> None:
        names = ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",)
        policy = policy_from_config(TLSConfig(ciphersuites=names))
        self.assertEqual(policy.ciphers, "ECDHE-ECDSA-AES128-SHA")
        tls = ServerTLS(self_signed_bundle(["localhost"]), policy)
        client = handshake(
            tls.serverConnectionForTLS(None), self.tls12_client(b"ECDHE-ECDSA-AES128-SHA")
        )
        self.assertEqual(client.get_cipher_name(), "ECDHE-ECDSA-AES128-SHA")

    def test_old_minimum_gets_openssls_defaults_with_a_warning(self) -> None:
        logs = CapturedLogs(self)
        policy = policy_from_config(TLSConfig(minimumtls="tls1.0"))
        self.assertIsNone(policy.ciphers)
        self.assertEqual(policy.minimum, ssl.TLSVersion.TLSv1_0)
        self.assertTrue(any("not Mozilla's intermediate" in m for m in logs.messages("warn")))
