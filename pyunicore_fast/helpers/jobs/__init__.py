"""Job description dataclasses (``pyunicore.helpers.jobs``)."""

from pyunicore_fast.helpers.jobs.data import Credentials, Export, Import
from pyunicore_fast.helpers.jobs.description import Description
from pyunicore_fast.helpers.jobs.resources import Resources
from pyunicore_fast.helpers.jobs.status import Status

__all__ = ["Credentials", "Description", "Export", "Import", "Resources", "Status"]
