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
# The longest text form of an address ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
MAX_IP_LEN = 45
# What enrichment says about a click (core.model.Traits): GEO names from an operator's .mmdb and
# device names that ua-parser may copy out of the User-Agent itself.
MAX_COUNTRY_LEN = 2
MAX_PLACE_LEN = 100
MAX_DEVICE_TYPE_LEN = 16
MAX_SOFTWARE_LEN = 50
MAX_BOT_REASON_LEN = 32
MAX_ASN = 2**63 - 1
MAX_TXN_ID_LEN = 128
MAX_EVENT_LEN = 64
MAX_URL_LEN = 2048
MAX_NAME_LEN = 200
MAX_RAW_LOG_LEN = 4096
MAX_PAYOUT = 10**9
PAYOUT_DECIMALS = 4
# An exchange rate's decimals (0.0000000123: a rate between currencies far apart in value).
RATE_DECIMALS = 10
# Lists: rows per page (the `limit` parameter) and the length of a cursor handed back.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CURSOR_LEN = 200
