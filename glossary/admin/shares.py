"""Code readers shared from the playground."""

from django.contrib import admin

from ..models import Share


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    """Code readers shared from the playground: staff review it and delete what must go."""

    list_display = ("id", "runtime", "language", "first_line", "created", "last_viewed", "views")
    list_filter = ("runtime", "language")
    search_fields = ("id", "code")
    date_hierarchy = "created"
    readonly_fields = ("id", "runtime", "language", "code", "created", "last_viewed", "views")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, share=None):
        return False

    @admin.display(description="Code")
    def first_line(self, share):
        return share.code.strip().splitlines()[0][:80]
