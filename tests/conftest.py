import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db.models import FETCH_RAISE
from django.db.models import query as django_query


@pytest.fixture(autouse=True)
def raise_on_lazy_loads(monkeypatch):
    """Make every queryset in every test raise on a lazy foreign-key or deferred-field load.

    Django 6.1's FETCH_RAISE turns an N+1 that a query-count test might miss (a field left out of
    only(), a select_related forgotten) into FieldFetchBlocked, wherever the queryset comes from.
    """
    monkeypatch.setattr(django_query, "DEFAULT_FETCH_MODE", FETCH_RAISE)


@pytest.fixture(autouse=True)
def clear_cache():
    """Start every test with an empty cache (Redis is shared by the test run)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def page_cache_off(settings):
    """Render every page afresh: the page cache is invalidated when a write commits, which a
    test's transaction never does. tests/test_caching.py turns it on (page_cache)."""
    settings.PAGE_CACHE = False


@pytest.fixture
def page_cache(settings):
    """The page cache on; wrap writes in django_capture_on_commit_callbacks(execute=True) so
    their invalidations run as a commit would run them."""
    settings.PAGE_CACHE = True


@pytest.fixture(autouse=True)
def import_in_the_test_transaction(settings):
    """Import on the test's own connection: writer threads use their own connections, outside
    the test's transaction. Tests of the threaded path use transactional_db and IMPORT_WORKERS."""
    settings.IMPORT_WORKERS = 0


def make_user(username, group=None, permissions=(), **extra):
    """Create a user, optionally in one of the groups the migrations create, or with
    individual posts permissions."""
    user = User.objects.create_user(username, password="a-long-test-password", **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    if permissions:
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="posts", codename__in=permissions)
        )
    return user


@pytest.fixture
def editor():
    return make_user("eddie", "Editors", is_staff=True)


@pytest.fixture
def reviewer():
    return make_user("rita", "Reviewers", is_staff=True)


@pytest.fixture
def staff():
    return make_user("stan", is_staff=True)


@pytest.fixture
def reader():
    return make_user("reader")
