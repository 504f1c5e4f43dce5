"""The headers of a paged list's answer (the manager's corral/manager/api/pages.py; the client's ManagerClient.pages)."""

CONTINUE_HEADER = "X-Corral-Continue"  # the token for the next page; absent on the last page
REVISION_HEADER = "X-Corral-Revision"  # the revision every page of the listing is consistent with
REMAINING_HEADER = "X-Corral-Remaining"  # items after this page
