"""`field__in=[...]` on PostgreSQL as `field = ANY(%s)`: one array parameter, not one per value.

With server-side parameters (DATABASE_PREPARED_STATEMENTS, alphanode/settings.py) a statement
may carry at most 65,535 parameters, and Django's IN sends one per value: an admin action over
every post of a million, or an unpublish refilling the lists of 40,000 posts, would fail. One
array parameter has no such limit, and the statement's text no longer depends on the number of
values, so it is prepared once rather than once per list length. Subqueries, expressions in
the list and multi-column relations keep Django's own SQL.
"""

from django.db.models import Field, ForeignObject
from django.db.models.expressions import ColPairs
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


class ArrayInMixin:
    lookup_name = "in"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value() or isinstance(self.lhs, ColPairs):
            return self.as_sql(compiler, connection)
        placeholders, values = self.process_rhs(compiler, connection)  # EmptyResultSet if empty
        if placeholders != f"({', '.join(['%s'] * len(values))})":
            return self.as_sql(compiler, connection)  # expressions among the values
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(values))


class ArrayIn(ArrayInMixin, In):
    pass


class RelatedArrayIn(ArrayInMixin, RelatedIn):
    pass


def register():
    """Use these for every `__in` lookup (called from PostsConfig.ready())."""
    Field.register_lookup(ArrayIn)
    ForeignObject.register_lookup(RelatedArrayIn)
