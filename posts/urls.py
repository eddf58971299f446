from django.urls import path

from posts import views

app_name = "posts"
urlpatterns = [
    path("", views.post_list, name="list"),
    path("search/", views.search, name="search"),
    path("posts/<slug:slug>/", views.post_detail, name="detail"),
    path("posts/<int:pk>/view", views.count_view, name="count_view"),
    path("posts/<slug:slug>/review/<str:action>/", views.review_post, name="review"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag"),
    path("review/", views.review_queue, name="review_queue"),
]
