"""How long node certificates live and when they are renewed: plain numbers, so that reading them (the manager's
settings, which `corral agent`'s options share) loads no `cryptography`."""

DEFAULT_NODE_CERT_LIFETIME = 90 * 86400.0  # seconds
RENEW_AT = 2 / 3  # of a certificate's life: when its holder asks for a new one
