"""UNICORE job description as a dataclass (``helpers.JobDescription``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pyunicore_fast.helpers import _api_object
from pyunicore_fast.helpers.jobs import data
from pyunicore_fast.helpers.jobs import resources as _resources


@dataclasses.dataclass
class Description(_api_object.ApiRequestObject):
    """A job for ``Client.new_job(description.to_dict())``.

    Field names follow PyUNICORE's helpers; ``to_dict()`` produces the server's keys. Note
    ``UserPrecommandIgnoreNonZeroExitcode`` (lower-case c) is PyUNICORE's spelling, kept so the
    produced dicts are identical.  ``job_type``: ``normal``/``batch``, ``on_login_node``,
    ``raw`` (needs ``bss_file``) or ``allocate``.
    """

    executable: str | None = None
    project: str | None = None
    resources: _resources.Resources | None = dataclasses.field(default_factory=_resources.Resources)
    application_name: str | None = None
    application_version: str | None = None
    arguments: list[str] | None = None
    environment: dict[str, str] | None = None
    parameters: dict[str, str] | None = None
    stdout: str | None = "stdout"
    stderr: str | None = "stderr"
    stdin: str | None = None
    ignore_non_zero_exit_code: bool | None = False
    user_precommand: str | None = None
    run_user_precommand_on_login_node: bool | None = True
    user_precommand_ignore_non_zero_exitcode: bool | None = False
    user_postcommand: str | None = None
    run_user_postcommand_on_login_node: bool | None = True
    user_postcommand_ignore_non_zero_exit_code: bool | None = False
    imports: list[data.Import] | None = None
    exports: list[data.Export] | None = None
    have_client_stage_in: bool | None = False
    job_type: str | None = "normal"
    login_node: str | None = None
    bss_file: str | None = None
    tags: list[str] | None = None
    notification: str | None = None
    user_email: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        # PyUNICORE sets this when imports exist (although they are server-side staging);
        # kept for identical output.
        if self.imports:
            self.have_client_stage_in = True
        if self.job_type == "raw" and self.bss_file is None:
            raise ValueError("If job type is 'raw', BSS file has to be specified")

    def _to_dict(self) -> dict[str, Any]:
        return {
            "ApplicationName": self.application_name,
            "ApplicationVersion": self.application_version,
            "Executable": self.executable,
            "Arguments": self.arguments,
            "Environment": self.environment,
            "Parameters": self.parameters,
            "Stdout": self.stdout,
            "Stderr": self.stderr,
            "Stdin": self.stdin,
            "IgnoreNonZeroExitCode": self.ignore_non_zero_exit_code,
            "User precommand": self.user_precommand,
            "RunUserPrecommandOnLoginNode": self.run_user_precommand_on_login_node,
            "UserPrecommandIgnoreNonZeroExitcode": self.user_precommand_ignore_non_zero_exitcode,
            "User postcommand": self.user_postcommand,
            "RunUserPostcommandOnLoginNode": self.run_user_postcommand_on_login_node,
            "UserPostcommandIgnoreNonZeroExitcode": self.user_postcommand_ignore_non_zero_exit_code,
            "Project": self.project,
            "Resources": self.resources,
            "Imports": self.imports,
            "Exports": self.exports,
            "haveClientStageIn": self.have_client_stage_in,
            "Job type": self.job_type,
            "Login node": self.login_node,
            "BSS file": self.bss_file,
            "Tags": self.tags,
            "Notification": self.notification,
            "User email": self.user_email,
            "Name": self.name,
        }
