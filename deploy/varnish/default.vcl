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

# Who may purge: the app servers.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
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
    # While the app is healthy, an expired page is served stale only briefly (the app's
    # stale-while-revalidate) while it is fetched again; when the app is down, for as long as
    # the page's stale-if-error allows (beresp.grace below).
    if (std.healthy(req.backend_hint)) {
        set req.grace = 60s;
    }
    return (hash);
}

sub vcl_backend_response {
    # Varnish takes the TTL from s-maxage and the grace from stale-while-revalidate; keep the
    # object for stale-if-error instead, so it outlives the app being down.
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
    # The keys are for this cache only.
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.Cache-Tag;
}
