"""The production start as docs/deploy.md gives it: collectstatic, then gunicorn with DEBUG off,
serving its own static files (WhiteNoise). Before, the stylesheet was a 404 there and every
reader got an unstyled site.
"""

import gzip
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.factories import PostFactory
from tests.servers import start_gunicorn, stop_process

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def production(tmp_path):
    """gunicorn as deployed, on the test database; yields its base URL."""
    import os

    database = urlsplit(django_settings.DATABASE_URL)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")},
        "DATABASE_URL": urlunsplit(database._replace(path=f"/{connection.settings_dict['NAME']}")),
        "DEBUG": "0",
        "SECRET_KEY": "deploy-test-secret-key-not-for-production-use-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=ROOT, env=env, check=True)
    process, base = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        yield base
    finally:
        stop_process(process)
        shutil.rmtree(tmp_path / "static", ignore_errors=True)


def fetch(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                timeout=10) as response:
        return response.status, response.headers, response.read()


def long_lived(cache_control):
    """Whether Cache-Control lets caches keep the response for at least a year."""
    found = re.search(r"max-age=(\d+)", cache_control)
    return found is not None and int(found.group(1)) >= 365 * 24 * 3600


def test_the_article_links_a_hashed_stylesheet_served_with_a_long_max_age(production):
    post = PostFactory()

    status, _, body = fetch(production + post.get_absolute_url())
    assert status == 200
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', body.decode()).group(1)
    assert re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", stylesheet)

    status, headers, css = fetch(production + stylesheet)
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert long_lived(headers["Cache-Control"]) and "immutable" in headers["Cache-Control"]
    assert css == (ROOT / "static/css/site.css").read_bytes()

    status, headers, compressed = fetch(production + stylesheet, {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(compressed) == css

    # The plain name still answers (an old link), but is not kept long.
    status, headers, _ = fetch(production + "/static/css/site.css")
    assert status == 200 and not long_lived(headers["Cache-Control"])


def test_demo_and_tests_without_collectstatic_use_plain_names(client):
    # STATIC_MANIFEST is off under test: pages link static/ as it is.
    assert django_settings.STATIC_MANIFEST is False
    post = PostFactory()
    assert 'href="/static/css/site.css"' in client.get(post.get_absolute_url()).text



def test_the_systemd_units_verify():
    # As installed by docs/deploy.md, with the checkout standing in for /srv/alphanode.
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: apt-get install -y systemd"
    units = sorted((ROOT / "deploy/systemd").glob("alphanode-*"))
    assert {unit.suffix for unit in units} == {".service", ".timer"}
    with tempfile.TemporaryDirectory() as tmp:
        for unit in units:
            text = unit.read_text().replace("/srv/alphanode", str(ROOT))
            (Path(tmp) / unit.name).write_text(text)
        result = subprocess.run([analyze, "verify", *sorted(Path(tmp).iterdir())],
                                capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_timer_starts_a_service_that_exists():
    for timer in (ROOT / "deploy/systemd").glob("*.timer"):
        assert (timer.with_suffix(".service")).is_file(), timer.name


def test_the_gunicorn_config_loads_and_names_its_choices():
    from gunicorn.config import Config

    config = Config()
    namespace = {}
    exec((ROOT / "deploy/gunicorn.conf.py").read_text(), namespace)
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    assert config.control_socket_disable is True
    assert config.workers >= 2 and config.timeout == 30 and config.graceful_timeout == 30
    assert config.bind == ["127.0.0.1:8000"]


def production_example():
    """deploy/.env.production.example as (name, value) pairs."""
    lines = (ROOT / "deploy/.env.production.example").read_text().splitlines()
    return [tuple(line.split("=", 1)) for line in lines if line and not line.startswith("#")]


def test_the_production_env_example_names_only_documented_settings():
    readme = (ROOT / "README.md").read_text()
    for name, _ in production_example():
        assert f"| `{name}` |" in readme, f"{name} is not in the README's settings table"


def test_the_production_env_example_passes_the_deploy_checks(tmp_path):
    import os
    import secrets

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(production_example())
    env.update(SECRET_KEY=secrets.token_urlsafe(50), STATIC_ROOT=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
