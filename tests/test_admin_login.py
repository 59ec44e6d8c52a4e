"""The admin login is throttled per address and per username, with a clear message."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

PASSWORD = "the-Right-password-42"


@pytest.fixture
def curator(django_user_model):
    return django_user_model.objects.create_user(
        "curator", password=PASSWORD, is_staff=True, is_superuser=True
    )


def sign_in(client, username, password):
    """Submit the admin login form; True if it signed the user in."""
    response = client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=client.address,
    )
    client.last_response = response
    return response.status_code == 302 and "_auth_user_id" in client.session


def client_from(address):
    client = Client()
    client.address = address
    return client


def test_twelve_wrong_passwords_then_the_right_one_does_not_sign_in(curator, caplog):
    attacker = client_from("203.0.113.7")

    with caplog.at_level(logging.WARNING, logger="axes"):
        for n in range(12):
            assert not sign_in(attacker, "curator", f"guess-{n}")
        signed_in = sign_in(attacker, "curator", PASSWORD)

    assert not signed_in
    assert attacker.last_response.status_code == 429
    assert "Too many sign-in attempts" in attacker.last_response.text
    assert "Try again in 15 minutes" in attacker.last_response.text
    assert any("Locking out" in record.getMessage() for record in caplog.records)
    assert any("203.0.113.7" in record.getMessage() for record in caplog.records)


def test_the_username_is_locked_whatever_address_guesses_it(curator, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert not sign_in(client_from(f"198.51.100.{n}"), "curator", f"guess-{n}")

    assert not sign_in(client_from("192.0.2.1"), "curator", PASSWORD)


def test_an_address_is_locked_whatever_usernames_it_tries(curator, settings):
    attacker = client_from("203.0.113.9")
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert not sign_in(attacker, f"someone-{n}", "guess")

    assert not sign_in(attacker, "curator", PASSWORD)


def test_a_few_typos_do_not_lock_the_curator_out(curator, settings):
    curator_client = client_from("192.0.2.10")
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert not sign_in(curator_client, "curator", f"typo-{n}")

    assert sign_in(curator_client, "curator", PASSWORD)


def test_another_curator_signs_in_while_one_address_is_locked_out(curator, django_user_model):
    django_user_model.objects.create_user("editor", password=PASSWORD, is_staff=True)
    attacker = client_from("203.0.113.7")
    for n in range(12):
        sign_in(attacker, "curator", f"guess-{n}")

    assert sign_in(client_from("192.0.2.20"), "editor", PASSWORD)
