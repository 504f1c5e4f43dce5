"""Who may do what: API tokens and their roles, the route policy, and the secrets and configs store.

Foundations for issue 14; the routes do not check tokens yet (see docs/security.md
for what is wired). Nothing here reads a clock: `now` is passed in.
"""
