"""Start a throwaway PostgreSQL and Redis for the test run, before Django settings are imported.

Loaded with ``-p tests.servers`` (see ``addopts`` in pyproject.toml). For each of
``DATABASE_URL`` and ``REDIS_URL`` that is not set already, it starts a private PostgreSQL
cluster or redis-server on a free loopback port under a temporary directory, exports the
variable, and stops the server when the run ends. Under pytest-xdist only the controller starts
them; the workers inherit the variables and each gets its own test database from pytest-django.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

PG_ROOT = Path("/usr/lib/postgresql")
PG_USER = "postgres"
DB_NAME = "alphanode"
HOST = "127.0.0.1"
START_TIMEOUT = 30  # seconds
LOG_TAIL_LINES = 30
TMP_PREFIX = "alphanode-test-servers-"


@dataclass
class Servers:
    """What this process started, so it can stop exactly that and nothing else."""

    tmpdir: Path | None = None
    pg_bin: Path | None = None
    postgres: subprocess.Popen | None = None
    redis: subprocess.Popen | None = None
    header: list[str] = field(default_factory=list)


_servers = Servers()


# Hooks.


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Start the servers and export their URLs before pytest-django imports settings."""
    # tryfirst matters: pytest-django reads settings in this same hook, and its plain
    # hookimpl would otherwise run before ours (plugins given with -p are registered first).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # The controller started the servers; the URLs came with the environment. Tests empty
        # the cache between them (FLUSHDB), so each worker gets a Redis database of its own:
        # otherwise one worker's flush empties another's cache mid-test (sessions included).
        if os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = redis_url_for_worker(os.environ["REDIS_URL"], worker)
        return
    namespace = early_config.known_args_namespace
    if namespace.help or namespace.version:
        return
    given = [name for name in ("DATABASE_URL", "REDIS_URL") if os.environ.get(name)]
    if given:
        _servers.header.append(f"servers: using {' and '.join(given)} from the environment")
    start_servers(
        postgres="DATABASE_URL" not in given, redis_server="REDIS_URL" not in given
    )


def redis_url_for_worker(url, worker):
    """Return `url` pointing at Redis database 1 + the xdist worker's number (gw0 -> 1)."""
    number = int(worker.removeprefix("gw") or 0)
    return urlunsplit(urlsplit(url)._replace(path=f"/{1 + number % 15}"))


def pytest_report_header(config):
    """Say which PostgreSQL and Redis the run uses."""
    # Output printed during pytest_load_initial_conftests is captured and lost, so report here.
    return _servers.header


def pytest_unconfigure(config):
    """Stop the servers this process started."""
    stop_servers()


# Steps.


def start_servers(postgres=True, redis_server=True, pg_settings=None):
    """Start PostgreSQL and/or Redis and export DATABASE_URL and/or REDIS_URL.

    `pg_settings` adds server settings (name -> value), e.g. memory for a benchmark.
    """
    if not (postgres or redis_server):
        return
    # Find the binaries first, so a missing one fails before anything is started.
    pg_bin = find_pg_bin() if postgres else None
    redis_path = find_redis_server() if redis_server else None
    if postgres and os.geteuid() == 0:
        find_runuser()
    atexit.register(stop_servers)  # Safety net if pytest dies before pytest_unconfigure.
    try:
        _servers.tmpdir = make_tmpdir()
        pg_port, redis_port = free_ports(2)
        if postgres:
            _servers.pg_bin = pg_bin
            init_cluster(pg_bin, _servers.tmpdir)
            _servers.postgres = start_postgres(pg_bin, _servers.tmpdir, pg_port, pg_settings)
            wait_for_postgres(pg_port)
            create_database(pg_port)
        if redis_server:
            _servers.redis = start_redis(redis_path, _servers.tmpdir, redis_port)
            wait_for_redis(redis_port)
    except BaseException:
        stop_servers()
        raise
    if postgres:
        os.environ["DATABASE_URL"] = f"postgres://{PG_USER}@{HOST}:{pg_port}/{DB_NAME}"
        _servers.header.append(f"servers: throwaway PostgreSQL ({pg_bin}) at {HOST}:{pg_port}")
    if redis_server:
        os.environ["REDIS_URL"] = f"redis://{HOST}:{redis_port}/0"
        _servers.header.append(f"servers: throwaway Redis at {HOST}:{redis_port}")
    _servers.header.append(f"servers: data and logs in {_servers.tmpdir}")


def find_pg_bin():
    """Return the PostgreSQL bin directory: $PG_BIN, else the newest under /usr/lib/postgresql."""
    if os.environ.get("PG_BIN"):
        candidates = [Path(os.environ["PG_BIN"])]
    else:
        versions = [p for p in PG_ROOT.glob("*/bin") if p.parent.name.isdigit()]
        candidates = sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in candidates:
        if all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    raise pytest.UsageError(
        "PostgreSQL server binaries not found (looked in "
        f"{os.environ.get('PG_BIN') or PG_ROOT / '<version>/bin'}). Install them with "
        "`apt-get install -y postgresql`, set PG_BIN to the directory holding initdb, pg_ctl "
        "and postgres, or set DATABASE_URL and REDIS_URL to servers you already run."
    )


def find_redis_server():
    """Return the path of redis-server."""
    path = shutil.which("redis-server")
    if path is None:
        raise pytest.UsageError(
            "redis-server not found. Install it with `apt-get install -y redis-server`, "
            "or set DATABASE_URL and REDIS_URL to servers you already run."
        )
    return path


def make_tmpdir():
    """Create the directory holding the cluster, sockets and logs, owned by the server user."""
    if os.geteuid() != 0:
        return Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    # /tmp rather than $TMPDIR or the repository: as root, the servers run as the postgres
    # user, who must be able to traverse every parent directory (not true of e.g. /root).
    tmpdir = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp"))
    try:
        shutil.chown(tmpdir, user=PG_USER)
    except LookupError:
        tmpdir.rmdir()
        raise pytest.UsageError(
            f"Running as root needs the {PG_USER!r} user to run PostgreSQL; "
            "`apt-get install -y postgresql` creates it."
        ) from None
    return tmpdir


def free_ports(count):
    """Return `count` distinct TCP ports that are free on 127.0.0.1 right now."""
    # Keep every socket open until all are bound, so the kernel cannot hand out one port twice.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def as_server_user(command):
    """Return `command` prefixed to run as the postgres user when we are root."""
    # PostgreSQL refuses to run as root, and tests run as root on the CI machines.
    if os.geteuid() == 0:
        return [find_runuser(), "-u", PG_USER, "--", *command]
    return command


def find_runuser():
    """Return the path of runuser, which lives in sbin directories that PATH may lack."""
    path = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if path is None:
        raise pytest.UsageError(
            "runuser not found; it is needed to run PostgreSQL as root. "
            "Install it with `apt-get install -y util-linux`."
        )
    return path


def init_cluster(pg_bin, tmpdir):
    """Create a database cluster in tmpdir/data that trusts local connections."""
    log = tmpdir / "initdb.log"
    with log.open("wb") as out:
        result = subprocess.run(
            as_server_user(
                [
                    str(pg_bin / "initdb"),
                    "--no-sync",
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "-D",
                    str(tmpdir / "data"),
                ]
            ),
            cwd=tmpdir,  # A directory the postgres user can enter, unlike perhaps ours.
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise pytest.UsageError(f"initdb failed:\n{log_tail(log)}")


def start_postgres(pg_bin, tmpdir, port, settings=None):
    """Start postgres on `port` in the foreground of a child process, logging to tmpdir."""
    # Durability settings are off because the cluster is thrown away after the run.
    command = [
        str(pg_bin / "postgres"),
        "-D",
        str(tmpdir / "data"),
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        f"unix_socket_directories={tmpdir}",
        "-p",
        str(port),
        *(arg for name, value in (settings or {}).items() for arg in ("-c", f"{name}={value}")),
    ]
    # A new session keeps Ctrl-C from killing the server under tests still tearing down.
    with (tmpdir / "postgres.log").open("wb") as log:
        return subprocess.Popen(
            as_server_user(command),
            cwd=tmpdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_ready(is_ready, process, what, failure, log_name):
    """Poll `is_ready()` until it returns, or fail with `failure` and the end of the log."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            is_ready()
            return
        except failure as error:
            last_error = error
        exited = process.poll() is not None
        if exited or time.monotonic() > deadline:
            reason = "exited" if exited else f"was not ready in {START_TIMEOUT}s"
            log = _servers.tmpdir / log_name
            raise pytest.UsageError(
                f"{what} {reason} ({last_error}). End of {log}:\n{log_tail(log)}"
            )
        time.sleep(0.1)


def wait_for_postgres(port):
    """Wait until postgres accepts connections."""

    def connect():
        psycopg.connect(
            host=HOST, port=port, user=PG_USER, dbname="postgres", connect_timeout=2
        ).close()

    wait_until_ready(
        connect, _servers.postgres, "PostgreSQL", psycopg.OperationalError, "postgres.log"
    )


def create_database(port):
    """Create the alphanode database, so manage.py commands run by tests can connect."""
    # pytest-django creates test_alphanode (per xdist worker) itself; this one is for subprocesses.
    with psycopg.connect(
        host=HOST, port=port, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def start_redis(redis_server, tmpdir, port):
    """Start redis-server on `port` without persistence, logging to tmpdir."""
    command = [
        redis_server,
        "--save",
        "",
        "--appendonly",
        "no",
        "--port",
        str(port),
        "--bind",
        HOST,
        "--daemonize",
        "no",
        "--dir",
        str(tmpdir),
    ]
    with (tmpdir / "redis.log").open("wb") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Same reason as for postgres.
        )


def wait_for_redis(port):
    """Wait until redis answers PING."""
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1)
    try:
        wait_until_ready(
            client.ping, _servers.redis, "redis-server", redis.ConnectionError, "redis.log"
        )
    finally:
        client.close()


def stop_servers():
    """Stop the servers this process started and remove their directory; safe to call twice."""
    if _servers.postgres is not None:
        stop_postgres(_servers.postgres)
        _servers.postgres = None
    if _servers.redis is not None:
        stop_process(_servers.redis)
        _servers.redis = None
    if _servers.tmpdir is not None:
        shutil.rmtree(_servers.tmpdir, ignore_errors=True)
        _servers.tmpdir = None


def stop_postgres(process):
    """Stop postgres immediately through pg_ctl, falling back to signalling its process."""
    # Immediate mode skips the shutdown checkpoint: nothing in this cluster is worth keeping.
    if process.poll() is None:
        subprocess.run(
            as_server_user(
                [
                    str(_servers.pg_bin / "pg_ctl"),
                    "stop",
                    "-m",
                    "immediate",
                    "-D",
                    str(_servers.tmpdir / "data"),
                ]
            ),
            cwd=_servers.tmpdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    stop_process(process)


def stop_process(process):
    """Terminate `process` (one we started) and wait for it, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path):
    """Return the last lines of the log file at `path`."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(lines[-LOG_TAIL_LINES:])


# Varnish (tests/test_varnish.py and bench/site_bench.py start their own, around gunicorn).

VCL_DIR = Path(__file__).resolve().parent.parent / "deploy" / "varnish"


def find_varnishd():
    """Return the path of varnishd."""
    path = shutil.which("varnishd") or "/usr/sbin/varnishd"
    if not Path(path).exists():
        raise pytest.UsageError(
            "varnishd not found: `apt-get install -y varnish varnish-modules` (.ci/run does)."
        )
    return path


def start_varnish(tmpdir, port, backend_port, *, probe_interval="0.2s"):
    """Start varnishd on `port` with deploy/varnish/default.vcl in front of `backend_port`.

    Its backend.vcl is deploy/varnish/backend.vcl with the port replaced and a quick probe, so
    a stopped backend is seen within two probes. Logs to tmpdir/varnishd.log; wait_for_http()
    tells when it answers. `tmpdir` should be under /tmp: varnishd reads and compiles the VCL
    as its own user, so both files are copied there, where that user can read them (a clone
    of the repository may sit in a directory only root can enter).
    """
    tmpdir = Path(tmpdir)
    tmpdir.chmod(0o755)
    shutil.copy(VCL_DIR / "default.vcl", tmpdir / "default.vcl")
    (tmpdir / "default.vcl").chmod(0o644)
    (tmpdir / "backend.vcl").write_text(
        (VCL_DIR / "backend.vcl").read_text()
        .replace('"8000"', f'"{backend_port}"')
        .replace(".interval = 2s", f".interval = {probe_interval}")
        .replace(".window = 5", ".window = 2")
        .replace(".threshold = 3", ".threshold = 1")
        .replace(".initial = 3", ".initial = 1")
    )
    with (tmpdir / "varnishd.log").open("wb") as log:
        return subprocess.Popen(
            [find_varnishd(), "-F", "-a", f"{HOST}:{port}", "-f", str(tmpdir / "default.vcl"),
             "-p", f"vcl_path={tmpdir}", "-n", str(tmpdir / "varnish"),
             "-s", "malloc,256m", "-T", "none"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_for_http(url, process, what, log, seconds=START_TIMEOUT):
    """Wait until `url` answers with any HTTP status; raise if `process` exits first."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {seconds} s: {log_tail(log)}")


# A primary and its streaming replica (tests/test_replicas.py starts its own pair).


class Cluster:
    """A PostgreSQL cluster of a test's own on a free loopback port, under its own directory.

    Cluster.primary() runs initdb; Cluster.replica_of(primary) copies a running primary with
    pg_basebackup -R, so that once started it streams from it. initdb --auth=trust already lets
    local users replicate (pg_hba.conf's `replication` lines for 127.0.0.1 and ::1), and
    PostgreSQL's defaults (wal_level=replica, max_wal_senders=10) allow a base backup.
    """

    def __init__(self, pg_bin, tmpdir, settings=None):
        self.pg_bin, self.tmpdir, self.settings = pg_bin, tmpdir, settings or {}
        (self.port,) = free_ports(1)
        self.process = None
        self.log = tmpdir / "postgres.log"
        self.url = f"postgres://{PG_USER}@{HOST}:{self.port}/{DB_NAME}"

    @classmethod
    def primary(cls, settings=None):
        pg_bin = find_pg_bin()
        cluster = cls(pg_bin, make_tmpdir(), settings)
        init_cluster(pg_bin, cluster.tmpdir)
        return cluster

    @classmethod
    def replica_of(cls, primary, settings=None):
        cluster = cls(primary.pg_bin, make_tmpdir(), settings)
        base_backup(primary.pg_bin, primary.port, cluster.tmpdir)
        return cluster

    def start(self):
        self.process = start_postgres(self.pg_bin, self.tmpdir, self.port, self.settings)
        wait_for_cluster(self.port, self.process, self.log)

    def stop(self, mode="fast"):
        """Stop the server; `fast` terminates sessions, as `systemctl stop postgresql` does."""
        subprocess.run(
            as_server_user([str(self.pg_bin / "pg_ctl"), "-D", str(self.tmpdir / "data"),
                            "-m", mode, "-w", "stop"]),
            cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True,
        )
        self.process.wait(timeout=10)

    def connect(self, dbname=DB_NAME):
        """Return a psycopg connection (autocommit) to the cluster as the server user."""
        return psycopg.connect(host=HOST, port=self.port, user=PG_USER, dbname=dbname,
                               autocommit=True, connect_timeout=2)

    def remove(self):
        """Stop the server if it runs and delete its directory; safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            self.stop(mode="immediate")
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def base_backup(pg_bin, primary_port, tmpdir):
    """Copy the cluster running on `primary_port` into tmpdir/data as a standby of it."""
    # -R writes standby.signal and primary_conninfo; -X stream brings the WAL the copy needs.
    log = tmpdir / "pg_basebackup.log"
    with log.open("wb") as out:
        result = subprocess.run(
            as_server_user([str(pg_bin / "pg_basebackup"), "-h", HOST, "-p", str(primary_port),
                            "-U", PG_USER, "-D", str(tmpdir / "data"), "-R", "-X", "stream",
                            "-c", "fast", "--no-sync"]),
            cwd=tmpdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed:\n{log_tail(log)}")


def wait_for_cluster(port, process, log):
    """Wait until the postgres `process` on `port` accepts connections (a standby included)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            psycopg.connect(host=HOST, port=port, user=PG_USER, dbname="postgres",
                            connect_timeout=2).close()
            return
        except psycopg.OperationalError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {port} did not start ({error}):\n"
                                   f"{log_tail(log)}") from None
            time.sleep(0.1)


# gunicorn serving the app, for the tests that go through real HTTP.


def start_gunicorn(env, log, *, port=None, workers=1):
    """Start gunicorn on loopback `port` (a free one by default) with `env`, its output to
    `log`; wait until it answers /healthz. Return (process, base URL); stop it with
    stop_process()."""
    port = port or free_ports(1)[0]
    root = Path(__file__).resolve().parent.parent
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", str(workers),
             "--bind", f"{HOST}:{port}", "alphanode.wsgi"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://{HOST}:{port}"
    try:
        wait_for_http(f"{base}/healthz", process, "gunicorn", log)
    except BaseException:
        stop_process(process)
        raise
    return process, base
