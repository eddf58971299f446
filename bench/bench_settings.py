"""Settings for the benchmark's gunicorn: the site's own, plus the benchmark's reference views."""

from alphanode.settings import *  # noqa: F403 - the site exactly as deployed, plus one URLconf

ROOT_URLCONF = "bench_urls"
PAGE_CACHE = False  # pages measured uncached; warm runs set PAGE_CACHE=1 in the environment
