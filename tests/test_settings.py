"""Settings read from the environment, checked in fresh processes (settings load once)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alphanode.settings import env_bool

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "SECRET_KEY": "a-production-like-secret-key-that-is-long-and-random-0123456789abcdef",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "alphanode.example",
    "DATABASE_URL": "postgres://alphanode@db.invalid:5432/alphanode",
    "REDIS_URL": "redis://cache.invalid:6379/0",
}


def run_python(code, env):
    """Run `code` in a fresh interpreter in the repository with exactly `env` (plus PATH)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "alphanode.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_value(name, env):
    result = run_python(
        f"import django; django.setup(); from django.conf import settings; "
        f"print(repr(settings.{name}))",
        env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False),
     ("no", False), ("off", False)],
)
def test_env_bool_accepts_only_explicit_values(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG") is expected


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_empty_means_default(monkeypatch, default):
    monkeypatch.setenv("SOME_FLAG", " ")
    assert env_bool("SOME_FLAG", default=default) is default


def test_env_bool_rejects_anything_else(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"):
        env_bool("SOME_FLAG")


def test_missing_secret_key_stops_start_up_with_debug_off():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_embedded_defaults_are_sqlite_and_local_memory():
    env = {"DEBUG": "1", "DEBUG_TOOLBAR": "0"}
    assert "sqlite3" in settings_value("DATABASES['default']['ENGINE']", env)
    assert "LocMemCache" in settings_value("CACHES['default']['BACKEND']", env)
    assert "pool" not in settings_value("DATABASES['default']['OPTIONS']", env)


def test_empty_variables_mean_their_defaults():
    env = {
        "DEBUG": "1", "DEBUG_TOOLBAR": "0", "SQLITE_PATH": "", "STATIC_ROOT": "",
        "LOG_LEVEL": "", "DATABASE_URL": "", "REDIS_URL": "", "ALLOWED_HOSTS": "",
    }
    assert settings_value("DATABASES['default']['NAME']", env).endswith("db.sqlite3'")
    assert settings_value("STATIC_ROOT.name", env) == "'staticfiles'"
    assert settings_value("LOGGING['root']['level']", env) == "'INFO'"
    assert settings_value("ALLOWED_HOSTS", env) == "['localhost', '127.0.0.1']"


def test_configuration_errors_are_a_message_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DEBUG": "maybe"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "DEBUG='maybe' is not a boolean" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("raw", "message"), [
    ("2000,20000", "expected three growing numbers"),
    ("2000,200,20000", "expected three growing numbers"),
    ("2000,many,3", "is not a comma-separated list of whole numbers"),
])
def test_search_bands_must_be_three_growing_numbers(raw, message):
    assert settings_value("SEARCH_BANDS", {"DEBUG": "1", "SEARCH_BANDS": " 10, 20 ,30 "}) == (
        "(10, 20, 30)")
    result = run_python("import django; django.setup()", {"DEBUG": "1", "SEARCH_BANDS": raw})
    assert result.returncode != 0 and message in result.stderr


def test_database_and_redis_urls_select_postgres_pool_and_redis():
    assert settings_value("DATABASES['default']['OPTIONS']['pool']['max_size']", PRODUCTION_ENV)
    assert settings_value("DATABASES['default']['CONN_MAX_AGE']", PRODUCTION_ENV) == "0"
    assert "RedisCache" in settings_value("CACHES['default']['BACKEND']", PRODUCTION_ENV)


def test_site_connections_do_not_jit_compile(db):
    # A search is estimated for the bands it rarely reads; JIT compiled it for 33 ms.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_check_deploy_reports_nothing_with_production_variables():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_security_headers_are_sent(client, db):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_every_variable_is_in_the_readme_and_env_example():
    settings_source = (ROOT / "alphanode" / "settings.py").read_text()
    variables = set(
        re.findall(r'env_(?:bool|str|int|ints|float|list|choice)\("([A-Z_]+)"', settings_source)
    )
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()

    assert {"DEBUG", "PAGE_CACHE", "PURGER", "LOG_FORMAT"} <= variables
    assert sorted(v for v in variables if f"| `{v}` |" not in readme) == []
    assert sorted(v for v in variables if not re.search(rf"^#? ?{v}=", example, re.M)) == []


def test_the_ci_script_parses():
    # CI runs .ci/run on a fresh clone; a script bash cannot parse runs nothing at all.
    result = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
