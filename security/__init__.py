"""Isolation between enterprises: database roles and row-level security, broker credentials.

Public surface (other packages use only these):

* ``roles``: role names (``reader_role``, ``enterprise_role``, ...), password files and
  their Grafana ``$__file{...}`` references;
* ``apply_row_security(conn)``: RLS on every per-enterprise relation (``db migrate``);
* ``ensure_roles(settings)``: roles, passwords, the role map and privileges
  (``db migrate``, after the registry sync);
* ``drop_roles(admin_conn, prefix)``: remove a role set (tests);
* ``parkcarbon.security.cli``: ``parkcarbon mqtt credentials``.
"""

from parkcarbon.security import roles
from parkcarbon.security.rls import apply_row_security
from parkcarbon.security.setup import RolesResult, drop_roles, ensure_roles

__all__ = ["RolesResult", "apply_row_security", "drop_roles", "ensure_roles", "roles"]
