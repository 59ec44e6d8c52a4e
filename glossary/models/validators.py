"""Validators the content models share."""

from django.core.validators import RegexValidator, URLValidator

http_url_validator = URLValidator(schemes=["http", "https"])

# Control characters have no place in a glossary, and a stored one breaks the XML feed.
# Multi-line text keeps its line breaks and tabs.
single_line_text = RegexValidator(
    r"[\x00-\x1f\x7f-\x9f]",
    inverse_match=True,
    message="Remove the control characters (such as tabs or line breaks) from this text.",
    code="control_characters",
)
multi_line_text = RegexValidator(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]",
    inverse_match=True,
    message="Remove the control characters from this text; line breaks and tabs are fine.",
    code="control_characters",
)
