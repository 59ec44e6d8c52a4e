"""What checking an exercise needs to know, read from the database once: the checker then
runs without touching the ORM (it runs in the event loop)."""

import dataclasses
import hashlib
import json

from glossary.models import CheckKind, ExerciseLanguage
from glossary.models.exercises import SQL_PROBE_RUNTIMES

# Bumped when what a run reports for the same code changes: cached references expire.
VERSION = 1
VISIBLE = "the visible data"


@dataclasses.dataclass(frozen=True)
class DataSet:
    name: str
    setup: str
    hidden: bool

    @property
    def label(self):
        return f"the hidden data set “{self.name}”" if self.hidden else self.name


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    kind: str
    label: str
    target: str = ""
    number: int | None = None
    ordered: bool = False
    compare_column_names: bool = False
    table: str = ""
    # Which of the run's probes this check reads (see Spec.probes), or None.
    probe: int | None = None


@dataclasses.dataclass(frozen=True)
class Spec:
    slug: str
    runtime: str
    language: str
    solution: str
    data_sets: tuple[DataSet, ...]
    checks: tuple[CheckSpec, ...]
    probes: tuple[dict, ...] = ()
    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, exercise):
        """The spec of an exercise with its variants and checks (prefetched: see
        ExerciseQuerySet.for_checking)."""
        data_sets = [DataSet(VISIBLE, exercise.setup, hidden=False)]
        data_sets += [DataSet(v.name, v.setup, hidden=True) for v in exercise.variants.all()]
        probe_language = (
            "sql"
            if exercise.language == ExerciseLanguage.SQL or exercise.runtime in SQL_PROBE_RUNTIMES
            else "python"
        )
        checks, probes, problems = [], [], []
        for check in exercise.checks.all():
            if problem := check.problem(exercise.runtime, exercise.language):
                problems.append(f"{check.label}: {problem}")
            probe = None
            reads_rows = check.kind == CheckKind.ROWS and check.target
            reads_plan = (
                check.kind in (CheckKind.USES_INDEX, CheckKind.NO_SEQ_SCAN)
                and exercise.runtime != "django"
            )
            if reads_rows or reads_plan:
                probe = len(probes)
                probes.append(
                    {"language": probe_language, "code": check.target, "explain": bool(reads_plan)}
                )
            checks.append(
                CheckSpec(
                    kind=check.kind,
                    label=check.label,
                    target=check.target,
                    number=check.number,
                    ordered=check.ordered,
                    compare_column_names=check.compare_column_names,
                    table=check.table,
                    probe=probe,
                )
            )
        if not checks:
            problems.append("The exercise has no checks.")
        return cls(
            slug=exercise.slug,
            runtime=exercise.runtime,
            language=exercise.language,
            solution=exercise.solution,
            data_sets=tuple(data_sets),
            checks=tuple(checks),
            probes=tuple(probes),
            problems=tuple(problems),
        )

    @property
    def needs_reference(self):
        """Whether any check compares with what the reference gives."""
        return any(check.kind in (CheckKind.ROWS, CheckKind.OUTPUT) for check in self.checks)

    def reference_key(self):
        """Names the reference's results: what they depend on, hashed."""
        inputs = [
            VERSION,
            self.runtime,
            self.language,
            self.solution,
            [data_set.setup for data_set in self.data_sets],
            list(self.probes),
        ]
        digest = hashlib.sha256(json.dumps(inputs).encode("utf-8", "surrogatepass"))
        return f"exercise-reference:{digest.hexdigest()}"
