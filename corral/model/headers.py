"""HTTP headers of the API that clients read: here, apart from the pydantic models, so a client needs no pydantic."""

# A follower's 503 to an agent names the leader's URL in this header: the client goes there.
LEADER_HEADER = "X-Corral-Leader"

# Set on every answer of a manager whose cache may be stale (its watch of the store stalled, or the store cannot be
# listed): the reason. Reads still answer from the cache; `corral manager ls` shows that manager as not healthy.
STALE_HEADER = "X-Corral-Stale"
