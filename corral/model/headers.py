"""HTTP headers of the API that clients read: here, apart from the pydantic models, so a client needs no pydantic."""

# A follower's 503 to an agent names the leader's URL in this header: the client goes there.
LEADER_HEADER = "X-Corral-Leader"
