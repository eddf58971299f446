"""Create the Editors and Reviewers groups with their permissions.

Editors add and change content and publish; Reviewers see everything and flag, clear and mark
posts reviewed, but change no content. Re-running keeps the groups in step with this list.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CONTENT_MODELS = ("post", "tag", "imagesource", "section", "posttag", "revision")
GROUPS = {
    "Editors": [
        *(f"{action}_{model}" for model in CONTENT_MODELS for action in ("add", "change", "view")),
        "delete_posttag",  # removing a tag from a post
        "delete_section",
        "delete_imagesource",
        "view_reviewevent",
        "publish_post",
    ],
    "Reviewers": [
        *(f"view_{model}" for model in CONTENT_MODELS),
        "view_reviewevent",
        "flag_post",
        "review_post",
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; this migration needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(
            content_type__app_label="posts", codename__in=codenames
        )
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"Permissions missing for group {name}: {sorted(missing)}")
        group.permissions.set(permissions)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0002_review"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
