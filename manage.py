#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    # An operator's mistake (a bad setting, a database that is down) deserves one line
    # that says what to fix, not a traceback through Django's internals.
    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        sys.exit(f"Configuration error: {error}")
    except OperationalError as error:
        from glossary.outages import database_failure

        sys.exit(database_failure(error))


if __name__ == "__main__":
    main()
