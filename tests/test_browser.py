"""The site in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven
by Selenium against the test server, as a reader would use it, with axe-core's accessibility
checks on every kind of page and screenshots at phone and desktop widths, light and dark.

Screenshots are written to BROWSER_ARTIFACTS (default .artifacts/browser/), one file per page,
width and colour scheme. Nothing is installed here: without Chromium the tests fail saying how
to install it (.ci/run does).
"""

import datetime
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from posts import derived
from posts.models import TagKind, TagRole
from tests.factories import PostFactory, PostTagFactory, TagFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", django_settings.BASE_DIR / ".artifacts" /
                                "browser"))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")
WIDTHS = {"phone": 375, "desktop": 1280}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(f"Chromium is needed for the browser tests and {', '.join(missing)} is "
                    "missing: apt-get install -y chromium chromium-driver (.ci/run does), or "
                    "set CHROMIUM and CHROMEDRIVER to where they are.")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTHS['desktop']},900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def site(settings):
    """Posts that share tags (so they have similar posts), a stack the header links to, and
    enough of them for a second page."""
    settings.POSTS_PER_PAGE = 5
    stack = TagFactory(kind=TagKind.STACK, name=settings.HEADER_STACKS[0])
    posts = []
    for n in range(12):
        post = PostFactory(tag_count=2 + n % 2, image_count=2 if n % 3 == 0 else 0,
                           difficulty=("beginner", "advanced")[n % 2],
                           title=f"improving queries behind a cdn, part {n}",
                           published_at=timezone.now() - datetime.timedelta(hours=n))
        PostTagFactory(post=post, tag=stack, role=TagRole.STACK, position=0)
        posts.append(post)
    # Each post's list again, now that the later posts exist too.
    derived.compute_similar([post.pk for post in posts])
    return posts


def wait_for_url(driver, part):
    """Wait until a navigation the page started (a form sent, a link followed) has landed."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: part in d.current_url and d.execute_script(
        "return document.readyState") == "complete")


def follow(driver, element):
    """Click a link and wait for the page it leads to."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = driver.current_url
    element.click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url != before and d.execute_script(
        "return document.readyState") == "complete")


def visit(driver, url):
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"


def check_accessibility(driver, page):
    """Run axe-core on the open page; fail on any serious or critical violation."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(done, e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    bad = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page}: {bad}"


def screenshots(driver, page):
    """Save `page` at phone and desktop widths, light and dark."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        for name, width in WIDTHS.items():
            driver.set_window_size(width, 900)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(height, 4000))
            driver.save_screenshot(str(ARTIFACTS / f"{page}-{name}-{scheme}.png"))
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    driver.set_window_size(WIDTHS["desktop"], 900)


def test_a_readers_journey(browser, live_server, site):
    from selenium.webdriver.common.by import By

    driver = browser
    visit(driver, live_server.url + "/")
    assert driver.title.startswith("Latest posts")
    check_accessibility(driver, "home")
    screenshots(driver, "home")

    # Follow a post: its body, meta box and similar posts.
    follow(driver, driver.find_element(By.CSS_SELECTOR, ".post-card h2 a"))
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("improving queries")
    assert driver.find_element(By.ID, "post-meta-title").text == "alphanode post meta"
    similar = driver.find_elements(By.CSS_SELECTOR, ".similar-posts a")
    assert similar, "the article shows its similar posts"
    check_accessibility(driver, "article")
    screenshots(driver, "article")

    # Follow a similar post.
    title = similar[0].text
    follow(driver, similar[0])
    assert driver.find_element(By.TAG_NAME, "h1").text == title

    # Search from the header box.
    box = driver.find_element(By.CSS_SELECTOR, ".site-search input[name=q]")
    box.send_keys("queries\n")
    wait_for_url(driver, "/search/")
    assert driver.find_elements(By.CSS_SELECTOR, ".post-card mark")
    check_accessibility(driver, "search")
    screenshots(driver, "search")

    # Filter the results, then the home list, and page forward.
    driver.find_element(By.CSS_SELECTOR, ".filters summary").click()
    follow(driver, driver.find_element(By.LINK_TEXT, "advanced"))
    assert "difficulty=advanced" in driver.current_url
    cards = driver.find_elements(By.CSS_SELECTOR, ".post-card")
    assert cards and all("advanced" in card.text for card in cards)
    visit(driver, live_server.url + "/")
    follow(driver, driver.find_element(By.LINK_TEXT, "older posts"))
    assert "after=" in driver.current_url
    assert driver.find_elements(By.CSS_SELECTOR, ".post-card")

    # The tag index, then a tag.
    follow(driver, driver.find_element(By.CSS_SELECTOR, ".site-nav").find_element(
        By.LINK_TEXT, "all tags"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Browse by tag"
    check_accessibility(driver, "tag index")
    screenshots(driver, "tag-index")
    follow(driver, driver.find_element(By.CSS_SELECTOR, ".tag-cloud a"))
    assert "/tags/" in driver.current_url and driver.find_elements(By.CSS_SELECTOR, ".post-card")
    check_accessibility(driver, "tag")
    screenshots(driver, "tag")

    # A wrong address: the site's 404, which suggests search.
    visit(driver, live_server.url + "/no/such/page/")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert driver.find_element(By.CSS_SELECTOR, "main input[name=q]")
    check_accessibility(driver, "404")
    screenshots(driver, "404")


def test_dark_mode_changes_the_colours(browser, live_server, site):
    driver = browser
    visit(driver, live_server.url + "/")
    colours = {}
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        colours[scheme] = driver.execute_script(
            "return getComputedStyle(document.documentElement).backgroundColor")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert colours["light"] == "rgb(255, 255, 255)"
    assert colours["dark"] != colours["light"]


def test_a_figure_that_cannot_load_keeps_its_box(browser, live_server, site):
    from selenium.webdriver.common.by import By

    driver = browser
    post = next(post for post in site if post.figures.exists())
    visit(driver, live_server.url + post.get_absolute_url())
    figure = driver.find_element(By.CSS_SELECTOR, "figure img")
    driver.execute_script("arguments[0].scrollIntoView()", figure)
    width, height = figure.size["width"], figure.size["height"]
    assert width > 0 and abs(width / height - 16 / 9) < 0.05  # the box is kept, no jump


def test_the_accessibility_check_fails_on_a_violation(browser, live_server, site):
    # The check above is only worth its passes if it catches a real violation.
    visit(browser, live_server.url + "/")
    browser.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend', "
        "'<img src=\"/static/favicon.svg\"><button></button>')"
    )
    with pytest.raises(AssertionError, match=r"image-alt|button-name"):
        check_accessibility(browser, "home with an image without alt text")
