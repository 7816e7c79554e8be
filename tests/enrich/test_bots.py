import pytest

from clickback.enrich.bots import LINK_PREVIEW_AGENTS, bot_reason

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)

# The User-Agents the services actually send, one per LINK_PREVIEW_AGENTS entry.
LINK_PREVIEWS = [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Facebot",
    "Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Slack-ImgProxy (+https://api.slack.com/robots)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.10; rv:38.0) Gecko/20100101 Firefox/38.0 "
    "(compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0 A",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/100.0.4896.127 Safari/537.36 Edg/100.0.1185.50 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
    "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    "Iframely/1.3.1 (+https://iframely.com/docs/about) Atlassian",
    "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/41.0.2272.118 Mobile Safari/537.36 (compatible; Google-PageRenderer Google "
    "(+https://developers.google.com/+/web/snippet/))",
    "Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snap.com)",
    "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
    "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)",
]

CRAWLERS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Wget/1.21.4",
    "Go-http-client/1.1",
]

# In-app browsers of the same services: people, whose UAs name the app but not its fetcher.
PEOPLE = [
    WINDOWS_CHROME,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/21E219 [FBAN/FBIOS;FBAV/458.0.0.38.108;FBBV/585000000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;"
    "FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 329.0.0.41.93 "
    "Android (34/14; 450dpi; 1080x2340; samsung; SM-S911B; dm1q; qcom; en_US; 590234521)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Twitter for iPhone/10.40",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [Pinterest/Android]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 [LinkedInApp]/9.29.2",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP1A.240405.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Telegram-Android/10.11.1 "
    "(Google Pixel 8; Android 14; SDK 34; HIGH)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Snapchat/12.80.0.35 (like Safari/8617.2.4.10.5, panda)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Line/14.5.1",
]


@pytest.mark.parametrize("user_agent", LINK_PREVIEWS)
def test_link_preview_fetchers_are_named(user_agent: str) -> None:
    assert bot_reason(user_agent, "GET") == "link_preview"


def test_every_listed_preview_fetcher_has_a_real_user_agent_above() -> None:
    lowered = [ua.lower() for ua in LINK_PREVIEWS]
    assert [name for name in LINK_PREVIEW_AGENTS if not any(name in ua for ua in lowered)] == []


def test_preview_fetchers_match_in_any_case() -> None:
    assert bot_reason("DISCORDBOT/2.0", "GET") == "link_preview"


def test_imessage_preview_counts_as_a_link_preview() -> None:
    imessage = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
    )
    assert bot_reason(imessage, "GET") == "link_preview"


@pytest.mark.parametrize("user_agent", CRAWLERS)
def test_crawlers_are_named(user_agent: str) -> None:
    assert bot_reason(user_agent, "GET") == "crawler"


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_people_are_not_bots(user_agent: str) -> None:
    assert bot_reason(user_agent, "GET") == ""


@pytest.mark.parametrize("user_agent", ["", " ", "\t"])
def test_missing_user_agent(user_agent: str) -> None:
    assert bot_reason(user_agent, "GET") == "empty_user_agent"
    assert bot_reason(user_agent, "HEAD") == "empty_user_agent"


@pytest.mark.parametrize("method", ["HEAD", "head"])
def test_head_request_from_a_browser_user_agent(method: str) -> None:
    assert bot_reason(WINDOWS_CHROME, method) == "head_request"


def test_who_is_asking_outranks_how() -> None:
    assert bot_reason(LINK_PREVIEWS[3], "HEAD") == "link_preview"
    assert bot_reason(CRAWLERS[0], "HEAD") == "crawler"


def test_verdicts_are_cached() -> None:
    bot_reason(CRAWLERS[0], "GET")
    hits = bot_reason.cache_info().hits
    assert bot_reason(CRAWLERS[0], "GET") == "crawler"
    assert bot_reason.cache_info().hits == hits + 1
