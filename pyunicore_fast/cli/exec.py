"""Job commands: ``exec``, ``run``, ``list-jobs``, ``cancel-job``, ``job-status``
(PyUNICORE's ``pyunicore.cli.exec``, same options and output)."""

from __future__ import annotations

import json
from typing import Any

from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import UsageError


class JobExecutionBase(Base):
    """Base class for job execution commands."""

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("-s", "--sitename", required=False, type=str, help="Site name")
        p.add_argument("-S", "--server-url", required=False, type=str, help="Server URL to submit to")
        p.add_argument("-a", "--asynchronous", required=False, action="store_true",
                       help="Just submit, don't wait for finish")
        p.add_argument("-d", "--dry-run", required=False, action="store_true", help="Dry run, do not submit the job")
        p.add_argument("-T", "--tags", required=False, help="Tag the job with the given tag(s) (comma-separated)")

    def get_group(self) -> str:
        return "Job execution"

    def get_site_client(self) -> Any:
        """``--server-url`` wins; else the named (or first) site of the registry."""
        from pyunicore_fast.client import Client

        if self.args.server_url:
            return Client(self.transport(), site_url=self.args.server_url)
        registry = self.registry
        if registry is None:
            raise UsageError("Sitename resolution requires registry - please check your configuration!")
        try:
            return registry.site(self.args.sitename)
        except KeyError:
            if self.args.sitename:
                raise UsageError(f"Site '{self.args.sitename}' not found in registry.") from None
            raise UsageError("No site was found in registry.") from None

    def run_job(self, job_definition: dict[str, Any], submission_endpoint: Any) -> Any:
        job = submission_endpoint.new_job(job_definition)
        self.verbose(f"Submitted job: {job.resource_url}")
        if not self.args.asynchronous:
            self.verbose("Waiting for job to finish ...")
            job.poll()
        return job

    def fetch_output(self, job: Any) -> None:
        try:
            self.verbose(f"{job.status}, exit code {job.properties['exitCode']}")
        except KeyError:
            self.verbose(str(job.status))
        print("*** Command output\n")
        with job.working_dir.stat("stdout").raw() as f:
            print(str(f.read(), "UTF-8"))
        print("*** End of command output.")
        print("*** Error output\n")
        with job.working_dir.stat("stderr").raw() as f:
            print(str(f.read(), "UTF-8"))
        print("*** End of error output.")


class Exec(JobExecutionBase):
    """Execute a non batch command (i.e. on a login node)."""

    name = "exec"

    def add_command_args(self) -> None:
        super().add_command_args()
        self.parser.add_argument("commands", help="Command(s) to run", nargs="*")
        self.parser.add_argument("-L", "--login-node", required=False, type=str, help="Login node to use")
        self.parser.add_argument("-Q", "--keep", required=False, action="store_true", help="Don't remove finished job")

    def get_synopsis(self) -> str:
        return ("Runs a command through UNICORE. The command will not be run through a\n"
                "remote queue, but on the cluster login node. The command and\n"
                "its arguments are taken from the command line. The client will wait\n"
                "for the job to finish and print standard output and error to\n"
                "the console.")

    def get_description(self) -> str:
        return "run a command through UNICORE"

    def build_job(self) -> dict[str, Any]:
        jd: dict[str, Any] = {"Job type": "ON_LOGIN_NODE"}
        if self.args.login_node:
            jd["Login node"] = self.args.login_node
        if self.args.commands:
            jd["Executable"] = self.args.commands[0]
        if len(self.args.commands) > 1:
            jd["Arguments"] = self.args.commands[1:]
        if self.args.tags:
            jd["Tags"] = self.args.tags.split(",")
        self.verbose(json.dumps(jd, indent=2))
        return jd

    def run(self, args: list[str]) -> int:
        self.setup(args)
        jd = self.build_job()
        if self.args.dry_run:
            self.verbose("Dry run, not submitting anything.")
            return 0
        site_client = self.get_site_client()
        self.verbose(f"Submission endpoint: {site_client.resource_url}")
        job = self.run_job(jd, site_client)
        if self.args.asynchronous:
            print(job.resource_url)
            return 0
        self.fetch_output(job)
        if not self.args.keep:
            job.delete()
        return 0


class Run(JobExecutionBase):
    """Run a UNICORE job."""

    name = "run"

    def add_command_args(self) -> None:
        super().add_command_args()
        self.parser.add_argument("jobs", help="Job file(s) to run", nargs="*")

    def get_synopsis(self) -> str:
        return ("Runs job(s) through UNICORE. The job definition(s) are read from <jobs>.\n"
                "A job can be executed in two modes. In the default synchronous mode, the client\n"
                "will wait for the job to finish. In asynchonous mode, initiated\n"
                "by the 'a' option, the job will be submitted and started.")

    def get_description(self) -> str:
        return "runs job(s) through UNICORE"

    def build_job(self, jobfile: str) -> dict[str, Any]:
        try:
            with open(jobfile, encoding="utf-8") as f:
                jd = json.load(f)
        except OSError as exc:
            raise UsageError(f"job file {jobfile}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"job file {jobfile} is not valid JSON: {exc}") from None
        if self.args.tags:
            jd["Tags"] = self.args.tags.split(",")
        self.verbose(json.dumps(jd, indent=2))
        return jd

    def run(self, args: list[str]) -> int:
        self.setup(args)
        jobs = [(f, self.build_job(f)) for f in self.args.jobs]
        if self.args.dry_run:
            self.verbose("Dry run, not submitting anything.")
            return 0
        if not jobs:
            return 0
        site_client = self.get_site_client()
        self.verbose(f"Submission endpoint: {site_client.resource_url}")
        for jobfile, jd in jobs:
            self.verbose(f"Reading job from <{jobfile}>")
            job = self.run_job(jd, site_client)
            if self.args.asynchronous:
                print(job.resource_url)
            else:
                self.fetch_output(job)
        return 0


class ListJobs(Base):
    """List UNICORE jobs."""

    name = "list-jobs"
    _fmt = " {:>24s} | {:>10s} | {:s} "

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("-s", "--sitename", required=False, type=str, help="Site name")
        p.add_argument("-l", "--long", required=False, action="store_true", help="Detailed output")
        p.add_argument("-T", "--tags", required=False, help="Only jobs with the given tag(s) (comma-separated)")

    def get_synopsis(self) -> str:
        return ("Lists your jobs per site. The list can be limited to a single\n"
                "site specified using the '-s' option.")

    def get_description(self) -> str:
        return "list your jobs"

    def get_group(self) -> str:
        return "Job execution"

    def details(self, job: Any) -> None:
        print(self._fmt.format(str(job.properties.get("submissionTime", "")), str(job.status), job.resource_url))

    def print_header(self) -> None:
        print(self._fmt.format("Submitted", "Status", "URL"))
        print(" -------------------------|------------|----------------")

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.client import Client, load_properties

        self.setup(args)
        tags = self.args.tags.split(",") if self.args.tags is not None else []
        if not self.registry:
            raise UsageError("Registry required - please check your configuration!")
        sites = self.registry.site_urls
        if self.args.sitename:  # PyUNICORE ignores -s; limiting is what its help promises
            if self.args.sitename not in sites:
                raise UsageError(f"Site '{self.args.sitename}' not found in registry.")
            sites = {self.args.sitename: sites[self.args.sitename]}
        if self.args.long:
            self.print_header()
        transport = self.transport()
        for endpoint in sites.values():
            jobs = Client(transport, site_url=endpoint).get_jobs(tags=tags)
            if self.args.long:
                load_properties(jobs)
            for job in jobs:
                if self.args.long:
                    self.details(job)
                else:
                    print(job.resource_url)
        return 0


class CancelJob(Base):
    """Cancel a UNICORE job."""

    name = "cancel-job"

    def add_command_args(self) -> None:
        self.parser.add_argument("job_url", help="Job URL(s)", nargs="*")

    def get_synopsis(self) -> str:
        return "Cancels UNICORE job(s)."

    def get_description(self) -> str:
        return "cancel job(s)"

    def get_group(self) -> str:
        return "Job execution"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.client import Job

        self.setup(args)
        transport = self.transport()
        for endpoint in self.args.job_url:
            self.verbose(f"Cancelling: {endpoint}")
            Job(transport, job_url=endpoint).abort()
        return 0


class GetJobStatus(Base):
    """Get the status of a UNICORE job, or wait for the job to reach a certain state."""

    name = "job-status"

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("job_url", help="Job URL(s)", nargs="*")
        p.add_argument("-w", "--wait-for", required=False,
                       help="Wait for the given job status (STAGINGIN, QUEUED, RUNNING, STAGINGOUT, SUCCESSFUL)")
        p.add_argument("-t", "--timeout", required=False, type=int, default=0, help="Timeout for job status polling")
        p.add_argument("-l", "--long", required=False, action="store_true", help="More detailed job status")
        p.add_argument("-a", "--all", required=False, action="store_true", help="Full details (including log)")

    def get_synopsis(self) -> str:
        return "Gets the status of UNICORE job(s)."

    def get_description(self) -> str:
        return "get job status"

    def get_group(self) -> str:
        return "Job execution"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.client import Job, JobStatus

        self.setup(args)
        wanted = None
        if self.args.wait_for is not None:
            if self.args.wait_for.upper() not in JobStatus.__members__:
                names = ", ".join(s.value for s in JobStatus)
                raise UsageError(f"--wait-for: no such job status '{self.args.wait_for}' (use one of {names})")
            wanted = JobStatus[self.args.wait_for.upper()]
        transport = self.transport()
        for endpoint in self.args.job_url:
            job = Job(transport, job_url=endpoint)
            if wanted is not None:
                t = f"(timeout: {self.args.timeout} sec.)" if self.args.timeout > 0 else ""
                self.verbose(f"Waiting for job to be {wanted} ... {t}")
                job.poll(state=wanted, timeout=self.args.timeout)
            else:
                self.show_status(job)
        return 0

    def show_status(self, job: Any) -> None:
        from pyunicore_fast.client import JobStatus

        line = f"{job.resource_url} {job.status}"
        if job.status.ordinal() >= JobStatus.SUCCESSFUL.ordinal():
            line = f"{line} exit code: {job.properties.get('exitCode')}"
        print(line)
        if self.args.long or self.args.all:
            props = job.properties
            print("  Working directory:", props.get("_links", {}).get("workingDirectory", {}).get("href"))
            jt = props.get("jobType")
            print("  Job type:         ", jt)
            if jt != "ON_LOGIN_NODE":
                print("  Queue:            ", props.get("queue", "n/a"))
        if self.args.all:
            for line in job.properties.get("log", []):
                print("  Log:", line)


class JobWrapper:
    """Placeholder kept for PyUNICORE compatibility (a stub there too)."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        self.local_imports: list[str] = []
