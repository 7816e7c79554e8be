"""Named limits applied at the boundary: every field from outside is cropped or refused against one."""

MAX_BODY_BYTES = 16 * 1024
# A JSON API request body: the largest real one (an offer, a deal) is a few KiB.
MAX_API_BODY_BYTES = 1024 * 1024
MAX_PARAMS = 64
MAX_PARAM_NAME_LEN = 64
MAX_PARAM_VALUE_LEN = 512
MAX_SUB_ID_LEN = 255
MAX_SOURCE_LEN = 255
MAX_LANDING_PAGE_LEN = 1024
MAX_UA_LEN = 512
MAX_REFERRER_LEN = 1024
MAX_TXN_ID_LEN = 128
MAX_EVENT_LEN = 64
MAX_URL_LEN = 2048
MAX_NAME_LEN = 200
MAX_RAW_LOG_LEN = 4096
MAX_PAYOUT = 10**9
PAYOUT_DECIMALS = 4
# Lists: rows per page (the `limit` parameter) and the length of a cursor handed back.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CURSOR_LEN = 200
