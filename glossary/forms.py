from django import forms
from django.urls import reverse

from .curation import language_problem
from .models import Snippet


class CodeTextarea(forms.Textarea):
    """A monospace editor for code: no wrapping, no spell checking, tabs kept."""

    def __init__(self, attrs=None):
        defaults = {"class": "code-editor", "rows": 14, "spellcheck": "false", "wrap": "off"}
        super().__init__({**defaults, **(attrs or {})})


class MarkdownTextarea(forms.Textarea):
    """A Markdown field; static/js/markdown_preview.js adds a Preview button."""

    def __init__(self, attrs=None):
        super().__init__({"class": "markdown-input", "rows": 6, **(attrs or {})})

    def get_context(self, name, value, attrs):
        attrs = {**(attrs or {}), "data-preview-url": reverse("admin:glossary_markdown_preview")}
        return super().get_context(name, value, attrs)


class SnippetAdminForm(forms.ModelForm):
    class Meta:
        model = Snippet
        fields = ("topic", "title", "slug", "description", "is_published", "language")
        fields += ("runtime", "display_only_reason", "code", "position")
        widgets = {"code": CodeTextarea}

    def clean(self):
        cleaned = super().clean()
        language, runtime = cleaned.get("language"), cleaned.get("runtime")
        if language is not None and runtime is not None:
            if problem := language_problem(language, runtime):
                self.add_error("runtime", problem)
        return cleaned
