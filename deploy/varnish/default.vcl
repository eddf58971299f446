# Varnish in front of alphanode (docs/caching.md). Needs varnish-modules for xkey.
#
#   varnishd -a :80 -f /etc/varnish/default.vcl -p vcl_path=/etc/varnish -s malloc,1g
#
# backend.vcl, next to this file, says where the app is (deploy/varnish/backend.vcl is an
# example). The app sends the content keys of each page in `xkey`, and after a change PURGEs
# them with an `xkey-purge` header (PURGER=http, PURGE_URLS=http://<varnish>/): every page
# carrying one of those keys is dropped, and no other.
vcl 4.1;

import std;
import xkey;

include "backend.vcl";

# Who may purge: the app servers and the task worker. Add their network when they are other
# machines (PURGE_URLS then lists every Varnish: a purge reaches only those it is sent to).
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # The request id the app logs (TRUSTED_PROXY_COUNT): Varnish's own, never the client's.
    # With a CDN in front that sends one, keep the CDN's instead: `if (!req.http.X-Request-ID)`
    # here, and strip the header from clients at the CDN.
    set req.http.X-Request-ID = "varnish-" + req.xid;
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Not allowed to purge."));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header of space-separated keys."));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.n-gone + " objects."));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Staff and anyone logged in get fresh pages from the app (which marks them private); the
    # admin is never cached. Other cookies (analytics, csrftoken) change nothing on a reader
    # page, so they are dropped rather than splitting the cache.
    if (req.url ~ "^/admin/" || req.http.Cookie ~ "(^|;\s*)sessionid=") {
        return (pass);
    }
    unset req.http.Cookie;
    # vcl_hit asks for a fresh copy of a page too stale to serve while the app is up.
    if (req.restarts == 0) {
        unset req.http.X-Fetch-Fresh;
    } elsif (req.http.X-Fetch-Fresh) {
        set req.grace = 0s;
    }
    return (hash);
}

sub vcl_hit {
    # An expired page is kept for its stale-if-error (beresp.grace below). While the app is up
    # it is served stale only within its stale-while-revalidate (fetched again meanwhile);
    # past that, the reader waits for a fresh copy. While the app is down, it is served.
    if (obj.ttl <= 0s && std.healthy(req.backend_hint)
        && obj.ttl + std.duration(obj.http.X-Stale-While-Revalidate + "s", 0s) <= 0s) {
        set req.http.X-Fetch-Fresh = "1";
        return (restart);
    }
}

sub vcl_backend_response {
    # A background refresh that got an error (the app up, its database not): keep serving
    # the stale copy rather than replacing it with the error.
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);
    }
    # Varnish takes the TTL from s-maxage and the grace from stale-while-revalidate; keep the
    # object for stale-if-error instead, so it outlives the app being down, and remember the
    # stale-while-revalidate for vcl_hit.
    set beresp.http.X-Stale-While-Revalidate = "0";
    if (beresp.http.Cache-Control ~ "stale-while-revalidate=[0-9]+") {
        set beresp.http.X-Stale-While-Revalidate = regsub(beresp.http.Cache-Control,
            "^.*stale-while-revalidate=([0-9]+).*$", "\1");
    }
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Cache-Control, "^.*stale-if-error=([0-9]+).*$", "\1") + "s", 0s);
    }
    # Pages the app marks private or not cacheable are never stored.
    if (beresp.http.Cache-Control ~ "(private|no-store|no-cache)") {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # What the app measured and named belongs to the request that fetched the page.
    if (obj.hits > 0) {
        unset resp.http.Server-Timing;
        set resp.http.X-Request-ID = req.xid;
    }
    # The keys and the remembered stale-while-revalidate are for this cache only.
    unset resp.http.X-Stale-While-Revalidate;
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.Cache-Tag;
}
