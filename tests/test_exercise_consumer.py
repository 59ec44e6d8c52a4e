"""The exercise socket, /ws/exercises/<slug>/: run an answer on the visible data, or check
it; through the full ASGI stack."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from glossary import runner
from tests.conftest import require
from tests.exercises import ORDERS, ORDERS_SOLUTION, ORDERS_VARIANTS, make_exercise
from tests.test_run_workers import real_parts, redis_layer, worker  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HARD_CODED = (
    "SELECT 'ann' AS customer, 2 AS orders UNION ALL SELECT 'bob', 1 UNION ALL SELECT 'cy', 1;"
)


@pytest.fixture(autouse=True)
def sandbox(settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_RUNS_PER_MINUTE = 1000


@database_sync_to_async
def make_orders_exercise(**fields):
    return make_exercise(
        "orders-per-customer",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution=ORDERS_SOLUTION,
        variants=ORDERS_VARIANTS,
        checks=[{"kind": "rows"}, {"kind": "forbids", "target": r"(?i)\bunion\b"}],
        **fields,
    )


async def connect(slug="orders-per-customer"):
    communicator = WebsocketCommunicator(application, f"/ws/exercises/{slug}/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def events_until(communicator, ends, timeout=30):
    events = []
    while not events or events[-1]["type"] not in ends:
        events.append(await communicator.receive_json_from(timeout=timeout))
    return events


async def test_a_check_streams_the_run_then_each_check_then_the_verdict():
    await make_orders_exercise()
    communicator = await connect()

    await communicator.send_json_to({"action": "check", "code": ORDERS_SOLUTION})
    passing = await events_until(communicator, ("verdict", "error"))
    await communicator.send_json_to({"action": "check", "code": HARD_CODED})
    failing = await events_until(communicator, ("verdict", "error"))
    await communicator.disconnect()

    assert [e["type"] for e in passing] == ["start", "table", "exit", "check", "check", "verdict"]
    assert passing[-1] == {"type": "verdict", "passed": True}
    assert [e["type"] for e in failing] == ["start", "table", "exit", "check", "check", "verdict"]
    rows, forbids = failing[3:5]
    assert rows["name"] == "Rows equal the reference's" and rows["passed"] is False
    assert rows["detail"].startswith("On the hidden data set “NULLs and ties”:")
    assert forbids["passed"] is False
    assert failing[-1] == {"type": "verdict", "passed": False}


async def test_run_shows_the_answer_on_the_visible_data_without_checks():
    await make_orders_exercise()
    communicator = await connect()

    await communicator.send_json_to({"action": "run", "code": "SELECT count(*) FROM orders;"})
    events = await events_until(communicator, ("exit", "error"))
    await communicator.disconnect()

    assert [e["type"] for e in events] == ["start", "table", "exit"]
    assert events[1]["rows"] == [[4]]
    assert await communicator.receive_nothing()


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ({"action": "explode"}, 'Unknown action: use "run", "check" or "cancel".'),
        ({"action": "check"}, 'Send your answer: {"action": "check", "code": "..."}.'),
        ({"action": "check", "code": "   "}, "The code must be non-empty text."),
        ({"action": "run", "code": 42}, "The code must be non-empty text."),
        ({"action": "cancel"}, "Nothing is running."),
    ],
)
async def test_bad_messages_get_a_clear_error_and_the_socket_stays_usable(message, answer):
    await make_orders_exercise()
    communicator = await connect()

    await communicator.send_json_to(message)
    error = await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"action": "run", "code": "SELECT 1 AS one;"})
    events = await events_until(communicator, ("exit", "error"))
    await communicator.disconnect()

    assert error == {"type": "error", "message": answer}
    assert events[-1]["reason"] == "ok"


async def test_too_large_answers_are_refused(settings):
    await make_orders_exercise()
    communicator = await connect()

    code = "SELECT 1;\n" + "-- padding\n" * (settings.SNIPPET_SHARE_MAX_BYTES // 11 + 10)
    await communicator.send_to(text_data=json.dumps({"action": "check", "code": code}))
    error = await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data=json.dumps({"action": "cancel", "pad": "x" * 2000}))
    control = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()

    assert error["type"] == "error" and error["message"].startswith("The code is too long")
    assert control["type"] == "error" and control["message"].startswith("Messages are JSON text")


async def test_an_unknown_or_unpublished_exercise_is_refused():
    await make_orders_exercise(is_published=False)

    for slug in ("nope", "orders-per-customer"):
        communicator = await connect(slug)
        await communicator.send_json_to({"action": "check", "code": "SELECT 1;"})
        error = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()

        assert error == {"type": "error", "message": f"There is no exercise called {slug!r}."}


async def test_with_reader_code_off_nothing_is_checked(settings):
    settings.SNIPPET_READER_CODE = False
    await make_orders_exercise()
    communicator = await connect()

    await communicator.send_json_to({"action": "check", "code": ORDERS_SOLUTION})
    error = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()

    assert error == {
        "type": "error",
        "message": "Running your own code is turned off on this server.",
    }


async def test_cancelling_a_check_ends_its_run_and_the_check(db):
    await database_sync_to_async(make_exercise)(
        "slow",
        runtime="python",
        language="python",
        solution="print(1)",
        checks=[{"kind": "output"}],
    )
    communicator = await connect("slow")

    await communicator.send_json_to({"action": "check", "code": "import time\ntime.sleep(30)"})
    assert (await communicator.receive_json_from(timeout=10))["type"] == "start"
    await communicator.send_json_to({"action": "cancel"})
    events = await events_until(communicator, ("verdict",))
    await communicator.disconnect()

    assert [(e["type"], e.get("reason")) for e in events] == [
        ("exit", "cancelled"),
        ("verdict", None),
    ]
    assert events[-1] == {"type": "verdict", "passed": False, "message": "Stopped."}


@pytest.mark.usefixtures("worker")
async def test_a_check_on_run_workers_carries_each_data_set_and_probe():
    await database_sync_to_async(make_exercise)(
        "on-workers",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution="DELETE FROM orders WHERE amount < 6;",
        variants=ORDERS_VARIANTS,
        checks=[{"kind": "rows", "target": "SELECT customer, amount FROM orders"}],
    )
    communicator = await connect("on-workers")

    await communicator.send_json_to(
        {"action": "check", "code": "DELETE FROM orders WHERE amount < 6;"}
    )
    passing = await events_until(communicator, ("verdict", "error"))
    await communicator.send_json_to({"action": "check", "code": "DELETE FROM orders WHERE id = 2;"})
    failing = await events_until(communicator, ("verdict", "error"))
    await communicator.disconnect()

    assert passing[-1] == {"type": "verdict", "passed": True}
    (check,) = [e for e in failing if e["type"] == "check"]
    assert check["detail"].startswith("On the hidden data set “NULLs and ties”: ")


async def test_stopping_a_check_after_its_run_ended_sends_only_the_verdict():
    await database_sync_to_async(make_exercise)(
        "slow-hidden-data",
        runtime="python",
        language="python",
        solution="print(1)",
        variants=[("slow", "import time\ntime.sleep(30)")],
        checks=[{"kind": "output"}],
    )
    communicator = await connect("slow-hidden-data")

    await communicator.send_json_to({"action": "check", "code": "print(1)"})
    run = await events_until(communicator, ("exit",))
    await communicator.send_json_to({"action": "cancel"})
    stopped = await communicator.receive_json_from(timeout=10)
    await communicator.disconnect()

    assert run[-1]["reason"] == "ok"
    assert stopped == {"type": "verdict", "passed": False, "message": "Stopped."}
