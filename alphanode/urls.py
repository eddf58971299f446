from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from alphanode.health import favicon, healthz, readyz
from posts import sitemaps

handler404 = "posts.views.not_found"
handler500 = "alphanode.health.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("robots.txt", sitemaps.robots_txt, name="robots"),
    path("favicon.ico", favicon, name="favicon"),
    path("sitemap.xml", sitemaps.sitemap_index, name="sitemap"),
    path("sitemap-tags.xml", sitemaps.sitemap_tags, name="sitemap_tags"),
    path("sitemap-posts-<int:number>.xml", sitemaps.sitemap_posts, name="sitemap_posts"),
    path("admin/", admin.site.urls),
    path("", include("posts.urls")),
]

if settings.DEBUG_TOOLBAR:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
