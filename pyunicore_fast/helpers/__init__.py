"""Higher-level helpers (``pyunicore.helpers``): authentication, connecting, and dataclasses
for job and workflow descriptions.

Both the 2.0.2 layout (``helpers.jobs``, ``helpers.workflows``) and the names the PyUNICORE
README uses (``helpers.UserAuthentication``, ``helpers.connect_to_site``,
``helpers.JobDescription``, ...) are available.
"""

from pyunicore_fast.helpers import connection, jobs, workflows
from pyunicore_fast.helpers.authentication import Authentication, TokenAuthentication, UserAuthentication
from pyunicore_fast.helpers.connection import (
    AuthenticationFailedException,
    connect_to_registry,
    connect_to_site,
    connect_to_site_from_registry,
)
from pyunicore_fast.helpers.jobs import Credentials, Export, Import, Resources
from pyunicore_fast.helpers.jobs import Description as JobDescription
from pyunicore_fast.helpers.jobs.status import JobStatus
from pyunicore_fast.helpers.transport import create_transport
from pyunicore_fast.helpers.workflows import Description as WorkflowDescription

__all__ = [
    "Authentication",
    "AuthenticationFailedException",
    "Credentials",
    "Export",
    "Import",
    "JobDescription",
    "JobStatus",
    "Resources",
    "TokenAuthentication",
    "UserAuthentication",
    "WorkflowDescription",
    "connect_to_registry",
    "connect_to_site",
    "connect_to_site_from_registry",
    "connection",
    "create_transport",
    "jobs",
    "workflows",
]
