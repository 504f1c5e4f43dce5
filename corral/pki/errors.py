"""The PKI's kinds of failure, each a corral error so the API and the CLI map them in their one place."""

from corral.model.errors import CorralError, Unauthorized


class InvalidJoinToken(Unauthorized):
    """A join token is malformed, names another CA, or its secret is not the cluster's."""


class CertificateRequestRefused(CorralError):
    """A certificate signing request is unreadable, badly signed, or asks for another name than the node's."""

    status = 403


class KeyMaterialError(CorralError):
    """A key or certificate file in the data dir cannot be read: corrupt, or not ours. Nothing was overwritten."""

    status = 500
