"""Invoke entry point: `inv schemas.refresh --host dev`, `inv schemas.list`.

To use schemasync from another repository, install it and put these two lines in its tasks.py.
"""

from schemasync.tasks import ns  # noqa: F401
