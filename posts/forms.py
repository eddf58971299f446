"""Form fields, widgets and forms for the posts admin."""

from django import forms
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db.models import F

from posts.models import Post, PublicationStatus
from posts.review import REASON_MAX_LENGTH


class LineListField(forms.Field):
    """A list of strings edited as a textarea, one item per line; blank lines are dropped."""

    widget = forms.Textarea(attrs={"rows": 5, "class": "vLargeTextField"})
    default_help_text = "One item per line; blank lines are ignored."

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", self.default_help_text)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return []
        lines = value if isinstance(value, list | tuple) else str(value).splitlines()
        return [line.strip() for line in lines if line.strip()]

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        return (initial or []) != self.to_python(data)


class LoadedAutocompleteSelect(AutocompleteSelect):
    """An AutocompleteSelect that renders its selected option from an object already loaded.

    AutocompleteSelect looks the selected object up to print its label: one query per inline
    row. A form sets `loaded` to the objects it holds (e.g. an inline's select_related tag);
    any other value (a changed choice on a re-displayed form) falls back to that lookup.
    """

    loaded = ()

    def optgroups(self, name, value, attr=None):
        to_field = self.field.remote_field.get_related_field().attname
        known = {str(getattr(obj, to_field)): obj for obj in self.loaded}
        selected = [str(v) for v in value if str(v) not in self.choices.field.empty_values]
        if not selected or not all(key in known for key in selected):
            return super().optgroups(name, value, attr)
        options = []
        if not self.is_required and not self.allow_multiple_selected:
            options.append(self.create_option(name, "", "", False, 0))
        for key in selected[: None if self.allow_multiple_selected else 1]:
            label = self.choices.field.label_from_instance(known[key])
            options.append(self.create_option(name, key, label, True, len(options)))
        return [(None, options, 0)]


class PositionedInlineForm(forms.ModelForm):
    """An inline row with a `position` unique per post, which its formset checks instead."""

    def validate_constraints(self):
        # Row by row against the database, a swap of two positions always collides; the
        # formset compares the positions of all the post's rows (PositionedInlineFormSet).
        exclude = self._get_validation_exclusions() | {"position"}
        try:
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as error:
            self._update_errors(error)


class PositionedInlineFormSet(forms.BaseInlineFormSet):
    """Inline rows of a post (sections, figures) that may be renumbered, swapped included.

    The formset holds all of the post's rows, so its own duplicate check covers the
    (post, position) constraint. That constraint is not deferrable, so before the rows are
    saved one by one, those that move or go step aside past every position in use.
    """

    def save_existing_objects(self, commit=True):
        if commit:
            self.free_positions()
        return super().save_existing_objects(commit)

    def free_positions(self):
        """Move the rows whose position changes or which are deleted out of the way (1 query)."""
        leaving = [
            form.instance.pk
            for form in self.initial_forms
            if form in self.deleted_forms or "position" in form.changed_data
        ]
        if not leaving:
            return
        in_use = [
            position
            for form in self.forms
            for position in (form.initial.get("position"), form.cleaned_data.get("position"))
            if position is not None
        ]
        self.model._default_manager.filter(pk__in=leaving).update(
            position=F("position") + max(in_use) + 1
        )


class PostTagInlineForm(forms.ModelForm):
    """A tag link whose tag widget renders the link's select_related tag without a query."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("tag")  # absent when the inline is read-only
        if field is None or self.instance.tag_id is None:
            return
        widget = getattr(field.widget, "widget", field.widget)  # inside RelatedFieldWidgetWrapper
        if isinstance(widget, LoadedAutocompleteSelect):
            widget.loaded = [self.instance.tag]


class PostAdminForm(forms.ModelForm):
    """The post change form; PostAdmin adds the rest of the fields of its fieldsets."""

    checklist = LineListField(required=False)
    notes = LineListField(required=False)

    class Meta:
        model = Post
        fields = ["title", "slug", "status", "published_at", "checklist", "notes"]

    def clean(self):
        cleaned_data = super().clean()
        # Both fields are absent for users who may not publish (they are read-only then).
        if (
            cleaned_data.get("status") == PublicationStatus.PUBLISHED
            and "published_at" in self.fields
            and cleaned_data.get("published_at") is None
            and "published_at" not in self.errors
        ):
            self.add_error(
                "published_at", "A published post needs a publication date and time."
            )
        return cleaned_data


class ReviewActionForm(ActionForm):
    """The changelist's action bar, with the reason a flag (or other review step) is given."""

    reason = forms.CharField(
        label="Reason:",
        required=False,  # required by the flag action only, which says so when it is missing
        strip=True,
        widget=forms.TextInput(
            attrs={
                "size": 40,
                "maxlength": REASON_MAX_LENGTH,
                "placeholder": "required to flag: what should a reviewer look at?",
            }
        ),
    )
