"""What one run may use: from the settings, as prlimit receives it, as readers see it."""

import dataclasses

from django.conf import settings


@dataclasses.dataclass(frozen=True)
class Limits:
    wall_seconds: float
    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_kb: int
    open_files: int
    output_kb: int

    @classmethod
    def from_settings(cls, runtime=None):
        """SNIPPET_LIMITS, with what SNIPPET_RUNTIME_LIMITS gives runtime instead."""
        instead = settings.SNIPPET_RUNTIME_LIMITS.get(runtime, {})
        return cls(**{**settings.SNIPPET_LIMITS, **instead})

    def as_dict(self):
        """The limits as the start event shows them to the reader."""
        return dataclasses.asdict(self)

    def rlimits(self):
        """(name, soft, hard) for each resource limit; SIGXCPU comes a second before SIGKILL."""
        return [
            ("RLIMIT_CPU", self.cpu_seconds, self.cpu_seconds + 1),
            ("RLIMIT_AS", self.memory_mb * 1024 * 1024, self.memory_mb * 1024 * 1024),
            ("RLIMIT_NPROC", self.processes, self.processes),
            ("RLIMIT_FSIZE", self.file_size_kb * 1024, self.file_size_kb * 1024),
            ("RLIMIT_NOFILE", self.open_files, self.open_files),
        ]

    def prlimit_options(self):
        """The limits as prlimit(1) options."""
        return [f"--{name[7:].lower()}={soft}:{hard}" for name, soft, hard in self.rlimits()]
