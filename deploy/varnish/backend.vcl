# Where the app listens (gunicorn), and how Varnish knows it is up: /healthz touches nothing,
# so a sick probe means the process is gone, not that the database is slow.
backend default {
    .host = "127.0.0.1";
    .port = "8000";
    .probe = {
        .url = "/healthz";
        .interval = 2s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
        .initial = 3;  # healthy from the start, so the first requests are not refused
    }
}
