import re

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse

from .curation import language_problem
from .models import ReaderReport, ReportKind, Snippet


class CodeTextarea(forms.Textarea):
    """A monospace editor for code: no wrapping, no spell checking, tabs kept. With
    JavaScript, the admin's change form swaps it for the readers' code editor."""

    class Media:
        css = {"all": ["css/highlight.css", "css/editor.css"]}

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


MAX_REPORT_CHARS = 2000
MAX_LINKS_IN_A_REPORT = 2
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ReaderReportForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=ReportKind, widget=forms.RadioSelect, label="This is")
    # A honeypot: hidden from people, filled in by bots that fill in everything.
    website = forms.CharField(required=False, label="Leave this empty")

    class Meta:
        model = ReaderReport
        fields = ("kind", "url", "title", "message")
        labels = {"url": "Link (for a suggestion)", "title": "Its title"}
        widgets = {"message": forms.Textarea(attrs={"rows": 5, "maxlength": MAX_REPORT_CHARS})}

    def clean_message(self):
        message = CONTROL_CHARACTERS.sub("", self.cleaned_data["message"]).strip()
        if len(message) > MAX_REPORT_CHARS:
            raise ValidationError(
                f"Please keep it under {MAX_REPORT_CHARS} characters (it has {len(message)})."
            )
        if len(re.findall(r"https?://", message)) > MAX_LINKS_IN_A_REPORT:
            raise ValidationError(
                f"At most {MAX_LINKS_IN_A_REPORT} links in a message, please: "
                "messages full of links are taken for spam."
            )
        return message

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == ReportKind.LINK and not cleaned.get("url") and "url" not in self.errors:
            self.add_error("url", "Which link do you suggest? Give its address.")
        if (
            kind == ReportKind.PROBLEM
            and not cleaned.get("message")
            and "message" not in self.errors
        ):
            self.add_error("message", "Tell us what is wrong.")
        return cleaned

    @property
    def is_from_a_bot(self):
        return bool(self.cleaned_data.get("website"))
