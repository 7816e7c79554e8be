import pytest
import ua_parser.regex

from clickback.enrich.device import Device, _parser, parse_device

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
# Chrome 110+ freezes the platform to "Android 10; K": only the "Mobile" token tells phone from tablet.
ANDROID_CHROME_REDUCED = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
GALAXY_TAB_CHROME = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Safari/537.36"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
MACOS_FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (IPHONE_SAFARI, Device("mobile", "iOS", "Mobile Safari")),
        (ANDROID_CHROME_PHONE, Device("mobile", "Android", "Chrome Mobile")),
        (ANDROID_CHROME_REDUCED, Device("mobile", "Android", "Chrome Mobile")),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            Device("mobile", "Android", "Samsung Internet"),
        ),
        (
            "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977",
            Device("mobile", "Windows Phone", "Edge Mobile"),
        ),
        # In-app browsers are people on phones.
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/21E219 [FBAN/FBIOS;FBAV/458.0.0.38.108;FBBV/585000000;FBDV/iPhone15,2;FBMD/iPhone;"
            "FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
            Device("mobile", "iOS", "Facebook"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram "
            "329.0.0.41.93 Android (34/14; 450dpi; 1080x2340; samsung; SM-S911B; dm1q; qcom; en_US; "
            "590234521)",
            Device("mobile", "Android", "Instagram"),
        ),
        (IPAD_SAFARI, Device("tablet", "iOS", "Mobile Safari")),
        (GALAXY_TAB_CHROME, Device("tablet", "Android", "Chrome")),
        # Tablets that ua-parser's rules of makers' models name (clickback does not read those
        # rules): without "Mobile", they are tablets like any other maker's.
        (
            "Mozilla/5.0 (Linux; Android 12; Lenovo TB-X606F) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            Device("tablet", "Android", "Chrome"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            Device("tablet", "Android", "Chrome"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 7.0; SM-T585 Build/NRD90M; wv) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Version/4.0 Chrome/90.0.4430.210 Safari/537.36 [FB_IAB/FB4A;FBAV/300.0.0.49.115;]",
            Device("tablet", "Android", "Facebook"),
        ),
        (
            "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
            Device("tablet", "Android", "Firefox Mobile"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 "
            "like Chrome/124.0.6367.179 Safari/537.36",
            Device("tablet", "Android", "Amazon Silk"),
        ),
        (WINDOWS_CHROME, Device("desktop", "Windows", "Chrome")),
        (
            WINDOWS_CHROME + " Edg/124.0.2478.67",
            Device("desktop", "Windows", "Edge"),
        ),
        (MACOS_FIREFOX, Device("desktop", "Mac OS X", "Firefox")),
        # Also what Safari on an iPad sends by default since iPadOS 13.
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Safari/605.1.15",
            Device("desktop", "Mac OS X", "Safari"),
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            Device("desktop", "Linux", "Firefox"),
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            Device("desktop", "Chrome OS", "Chrome"),
        ),
        (GOOGLEBOT, Device("bot", "", "Googlebot")),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html)",
            Device("bot", "Android", "Googlebot"),
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            Device("bot", "", "FacebookBot"),
        ),
        ("curl/8.5.0", Device("unknown", "", "curl")),
        ("asdf", Device("unknown", "", "")),
        ("", Device("unknown", "", "")),
        ("   ", Device("unknown", "", "")),
    ],
)
def test_device_type_os_and_browser(user_agent: str, expected: Device) -> None:
    assert parse_device(user_agent) == expected


def test_the_rust_accelerated_resolver_is_used() -> None:
    # Without ua-parser-rs the library would quietly fall back to a resolver 75 times slower.
    assert isinstance(_parser().resolver, ua_parser.regex.Resolver)


def test_parses_are_cached() -> None:
    parse_device(WINDOWS_CHROME)
    hits = parse_device.cache_info().hits
    assert parse_device(WINDOWS_CHROME) == Device("desktop", "Windows", "Chrome")
    assert parse_device.cache_info().hits == hits + 1
