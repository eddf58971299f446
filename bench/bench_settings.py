"""Settings for the benchmark's gunicorn: the site's own, plus the benchmark's reference views."""

from alphanode.settings import *  # noqa: F403 - the site exactly as deployed, plus one URLconf

ROOT_URLCONF = "bench_urls"
# Pages are measured uncached; the warm runs start a gunicorn with PAGE_CACHE=1.
PAGE_CACHE = env_bool("PAGE_CACHE", default=False)  # noqa: F405
