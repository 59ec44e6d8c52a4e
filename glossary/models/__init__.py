"""The glossary's models, one module per concern.

`from glossary.models import X` names every model of the app, its choices and the helpers
other modules use; importing this package also connects the models' signal receivers.
"""

from . import history  # noqa: F401  (registers the history of topics, links and snippets)
from .choices import Language, Runtime  # noqa: F401
from .exercises import (  # noqa: F401
    Check,
    CheckKind,
    DataVariant,
    Exercise,
    ExerciseLanguage,
    Hint,
    WrongAnswer,
)
from .links import CheckError, Link, LinkCheck, LinkGroup, normalize_url  # noqa: F401
from .mentions import Mention  # noqa: F401
from .paths import Path, PathStep, StepKind  # noqa: F401
from .reports import ReaderReport, ReportKind, ReportStatus  # noqa: F401
from .revisions import ContentRevision  # noqa: F401
from .shares import Share, new_share_id  # noqa: F401
from .snippets import Snippet, Verification  # noqa: F401
from .topics import Topic, letter_for  # noqa: F401
from .validators import http_url_validator  # noqa: F401
