"""gunicorn in production (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py alphanode.wsgi`.

Each setting can be overridden from the environment (the systemd unit reads /etc/alphanode/env).
"""

import multiprocessing
import os

# Behind Varnish on the same machine: loopback only. Everything comes through Varnish
# (deploy/varnish/backend.vcl), the load balancer's health checks (/healthz, /readyz) too.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: a page is CPU work in Python plus a millisecond of database, so one process per
# core and one more to cover the moments a worker waits on PostgreSQL or Redis. Each worker
# keeps DATABASE_POOL_MIN_SIZE connections open: count them against max_connections.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))

# A request taking longer than this is killed (its worker restarted). Pages take milliseconds;
# the admin's bulk actions run set-based statements of a few seconds at a million posts.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))

# On SIGTERM (systemctl stop/restart), workers finish the requests they have, for this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))

# Varnish keeps its backend connections open; a little longer than its idle time-out would be
# ideal, but sync workers are held while a connection idles, so keep it short.
keepalive = 2

# Recycle each worker after about this many requests, staggered, so that no slow growth of
# memory accumulates and not all workers restart at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 20_000))
max_requests_jitter = max_requests // 10

# Worker heartbeat files in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm"

# No control socket under ~/.gunicorn (gunicorn 27's default): the service user has no home.
control_socket_disable = True

# The app logs each request itself (alphanode.requests, with its request id and cost).
accesslog = None
errorlog = "-"

# Trust X-Forwarded-* only from the proxy on this machine.
forwarded_allow_ips = "127.0.0.1,::1"
