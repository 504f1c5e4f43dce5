"""Join tokens that pin the cluster CA, as Docker Swarm's do: `corral-<ca digest>-<secret>`.

The digest is the CA certificate's sha256 fingerprint (64 hex digits): an
agent that holds only the token fetches the CA certificate from the manager
over an unverified connection, then checks it against the digest before it
trusts anything, so a man in the middle cannot pose as the manager. The
secret is what the manager checks; rotating the token changes the secret,
the digest stays while the CA does.
"""

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.pki.errors import InvalidJoinToken

if TYPE_CHECKING:  # an agent checks a digest it computed itself (hashlib), without loading cryptography
    from cryptography import x509

PREFIX = "corral"
_SECRET_BYTES = 24
_FORMAT = re.compile(r"corral-([0-9a-f]{64})-([0-9a-z]{32,128})")


@dataclass(frozen=True)
class JoinToken:
    ca_digest: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}-{self.ca_digest}-{self.secret}"

    @staticmethod
    def generate(ca_certificate: "x509.Certificate") -> "JoinToken":
        from corral.pki.authority import ca_fingerprint

        return JoinToken(ca_digest=ca_fingerprint(ca_certificate), secret=secrets.token_hex(_SECRET_BYTES))

    @staticmethod
    def parse(text: str) -> "JoinToken":
        match = _FORMAT.fullmatch(text.strip())
        if match is None:
            raise InvalidJoinToken(
                "malformed join token: expected corral-<64 hex digits of the CA digest>-<secret>; "
                "copy it again from `corral join-token` on the manager"
            )
        return JoinToken(ca_digest=match.group(1), secret=match.group(2))

    def verify_ca(self, presented: "x509.Certificate") -> None:
        """Raise unless `presented` is the CA this token pins (the agent's check before trusting the manager)."""
        from corral.pki.authority import ca_fingerprint

        self.verify_ca_digest(ca_fingerprint(presented))

    def verify_ca_digest(self, digest: str) -> None:
        """Raise unless `digest` (sha256 of a CA certificate's DER, lowercase hex) is the one this token pins."""
        if not hmac.compare_digest(digest, self.ca_digest):
            raise InvalidJoinToken(
                f"the manager presented a CA with digest {digest}, but the join token pins {self.ca_digest}: "
                "wrong manager address, or someone in between"
            )

    def verify_secret(self, expected: "JoinToken") -> None:
        """Raise unless this token is `expected` (the manager's check; constant time in the secret)."""
        same_secret = hmac.compare_digest(self.secret.encode(), expected.secret.encode())
        if not (same_secret and hmac.compare_digest(self.ca_digest, expected.ca_digest)):
            raise InvalidJoinToken("join token refused: not this cluster's current token (was it rotated?)")
