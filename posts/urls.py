from django.urls import path

from posts import feeds, views

app_name = "posts"
urlpatterns = [
    path("", views.post_list, name="list"),
    path("search/", views.search, name="search"),
    path("posts/<slug:slug>/", views.post_detail, name="detail"),
    path("posts/<int:pk>/view", views.count_view, name="count_view"),
    path("posts/<slug:slug>/review/<str:action>/", views.review_post, name="review"),
    path("tags/", views.tag_index, name="tags"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag"),
    path("tags/<slug:slug>/feed/", feeds.tag_atom, name="tag_feed"),
    path("tags/<slug:slug>/feed/rss/", feeds.tag_rss, name="tag_feed_rss"),
    path("feed/", feeds.latest_atom, name="feed"),
    path("feed/rss/", feeds.latest_rss, name="feed_rss"),
    path("review/", views.review_queue, name="review_queue"),
]
