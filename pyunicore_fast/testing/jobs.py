"""Jobs that really run: local processes in per-job working directories.

Life cycle as in the REST doc §7.4::

    READY ─► STAGINGIN (Imports) ─► READY (haveClientStageIn: wait for action:start)
          ─► QUEUED ─► RUNNING ─► STAGINGOUT (Exports) ─► SUCCESSFUL | FAILED

An empty description finishes SUCCESSFUL at once but still gets a working directory (a
common trick for a scratch storage); abort turns any non-final state into FAILED; restart
re-runs a finished job in the same directory.  The executable line, the arguments and the
pre/post commands are written into one bash script exactly as the TSI would (arguments are
*not* quoted: shell syntax in them works, as on a real site).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyunicore_fast.testing import staging
from pyunicore_fast.testing.auth import Identity
from pyunicore_fast.testing.common import (
    as_bool,
    filter_fields,
    has_tags,
    iso_time,
    link,
    owned_entries,
    page,
    parse_tags,
    parse_time,
)
from pyunicore_fast.testing.routing import HTTPError, Request, Response, Router, relay

if TYPE_CHECKING:
    from pyunicore_fast.testing.context import SiteContext

log = logging.getLogger(__name__)

FINAL = ("SUCCESSFUL", "FAILED")

#: The site's application database (IDB): name → version → definition.
APPLICATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "Date": {"1.0": {"Executable": "date", "Description": "Prints the current date",
                     "Options": {}}},
    "Bash shell": {"1.0": {"Executable": "/bin/bash ${SOURCE}",
                           "Description": "Runs a bash script",
                           "Options": {"SOURCE": {"Description": "script file", "Type": "string"}}}},
}

#: Resources the target system offers (``resources`` of factories and sites).
RESOURCES: dict[str, Any] = {
    "Runtime": "1-86400", "Nodes": "1-16", "CPUsPerNode": "1-64", "TotalCPUs": "1-1024",
    "Memory": "1-1000000000000", "GPUsPerNode": "0-4", "Exclusive": ["true", "false"],
}


class _Aborted(Exception):
    pass


@dataclass
class Job:
    """Server-side state of one job."""

    id: str
    owner: str
    identity: Identity
    description: dict[str, Any]
    workdir: str
    control_dir: str
    job_type: str
    name: str
    queue: str
    tags: list[str]
    site_id: str
    status: str = "READY"
    status_message: str = ""
    exit_code: str | None = None
    log: list[str] = field(default_factory=list)
    bss_id: str = "N/A"
    submission_time: float = field(default_factory=time.time)
    termination_time: float = 0.0
    acl: list[str] = field(default_factory=list)
    allocation_id: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    consumed: dict[str, str] = field(default_factory=dict)
    start_event: threading.Event = field(default_factory=threading.Event)
    abort_event: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: called with (job) when the job reaches a final state (workflow engine hook).
    on_final: Callable[[Job], None] | None = None
    #: ``wf:`` export handler supplied by the workflow engine.
    wf_export: Callable[[Job, str, str], None] | None = None
    runs: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def add_log(self, message: str) -> None:
        with self.lock:
            self.log.append(f"{iso_time()}: {message}")


class JobManager:
    """Submission, execution and bookkeeping of all jobs of the site."""

    def __init__(self, ctx: SiteContext):
        self.ctx = ctx
        self._jobs: dict[str, Job] = {}
        self._bss_counter = 1000
        self._sites: dict[str, dict[str, Any]] = {}  # target system resources per user

    # -- lookups ------------------------------------------------------------------------
    def url(self, job: Job | str) -> str:
        jid = job if isinstance(job, str) else job.id
        return f"{self.ctx.core_url}/jobs/{jid}"

    def get(self, jid: str, identity: Identity) -> Job:
        with self.ctx.lock:
            job = self._jobs.get(jid)
        if job is None:
            raise HTTPError(404)
        if identity is None or identity.anonymous or not (
                job.owner == identity.user or identity.dn in job.acl):
            raise HTTPError(403)
        return job

    def get_internal(self, jid: str) -> Job | None:
        with self.ctx.lock:
            return self._jobs.get(jid)

    def list_for(self, identity: Identity, tags: list[str], site_id: str | None = None) -> list[Job]:
        return [j for j in owned_entries(self.ctx.lock, self._jobs, identity)
                if has_tags(j.tags, tags) and (site_id is None or j.site_id == site_id)]

    def _next_bss_id(self) -> str:
        with self.ctx.lock:
            self._bss_counter += 1
            return str(self._bss_counter)

    # -- target systems ("sites") --------------------------------------------------------
    def site_id_for(self, identity: Identity, create: bool = True) -> str | None:
        with self.ctx.lock:
            for sid, site in self._sites.items():
                if site["owner"] == identity.user:
                    return sid
            if not create:
                return None
            return self.create_site(identity)

    def create_site(self, identity: Identity, termination_time: float | None = None) -> str:
        sid = str(uuid.uuid4())
        with self.ctx.lock:
            self._sites[sid] = {"owner": identity.user, "created": time.time(),
                                "terminationTime": termination_time}
        return sid

    def sites_for(self, identity: Identity) -> list[str]:
        with self.ctx.lock:
            return [sid for sid, s in self._sites.items() if s["owner"] == identity.user]

    def site(self, sid: str, identity: Identity) -> dict[str, Any]:
        with self.ctx.lock:
            site = self._sites.get(sid)
        if site is None:
            raise HTTPError(404)
        if site["owner"] != identity.user:
            raise HTTPError(403)
        return site

    def delete_site(self, sid: str) -> None:
        with self.ctx.lock:
            self._sites.pop(sid, None)

    # -- submission ---------------------------------------------------------------------
    def submit(self, identity: Identity, description: dict[str, Any], *,
               allocation: Job | None = None, site_id: str | None = None,
               wf_export: Callable[[Job, str, str], None] | None = None,
               on_final: Callable[[Job], None] | None = None) -> Job:
        """Validate, create the working directory and start the job's thread."""
        if not self.ctx.flags.get("job_submission_enabled", True):
            raise HTTPError(503, self.ctx.flags.get("job_submission_message")
                            or "Job submission is disabled on this site")
        if identity is None or identity.anonymous:
            raise HTTPError(403)
        account = identity.account
        assert account is not None
        if not account.has_login:
            raise HTTPError(401, f"Submission denied: no Unix login available for '{account.dn}'")
        if not isinstance(description, dict):
            raise HTTPError(500, "Could not parse job description: expected a JSON object")

        job_type = _job_type(description)
        if allocation is not None:
            job_type = "ON_LOGIN_NODE"
        resources = description.get("Resources") or {}
        if not isinstance(resources, dict):
            raise HTTPError(500, "Could not parse job description: 'Resources' must be a map")
        _validate_resources(resources, self.ctx.queues)
        if job_type == "RAW" and not description.get("BSS file"):
            raise HTTPError(500, "Job type 'raw' requires a 'BSS file'")
        app = description.get("ApplicationName")
        if app and app not in APPLICATIONS:
            raise HTTPError(500, f"Application '{app}' is not available on this site")
        queue = "N/A" if job_type == "ON_LOGIN_NODE" else str(
            resources.get("Queue") or self.ctx.queues[0])

        jid = str(uuid.uuid4())
        workdir = os.path.join(self.ctx.root_dir, "jobs", jid)
        control = os.path.join(self.ctx.root_dir, ".control", jid)
        os.makedirs(workdir)
        os.makedirs(control)
        site_id = site_id or self.site_id_for(identity)
        assert site_id is not None
        snapshot = Identity(account, role=identity.role, auth_method=identity.auth_method,
                            group=identity.group,
                            supplementary_groups=list(identity.supplementary_groups),
                            preferences=dict(identity.preferences))
        job = Job(id=jid, owner=account.name, identity=snapshot, description=description,
                  workdir=workdir, control_dir=control, job_type=job_type,
                  name=str(description.get("Name") or "N/A"), queue=queue,
                  tags=parse_tags(description.get("Tags") or description.get("tags")),
                  site_id=site_id, wf_export=wf_export, on_final=on_final)
        job.termination_time = job.submission_time + 30 * 86400
        if allocation is not None:
            job.allocation_id = allocation.id
            job.extra_env["SLURM_JOB_ID"] = allocation.bss_id
        job.add_log(f"Created with ID {jid}")
        with self.ctx.lock:
            self._jobs[jid] = job
        self.ctx.storages.create_job_storage(jid, account.name, workdir)
        job.thread = threading.Thread(target=self._run, args=(job, False), daemon=True,
                                      name=f"job-{jid[:8]}")
        job.thread.start()
        return job

    # -- actions ------------------------------------------------------------------------
    def start(self, job: Job) -> None:
        job.start_event.set()

    def abort(self, job: Job) -> None:
        with job.lock:
            if job.final:
                return
            job.abort_event.set()
            job.start_event.set()
            proc = job.process
        if proc is not None:
            _kill(proc)

    def restart(self, job: Job) -> None:
        with job.lock:
            if not job.final:
                return
            if job.thread is not None and job.thread.is_alive():
                job.thread.join(timeout=5)
            job.abort_event.clear()
            job.exit_code = None
            job.status_message = ""
            job.status = "QUEUED"
            job.add_log("Job restarted by user")
            job.thread = threading.Thread(target=self._run, args=(job, True), daemon=True,
                                          name=f"job-{job.id[:8]}")
            job.thread.start()

    def delete(self, job: Job) -> None:
        self.abort(job)
        if job.thread is not None:
            job.thread.join(timeout=10)
        with self.ctx.lock:
            self._jobs.pop(job.id, None)
        self.ctx.storages.remove(f"{job.id}-uspace")
        shutil.rmtree(job.workdir, ignore_errors=True)
        shutil.rmtree(job.control_dir, ignore_errors=True)

    def shutdown(self) -> None:
        with self.ctx.lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.abort(job)
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=5)

    # -- execution ----------------------------------------------------------------------
    def _set_status(self, job: Job, status: str, message: str | None = None) -> None:
        with job.lock:
            job.status = status
            if message is not None:
                job.status_message = message
        log.debug("job %s -> %s", job.id, status)
        self._notify(job)

    def _check_abort(self, job: Job) -> None:
        if job.abort_event.is_set():
            raise _Aborted()

    def _sleep(self, job: Job, seconds: float) -> None:
        if seconds > 0 and job.abort_event.wait(seconds):
            raise _Aborted()

    def _run(self, job: Job, restart: bool) -> None:
        d = job.description
        t0 = time.time()
        try:
            if not restart:
                imports = _as_list(d.get("Imports"), "To")
                if imports:
                    self._set_status(job, "STAGINGIN")
                    self._stage_in(job, imports)
                    job.consumed["stage-in"] = f"{time.time() - t0:.0f}"
                if as_bool(d.get("haveClientStageIn")):
                    self._set_status(job, "READY")
                    job.add_log("Waiting for client to start the job")
                    job.start_event.wait()
                self._check_abort(job)
            if job.job_type == "ALLOCATE":
                self._run_allocation(job)
            elif _has_executable(d):
                self._execute(job)
            else:
                job.add_log("No executable: nothing to run")
            exports = _as_list(d.get("Exports"), "From")
            if exports:
                self._set_status(job, "STAGINGOUT")
                self._stage_out(job, exports)
            self._finish(job)
        except _Aborted:
            job.add_log("Job was aborted")
            self._final(job, "FAILED", "Job was aborted by the user")
        except staging.StagingError as exc:
            job.add_log(f"Data staging failed: {exc}")
            self._final(job, "FAILED", f"Data staging failed: {exc}")
        except Exception as exc:
            log.exception("job %s failed", job.id)
            job.add_log(f"Job failed: {exc}")
            self._final(job, "FAILED", str(exc))
        finally:
            job.consumed["total"] = f"{time.time() - t0:.0f}"

    def _finish(self, job: Job) -> None:
        d = job.description
        if job.job_type == "ALLOCATE":
            self._final(job, "SUCCESSFUL", "")
            return
        pre_failed = os.path.exists(os.path.join(job.control_dir, "pre_failed"))
        post_failed = os.path.exists(os.path.join(job.control_dir, "post_failed"))
        if pre_failed and not as_bool(d.get("UserPrecommandIgnoreNonZeroExitCode")):
            self._final(job, "FAILED", "User precommand failed")
        elif post_failed and not as_bool(d.get("UserPostcommandIgnoreNonZeroExitCode")):
            self._final(job, "FAILED", "User postcommand failed")
        elif job.exit_code not in (None, "0") and not as_bool(d.get("IgnoreNonZeroExitCode")):
            self._final(job, "FAILED", f"User application exited with non-zero exit code: {job.exit_code}")
        else:
            self._final(job, "SUCCESSFUL", "")

    def _final(self, job: Job, status: str, message: str) -> None:
        with job.lock:
            job.process = None
            job.add_log(f"Job finished: {status}" + (f" ({message})" if message else ""))
        self._set_status(job, status, message)
        if job.on_final is not None:
            try:
                job.on_final(job)
            except Exception:
                log.exception("on_final hook of job %s failed", job.id)

    def _stage_in(self, job: Job, imports: list[dict[str, Any]]) -> None:
        for item in imports:
            self._check_abort(job)
            to = str(item.get("To") or item.get("file") or "")
            source = item.get("From") or item.get("source")
            fail_on_error = as_bool(item.get("FailOnError"), True)
            mode = str(item.get("Mode") or "overwrite").lower()
            try:
                if not to:
                    raise staging.StagingError("Import without 'To'")
                dest = os.path.join(job.workdir, to.lstrip("/"))
                if "Data" in item and (not source or str(source).startswith("inline:")):
                    staging.write_inline(dest, item["Data"], mode)
                else:
                    sources = source if isinstance(source, list) else [source]
                    for src in sources:
                        if not src:
                            raise staging.StagingError(f"Import to '{to}' has no source")
                        staging.fetch(self.ctx, job.identity, str(src), dest,
                                      credentials=item.get("Credentials"), mode=mode)
                perms = item.get("Permissions")
                if perms and os.path.exists(dest):
                    from pyunicore_fast.testing.files import parse_permissions

                    os.chmod(dest, parse_permissions(str(perms), os.stat(dest).st_mode))
                job.add_log(f"Imported '{to}'")
            except (staging.StagingError, OSError, ValueError) as exc:
                if fail_on_error:
                    raise staging.StagingError(f"import to '{to}': {exc}") from exc
                job.add_log(f"Ignoring failed import to '{to}': {exc}")

    def _stage_out(self, job: Job, exports: list[dict[str, Any]]) -> None:
        for item in exports:
            self._check_abort(job)
            src = str(item.get("From") or item.get("file") or "")
            target = str(item.get("To") or item.get("target") or "")
            fail_on_error = as_bool(item.get("FailOnError"), True)
            try:
                if not src or not target:
                    raise staging.StagingError("Export needs 'From' and 'To'")
                if target.startswith("wf:"):
                    if job.wf_export is None:
                        raise staging.StagingError("'wf:' targets are only valid in workflows")
                    job.wf_export(job, src, target)
                else:
                    staging.push(self.ctx, job.identity, os.path.join(job.workdir, src.lstrip("/")),
                                 target, credentials=item.get("Credentials"))
                job.add_log(f"Exported '{src}' to '{target}'")
            except (staging.StagingError, OSError, ValueError) as exc:
                if fail_on_error:
                    raise staging.StagingError(f"export of '{src}': {exc}") from exc
                job.add_log(f"Ignoring failed export of '{src}': {exc}")

    def _queue(self, job: Job) -> None:
        if job.job_type == "ON_LOGIN_NODE":
            return
        self._set_status(job, "QUEUED")
        with job.lock:
            job.bss_id = self._next_bss_id()
        job.add_log(f"Submitted to batch system, id {job.bss_id}")
        self._sleep(job, self.ctx.queue_delay)

    def _run_allocation(self, job: Job) -> None:
        self._queue(job)
        with job.lock:
            job.bss_id = f"INTERACTIVE_{socket.gethostname()}_{job.id[:8]}"
        self._set_status(job, "RUNNING")
        self._sleep(job, self.ctx.allocation_delay)
        with job.lock:
            job.bss_id = self._next_bss_id()
        job.add_log(f"Allocation granted, id {job.bss_id}")
        runtime = _runtime_seconds(job.description.get("Resources") or {})
        if job.abort_event.wait(runtime if runtime else None):
            raise _Aborted()

    def _execute(self, job: Job) -> None:
        d = job.description
        self._queue(job)
        self._check_abort(job)
        script = self._write_script(job)
        stdout = os.path.join(job.workdir, str(d.get("Stdout") or "stdout"))
        stderr = os.path.join(job.workdir, str(d.get("Stderr") or "stderr"))
        env = self._environment(job)
        exit_file = os.path.join(job.control_dir, "exit_code")
        for marker in ("exit_code", "pre_failed", "post_failed"):
            try:
                os.unlink(os.path.join(job.control_dir, marker))
            except OSError:
                pass
        t0 = time.time()
        for path in (stdout, stderr):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            with job.lock:
                self._check_abort(job)
                proc = subprocess.Popen(["/bin/bash", script], cwd=job.workdir, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, env=env, start_new_session=True)
                job.process = proc
                job.runs += 1
                if job.job_type == "ON_LOGIN_NODE":
                    job.bss_id = f"INTERACTIVE_{socket.gethostname()}_{proc.pid}"
            self._set_status(job, "RUNNING")
            job.add_log(f"Started process {proc.pid}")
            runtime = _runtime_seconds(d.get("Resources") or {})
            timed_out = False
            while True:
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    if job.abort_event.is_set():
                        _kill(proc)
                        raise _Aborted() from None
                    if runtime and time.time() - t0 > runtime:
                        _kill(proc)
                        timed_out = True
        job.consumed["main"] = f"{time.time() - t0:.0f}"
        with job.lock:
            job.process = None
        if job.abort_event.is_set():
            raise _Aborted()
        try:
            with open(exit_file, encoding="ascii") as f:
                job.exit_code = f.read().strip() or str(proc.returncode)
        except OSError:
            job.exit_code = str(proc.returncode if proc.returncode >= 0 else 128 - proc.returncode)
        if timed_out:
            raise RuntimeError("Job exceeded its requested runtime and was killed")
        job.add_log(f"Process finished with exit code {job.exit_code}")

    def _write_script(self, job: Job) -> str:
        d = job.description
        lines = ["#!/bin/bash", f"umask {d.get('Umask') or d.get('umask') or '077'}"]
        ctl = shlex.quote(job.control_dir)
        pre = _command_text(d.get("User precommand"))
        if pre:
            lines += ["(", pre, ")", "_rc=$?",
                      f"if [ $_rc -ne 0 ]; then echo $_rc > {ctl}/pre_failed; "
                      + ("" if as_bool(d.get("UserPrecommandIgnoreNonZeroExitCode")) else "exit 1; ")
                      + "fi"]
        if job.job_type == "RAW":
            command = "/bin/bash " + shlex.quote(str(d["BSS file"]))
        else:
            executable = d.get("Executable")
            app = d.get("ApplicationName")
            if app:
                versions = APPLICATIONS[str(app)]
                version = str(d.get("ApplicationVersion") or max(versions))
                executable = versions.get(version, next(iter(versions.values())))["Executable"]
            args = [_argument(a) for a in (d.get("Arguments") or [])]
            command = " ".join([str(executable)] + args)
        if d.get("Stdin"):
            command += " < " + shlex.quote(str(d["Stdin"]))
        lines += [command, f"echo $? > {ctl}/exit_code"]
        post = _command_text(d.get("User postcommand"))
        if post:
            lines += ["(", post, ")", "_rc=$?",
                      f"if [ $_rc -ne 0 ]; then echo $_rc > {ctl}/post_failed; fi"]
        lines.append(f"exit $(cat {ctl}/exit_code)")
        path = os.path.join(job.control_dir, "script.sh")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _environment(self, job: Job) -> dict[str, str]:
        d = job.description
        account = job.identity.account
        assert account is not None
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
        home = os.path.join(self.ctx.root_dir, "home", account.uid)
        os.makedirs(home, exist_ok=True)
        env.update({"HOME": home, "USER": account.uid, "LOGNAME": account.uid,
                    "UC_WORKING_DIRECTORY": job.workdir + "/", "UNICORE_JOB_ID": job.id})
        if job.identity.group:
            env["UC_GROUP"] = job.identity.group
        environment = d.get("Environment") or {}
        if isinstance(environment, dict):
            env.update({str(k): str(v) for k, v in environment.items()})
        else:
            for item in environment:
                k, _, v = str(item).partition("=")
                env[k.strip()] = v
        params = d.get("Parameters") or {}
        if isinstance(params, dict):
            env.update({str(k): str(v) for k, v in params.items()})
        env.update(job.extra_env)
        return env

    def _notify(self, job: Job) -> None:
        """POST status changes to the job's ``Notification`` URL (best effort)."""
        d = job.description
        url = d.get("Notification")
        settings = d.get("NotificationSettings") or {}
        if isinstance(settings, dict) and settings.get("URL"):
            url = settings["URL"]
            wanted = settings.get("status") or ["RUNNING", "SUCCESSFUL", "FAILED"]
        else:
            wanted = ["RUNNING", "SUCCESSFUL", "FAILED"]
        if not url or job.status not in wanted:
            return
        body: dict[str, Any] = {"href": self.url(job), "status": job.status,
                                "statusMessage": job.status_message}
        if job.exit_code is not None:
            body["exitCode"] = job.exit_code
        token = self.ctx.authenticator.issue_token(job.identity, internal=True)

        def send() -> None:
            try:
                import requests

                from pyunicore_fast.testing.context import verify_for

                requests.post(str(url), json=body, headers={"Authorization": f"Bearer {token}"},
                              verify=verify_for(str(url)), timeout=10)
            except Exception as exc:  # noqa: BLE001 - notification failures are only logged
                log.info("notification to %s failed: %s", url, exc)

        threading.Thread(target=send, daemon=True).start()

    # -- rendering ----------------------------------------------------------------------
    def properties(self, job: Job) -> dict[str, Any]:
        url = self.url(job)
        with job.lock:
            props: dict[str, Any] = {
                "status": job.status,
                "statusMessage": job.status_message,
                "log": list(job.log),
                "submissionTime": iso_time(job.submission_time),
                "terminationTime": iso_time(job.termination_time),
                "queue": job.queue,
                "batchSystemID": job.bss_id,
                "name": job.name,
                "jobType": job.job_type,
                "consumedTime": {k: job.consumed.get(k, "N/A") for k in
                                 ("total", "stage-in", "preCommand", "queued", "main",
                                  "postCommand", "stage-out")},
                "submissionPreferences": {k: [v] for k, v in job.identity.preferences.items()},
                "owner": job.identity.dn,
                "acl": list(job.acl),
                "tags": list(job.tags),
            }
            if job.exit_code is not None:
                props["exitCode"] = job.exit_code
        props["_links"] = {
            "self": link(url),
            "details": link(url + "/details"),
            "submitted": link(url + "/submitted"),
            "action:start": link(url + "/actions/start"),
            "action:abort": link(url + "/actions/abort"),
            "action:restart": link(url + "/actions/restart"),
            "forwarding": link(url + "/forward-port"),
            "workingDirectory": link(self.ctx.storages.url(f"{job.id}-uspace")),
            "parentTSS": link(f"{self.ctx.core_url}/sites/{job.site_id}"),
        }
        return props


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _job_type(d: dict[str, Any]) -> str:
    raw = str(d.get("Job type") or d.get("JobType") or "batch").strip().lower()
    mapping = {"batch": "BATCH", "normal": "BATCH", "on_login_node": "ON_LOGIN_NODE",
               "interactive": "ON_LOGIN_NODE", "raw": "RAW", "allocate": "ALLOCATE"}
    if raw not in mapping:
        raise HTTPError(500, f"Could not parse job description: unknown job type '{raw}'")
    return mapping[raw]


def _has_executable(d: dict[str, Any]) -> bool:
    return bool(d.get("Executable") or d.get("ApplicationName") or
                (_job_type(d) == "RAW" and d.get("BSS file")))


def _as_list(value: Any, key: str) -> list[dict[str, Any]]:
    """Imports/Exports: a list of maps, or a map keyed by target (imports) / source (exports)."""
    if not value:
        return []
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            item = dict(v) if isinstance(v, dict) else {"From" if key == "To" else "To": v}
            item.setdefault(key, k)
            out.append(item)
        return out
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise HTTPError(500, "Could not parse job description: Imports/Exports must be lists of maps")
    return value


def _argument(a: Any) -> str:
    if isinstance(a, dict):
        # parameter sweeps are not emulated: use the first value
        if a.get("Values"):
            return str(a["Values"][0])
        if "From" in a:
            return str(a["From"])
    return str(a)


def _command_text(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, list):
        return "\n".join(str(x) for x in value)
    return str(value)


def _parse_number(value: Any, what: str) -> float:
    text = str(value).strip()
    units = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "K": 1024, "M": 1024 ** 2,
             "G": 1024 ** 3, "T": 1024 ** 4}
    if text and text[-1] in units and what == "Memory":
        return float(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        raise HTTPError(500, f"Could not parse job description: invalid value '{value}' "
                             f"for resource '{what}'") from None


def _runtime_seconds(resources: dict[str, Any]) -> float:
    value = resources.get("Runtime")
    if value in (None, ""):
        return 0.0
    text = str(value).strip().lower()
    for suffix, factor in (("min", 60), ("h", 3600), ("d", 86400), ("s", 1)):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * factor
            except ValueError:
                break
    return _parse_number(text, "Runtime")


def _validate_resources(resources: dict[str, Any], queues: list[str]) -> None:
    """Reject what a real IDB would reject: unknown queues, unparsable or out-of-range values."""
    for name, value in resources.items():
        if name == "Queue":
            if str(value) not in queues:
                raise HTTPError(500, f"Could not parse job description: queue '{value}' is not "
                                     f"available, valid queues: {', '.join(queues)}")
        elif name == "Runtime":
            _runtime_seconds(resources)
        elif name in ("Nodes", "CPUs", "TotalCPUs", "CPUsPerNode", "GPUsPerNode", "Memory"):
            n = _parse_number(value, name)
            spec = RESOURCES.get("TotalCPUs" if name == "CPUs" else name)
            if isinstance(spec, str) and "-" in spec:
                lo, hi = (float(x) for x in spec.split("-"))
                if not lo <= n <= hi:
                    raise HTTPError(500, f"Could not parse job description: value {value} of "
                                         f"resource '{name}' is out of range {spec}")
        elif name == "Exclusive" and str(value).lower() not in ("true", "false"):
            raise HTTPError(500, f"Could not parse job description: invalid 'Exclusive' {value}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _submitted_view(d: Any) -> Any:
    """The description as ``/submitted`` shows it: inline data replaced by ``"n/a"``."""
    if isinstance(d, dict):
        return {k: ("n/a" if k == "Data" else _submitted_view(v)) for k, v in d.items()}
    if isinstance(d, list):
        return [_submitted_view(x) for x in d]
    return d


# ----------------------------------------------------------------------------------------
# REST routes
# ----------------------------------------------------------------------------------------
def register(router: Router, ctx: SiteContext) -> None:
    core = f"/{ctx.site_name}/rest/core"
    jm = ctx.jobs

    def list_jobs(req: Request) -> Response:
        ctx.require(req.identity)
        tags = parse_tags(unquote(req.query_value("tags") or ""))
        urls = [jm.url(j) for j in jm.list_for(req.identity, tags)]
        extra = {"tags": req.query_value("tags")} if req.query_value("tags") else None
        chosen, links = page(urls, f"{ctx.core_url}/jobs", req, extra_query=extra)
        return Response.json({"jobs": chosen, "_links": links})

    def submit(req: Request) -> Response:
        ctx.require(req.identity)
        description = req.json({})
        job = jm.submit(req.identity, description)
        return Response.created(jm.url(job))

    def get_job(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        return Response.json(filter_fields(jm.properties(job), req))

    def put_job(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        params = req.json({}) or {}
        result: dict[str, str] = {}
        for key, value in params.items():
            if key in ("tags", "Tags"):
                job.tags = parse_tags(value)
                result[key] = "OK"
            elif key == "acl":
                job.acl = [str(a) for a in value] if isinstance(value, list) else parse_tags(value)
                result[key] = "OK"
            elif key == "terminationTime":
                try:
                    job.termination_time = parse_time(str(value))
                    result[key] = "OK"
                except ValueError as exc:
                    result[key] = str(exc)
            else:
                result[key] = "Property not found or cannot be modified!"
        return Response.json(result)

    def submit_into_allocation(req: Request, jid: str) -> Response:
        alloc = jm.get(jid, req.identity)
        if alloc.job_type != "ALLOCATE":
            raise HTTPError(500, "Job is not an allocation")
        if alloc.status != "RUNNING":
            raise HTTPError(500, f"Allocation is not RUNNING (status {alloc.status})")
        if alloc.bss_id.startswith("INTERACTIVE_") or alloc.bss_id == "N/A":
            raise HTTPError(500, "Allocation is not yet ready")
        job = jm.submit(req.identity, req.json({}), allocation=alloc, site_id=alloc.site_id)
        return Response.created(jm.url(job))

    def delete_job(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        jm.delete(job)
        return Response.no_content()

    def action(req: Request, jid: str, name: str) -> Response:
        job = jm.get(jid, req.identity)
        req.drain()
        if name == "start":
            jm.start(job)
        elif name == "abort":
            jm.abort(job)
        elif name == "restart":
            jm.restart(job)
        else:
            raise HTTPError(404)
        return Response.no_content()

    def details(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        state = {"READY": "PENDING", "STAGINGIN": "PENDING", "QUEUED": "PENDING",
                 "RUNNING": "RUNNING", "STAGINGOUT": "COMPLETED", "SUCCESSFUL": "COMPLETED",
                 "FAILED": "FAILED"}.get(job.status, "UNKNOWN")
        info = {"JobId": job.bss_id, "JobName": job.name, "JobState": state,
                "Partition": job.queue, "NodeList": socket.gethostname(),
                "WorkDir": job.workdir, "UserId": job.identity.uid}
        if job.exit_code is not None:
            info["ExitCode"] = f"{job.exit_code}:0"
        return Response.json(filter_fields(info, req))

    def submitted(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        return Response.json(_submitted_view(job.description))

    def forward_port(req: Request, jid: str) -> Response:
        job = jm.get(jid, req.identity)
        if (req.header("Upgrade") or "").lower() != "unicore-socket-forwarding":
            return Response.json({"status": "Nothing to see here yet."})
        if job.bss_id == "N/A" or job.status not in ("RUNNING", "STAGINGOUT", "SUCCESSFUL"):
            raise HTTPError(500, "Cannot forward: application is not (yet?) running")
        port, sock_file = req.query_value("port"), req.query_value("file")
        host = req.query_value("host") or "127.0.0.1"
        try:
            if sock_file:
                backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                backend.connect(os.path.join(job.workdir, sock_file.lstrip("/")))
            elif port:
                backend = socket.create_connection((host, int(port)), timeout=10)
                backend.settimeout(None)
            else:
                raise HTTPError(500, "Cannot forward: need 'port' or 'file' parameter")
        except OSError as exc:
            raise HTTPError(500, f"Cannot connect to backend service: {exc}") from exc

        def upgrade(conn: socket.socket, pending: bytes) -> None:
            relay(conn, backend, pending)

        return Response(101, b"", {"Upgrade": "UNICORE-Socket-Forwarding"}, upgrade=upgrade)

    j = core + r"/jobs/(?P<jid>[^/]+)"
    router.add("GET", core + "/jobs/?", list_jobs)
    router.add("POST", core + "/jobs/?", submit)
    router.add("GET", j, get_job)
    router.add("PUT", j, put_job)
    router.add("POST", j, submit_into_allocation)
    router.add("DELETE", j, delete_job)
    router.add("POST", j + r"/actions/(?P<name>[^/]+)", action)
    router.add("GET", j + "/details", details)
    router.add("GET", j + "/submitted", submitted)
    router.add("GET", j + "/forward-port", forward_port)
