"""The runtime registry: one class per runtime a snippet can choose."""

import pytest

from glossary import runner
from glossary.models import Runtime


def test_every_runtime_a_snippet_can_choose_has_a_runtime_class():
    assert set(runner.RUNTIMES) == {value for value in Runtime.values if value}


@pytest.mark.asyncio
async def test_an_unknown_runtime_is_refused_before_anything_runs():
    events = [event async for event in runner.run("print(1)", "cobol")]

    assert events == [
        {
            "type": "error",
            "message": (
                "Unknown runtime 'cobol'; expected one of python, django, postgresql, redis, mysql."
            ),
        }
    ]
