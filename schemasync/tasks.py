"""`from schemasync.tasks import ns` in a repository's tasks.py: the Invoke collection, which lives
in the front ends (schemasync.frontends.tasks)."""

from schemasync.frontends.tasks import ns, schemas

__all__ = ["ns", "schemas"]
