"""The workflow service (§10): activities, transitions, variables, HOLD/continue, file catalog.

A small engine, enough for what clients and their tests use: ``START``, ``JOB`` (submitted
to this site's job manager, ``${VAR}`` substituted, ``wf:`` imports/exports through the file
catalog), ``HOLD`` (status HELD until ``continue``), ``MODIFY_VARIABLE``, ``SPLIT``,
``BRANCH``, ``MERGE``, ``SYNCHRONIZE``; transition conditions (``eval``, ``exitCodeEquals``,
``fileExists``, …) are evaluated by a restricted expression evaluator (no Groovy, no
``eval`` of arbitrary Python).  Loops and sub-workflows are refused with a 400.
"""

from __future__ import annotations

import ast
import fnmatch
import logging
import operator
import os
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyunicore_fast.testing.auth import Identity
from pyunicore_fast.testing.common import (
    filter_fields,
    has_tags,
    iso_time,
    link,
    owned_entries,
    owned_entry,
    page,
    parse_tags,
    parse_time,
)
from pyunicore_fast.testing.routing import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from pyunicore_fast.testing.context import SiteContext
    from pyunicore_fast.testing.jobs import Job

log = logging.getLogger(__name__)

_TYPES = ("STRING", "INTEGER", "FLOAT", "BOOLEAN")
_CONTROL = {"START", "SPLIT", "BRANCH", "MERGE", "SYNCHRONIZE", "HOLD", "JOB", "MODIFY_VARIABLE",
            "GROUP"}


def _norm_type(t: Any) -> str:
    """Activity types case-insensitively; ``ModifyVariable`` → ``MODIFY_VARIABLE``."""
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(t or "")).upper()
    return s


def _convert(value: Any, vtype: str) -> Any:
    if vtype == "INTEGER":
        return int(str(value).strip())
    if vtype == "FLOAT":
        return float(str(value).strip())
    if vtype == "BOOLEAN":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    return str(value)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ----------------------------------------------------------------------------------------
# expressions
# ----------------------------------------------------------------------------------------
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}


def _to_python(expr: str) -> str:
    """Groovy/Java boolean syntax → Python syntax, outside string literals."""
    out, i, quote_ch = [], 0, None
    while i < len(expr):
        c = expr[i]
        if quote_ch:
            out.append(c)
            if c == quote_ch:
                quote_ch = None
            i += 1
            continue
        if c in "\"'":
            quote_ch = c
            out.append(c)
        elif expr.startswith("&&", i):
            out.append(" and ")
            i += 1
        elif expr.startswith("||", i):
            out.append(" or ")
            i += 1
        elif c == "!" and not expr.startswith("!=", i):
            out.append(" not ")
        else:
            out.append(c)
        i += 1
    text = "".join(out)
    text = re.sub(r"\btrue\b", "True", text)
    text = re.sub(r"\bfalse\b", "False", text)
    return text.strip().rstrip(";").strip()


class Evaluator:
    """Evaluates condition and variable expressions over the workflow's state."""

    def __init__(self, wf: Workflow, functions: dict[str, Any]):
        self.wf = wf
        self.functions = functions

    def eval(self, expr: str) -> Any:
        tree = ast.parse(_to_python(expr), mode="eval")
        return self._node(tree.body)

    def _node(self, n: ast.AST) -> Any:
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            if n.id in self.wf.variables:
                return self.wf.variables[n.id][1]
            raise ValueError(f"Unknown variable '{n.id}'")
        if isinstance(n, ast.BoolOp):
            vals = [self._node(v) for v in n.values]
            return all(vals) if isinstance(n.op, ast.And) else any(vals)
        if isinstance(n, ast.UnaryOp):
            v = self._node(n.operand)
            if isinstance(n.op, ast.Not):
                return not v
            if isinstance(n.op, ast.USub):
                return -v
            return v
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            left, right = self._node(n.left), self._node(n.right)
            if isinstance(n.op, ast.Add) and (isinstance(left, str) or isinstance(right, str)):
                return f"{_render(left)}{_render(right)}"
            if isinstance(n.op, ast.Div) and isinstance(left, int) and isinstance(right, int):
                return left // right
            return _BINOPS[type(n.op)](left, right)
        if isinstance(n, ast.Compare):
            left = self._node(n.left)
            for op, comp in zip(n.ops, n.comparators):
                right = self._node(comp)
                if type(op) not in _CMPOPS or not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in self.functions:
            args = [self._node(a) for a in n.args]
            return self.functions[n.func.id](*args)
        raise ValueError(f"Unsupported expression element '{ast.dump(n)[:60]}'")


# ----------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------
@dataclass
class Workflow:
    id: str
    owner: str
    identity: Identity
    name: str
    activities: dict[str, dict[str, Any]]
    transitions: list[dict[str, Any]]
    variables: dict[str, tuple[str, Any]]
    tags: list[str]
    status: str = "RUNNING"
    status_message: str = ""
    files: dict[str, str] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)
    job_of: dict[str, str] = field(default_factory=dict)  # activity id -> job id
    detailed: dict[str, str] = field(default_factory=dict)
    submission_time: float = field(default_factory=time.time)
    termination_time: float | None = None
    notification: str | None = None
    continue_event: threading.Event = field(default_factory=threading.Event)
    abort_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    thread: threading.Thread | None = None

    @property
    def final(self) -> bool:
        return self.status in ("SUCCESSFUL", "FAILED", "ABORTED")


class _WorkflowAborted(Exception):
    pass


class WorkflowManager:
    """Parses, runs and renders workflows."""

    def __init__(self, ctx: SiteContext):
        self.ctx = ctx
        self._workflows: dict[str, Workflow] = {}

    def url(self, wf: Workflow | str) -> str:
        return f"{self.ctx.workflows_url}/{wf if isinstance(wf, str) else wf.id}"

    def get(self, wid: str, identity: Identity) -> Workflow:
        return owned_entry(self.ctx.lock, self._workflows, wid, identity)

    def list_for(self, identity: Identity, tags: list[str]) -> list[Workflow]:
        return [w for w in owned_entries(self.ctx.lock, self._workflows, identity)
                if has_tags(w.tags, tags)]

    # -- parsing -------------------------------------------------------------------------
    def parse(self, identity: Identity, d: Any) -> Workflow:
        errors: list[str] = []
        if not isinstance(d, dict):
            raise HTTPError(400, "Workflow description must be a JSON object")
        if d.get("subworkflows"):
            errors.append("Sub-workflows and loops (WHILE, REPEAT_UNTIL, FOR_EACH) are not "
                          "supported by this emulator")
        raw = d.get("activities") or {}
        acts: dict[str, dict[str, Any]] = {}
        items = raw.items() if isinstance(raw, dict) else ((a.get("id"), a) for a in raw
                                                          if isinstance(a, dict))
        for aid, a in items:
            if not aid:
                errors.append("Activity without 'id'")
                continue
            a = dict(a)
            t = _norm_type(a.get("type") or ("JOB" if "job" in a else "START"))
            if t in ("WHILE", "REPEAT_UNTIL", "FOR_EACH"):
                errors.append(f"Activity '{aid}': type {t} is not supported by this emulator")
            elif t not in _CONTROL:
                errors.append(f"Activity '{aid}': unknown type '{a.get('type')}'")
            if t == "JOB" and not isinstance(a.get("job"), dict):
                errors.append(f"Activity '{aid}': JOB activity needs a 'job' element")
            if t == "MODIFY_VARIABLE" and not (a.get("variable_name") or a.get("variableName")):
                errors.append(f"Activity '{aid}': MODIFY_VARIABLE needs 'variable_name'")
            if aid in acts:
                errors.append(f"Duplicate activity id '{aid}'")
            a["type"] = t
            acts[str(aid)] = a
        transitions = []
        for tr in d.get("transitions") or []:
            src, dst = tr.get("from"), tr.get("to")
            if src not in acts or dst not in acts:
                errors.append(f"Transition {src!r} -> {dst!r} refers to an unknown activity")
            transitions.append(dict(tr))
        variables: dict[str, tuple[str, Any]] = {}
        for v in d.get("variables") or []:
            name, vtype = v.get("name"), str(v.get("type") or "STRING").upper()
            if not name or vtype not in _TYPES:
                errors.append(f"Invalid variable declaration {v!r}")
                continue
            try:
                variables[str(name)] = (vtype, _convert(v.get("initial_value", v.get("initialValue", "")),
                                                        vtype))
            except ValueError:
                errors.append(f"Variable '{name}': initial value is not of type {vtype}")
        if errors:
            raise HTTPError(400, "Workflow contains errors: " +
                            " ".join(f"[{i + 1}] {e}" for i, e in enumerate(errors)))
        wf = Workflow(id=str(uuid.uuid4()), owner=identity.user or "", identity=identity,
                      name=str(d.get("name") or "N/A"), activities=acts, transitions=transitions,
                      variables=variables, tags=parse_tags(d.get("tags") or d.get("Tags")))
        for k, v in (d.get("inputs") or {}).items():
            wf.files[k if str(k).startswith("wf:") else f"wf:{k}"] = str(v)
        if d.get("terminationTime"):
            wf.termination_time = parse_time(str(d["terminationTime"]))
        wf.notification = d.get("notification")
        wf.detailed = {aid: "UNDEFINED" for aid in acts}
        return wf

    def submit(self, identity: Identity, d: Any) -> Workflow:
        identity.require_login()
        wf = self.parse(identity, d)
        with self.ctx.lock:
            self._workflows[wf.id] = wf
        wf.thread = threading.Thread(target=self._run, args=(wf,), daemon=True, name=f"wf-{wf.id[:8]}")
        wf.thread.start()
        return wf

    # -- actions ------------------------------------------------------------------------
    def resume(self, wf: Workflow, params: dict[str, Any]) -> None:
        with wf.lock:
            if wf.status != "HELD":
                raise HTTPError(409, "Workflow is not held")
            for k, v in params.items():
                vtype = wf.variables.get(k, ("STRING", ""))[0]
                try:
                    wf.variables[k] = (vtype, _convert(v, vtype))
                except ValueError as exc:
                    raise HTTPError(500, f"Invalid value for variable '{k}': {exc}") from exc
            wf.continue_event.set()

    def abort(self, wf: Workflow) -> None:
        wf.abort_event.set()
        wf.continue_event.set()

    def delete(self, wf: Workflow) -> None:
        self.abort(wf)
        with self.ctx.lock:
            self._workflows.pop(wf.id, None)

    def shutdown(self) -> None:
        with self.ctx.lock:
            items = list(self._workflows.values())
        for wf in items:
            self.abort(wf)

    # -- engine -------------------------------------------------------------------------
    def _functions(self, wf: Workflow) -> dict[str, Any]:
        def job(aid: str) -> Job:
            jid = wf.job_of.get(str(aid))
            j = self.ctx.jobs.get_internal(jid) if jid else None
            if j is None:
                raise ValueError(f"No job for activity '{aid}'")
            return j

        def exit_code(aid: str) -> int:
            j = job(aid)
            return int(j.exit_code) if j.exit_code is not None else -1

        def path(aid: str, name: str) -> str:
            return os.path.join(job(aid).workdir, str(name).lstrip("/"))

        def content(aid: str, name: str) -> str:
            with open(path(aid, name), encoding="utf-8", errors="replace") as f:
                return f.read().strip()

        evaluator_holder: list[Evaluator] = []
        return {
            "eval": lambda x: evaluator_holder[0].eval(x) if isinstance(x, str) else bool(x),
            "exitCodeEquals": lambda a, v: exit_code(a) == int(v),
            "exitCodeNotEquals": lambda a, v: exit_code(a) != int(v),
            "fileExists": lambda a, n: os.path.exists(path(a, n)),
            "fileLengthGreaterThanZero": lambda a, n: os.path.exists(path(a, n))
            and os.path.getsize(path(a, n)) > 0,
            "before": lambda t: time.time() < parse_time(str(t)),
            "after": lambda t: time.time() > parse_time(str(t)),
            "fileContent": content,
            "_holder": evaluator_holder,
        }

    def _evaluator(self, wf: Workflow) -> Evaluator:
        fns = self._functions(wf)
        holder = fns.pop("_holder")
        ev = Evaluator(wf, fns)
        holder.append(ev)
        return ev

    def _condition(self, wf: Workflow, cond: Any) -> bool:
        if cond in (None, ""):
            return True
        return bool(self._evaluator(wf).eval(str(cond)))

    def _run(self, wf: Workflow) -> None:
        acts = wf.activities
        incoming: dict[str, int] = {a: 0 for a in acts}
        for tr in wf.transitions:
            incoming[tr["to"]] = incoming.get(tr["to"], 0) + 1
        starts = [a for a, d in acts.items() if d["type"] == "START"] or \
            [a for a in acts if incoming.get(a, 0) == 0]
        ready: deque[str] = deque(starts)
        arrivals: dict[str, int] = {}
        done: set[str] = set()
        running: dict[str, str] = {}  # activity -> job id
        try:
            while ready or running:
                if wf.abort_event.is_set():
                    raise _WorkflowAborted()
                while ready:
                    aid = ready.popleft()
                    if aid in done or aid in running:
                        continue
                    jid = self._start_activity(wf, aid)
                    if jid is not None:
                        running[aid] = jid
                    else:
                        done.add(aid)
                        self._follow(wf, aid, ready, arrivals, incoming)
                for aid, jid in list(running.items()):
                    job = self.ctx.jobs.get_internal(jid)
                    if job is None or job.final:
                        del running[aid]
                        ok = job is not None and job.status == "SUCCESSFUL"
                        with wf.lock:
                            wf.detailed[aid] = "SUCCESSFUL" if ok else "FAILED"
                        options = acts[aid].get("options") or {}
                        if not ok and str(options.get("IGNORE_FAILURE", "false")).lower() != "true":
                            msg = job.status_message if job else "job vanished"
                            raise RuntimeError(f"Activity '{aid}' failed: {msg}")
                        done.add(aid)
                        self._follow(wf, aid, ready, arrivals, incoming)
                if running:
                    wf.abort_event.wait(0.05)
            self._final(wf, "SUCCESSFUL", "")
        except _WorkflowAborted:
            for jid in running.values():
                job = self.ctx.jobs.get_internal(jid)
                if job is not None:
                    self.ctx.jobs.abort(job)
            self._final(wf, "ABORTED", "Aborted by the user")
        except Exception as exc:  # noqa: BLE001 - failures end the workflow
            log.info("workflow %s failed: %s", wf.id, exc)
            self._final(wf, "FAILED", str(exc))

    def _final(self, wf: Workflow, status: str, message: str) -> None:
        with wf.lock:
            wf.status, wf.status_message = status, message
        if wf.notification:
            body = {"href": self.url(wf), "group_id": wf.id, "status": status,
                    "statusMessage": message}

            def send() -> None:
                try:
                    import requests

                    from pyunicore_fast.testing.context import verify_for

                    requests.post(str(wf.notification), json=body, verify=verify_for(str(wf.notification)), timeout=10)
                except Exception as exc:  # noqa: BLE001 - best effort
                    log.info("workflow notification failed: %s", exc)

            threading.Thread(target=send, daemon=True).start()

    def _follow(self, wf: Workflow, aid: str, ready: deque[str], arrivals: dict[str, int],
                incoming: dict[str, int]) -> None:
        branch = wf.activities[aid]["type"] == "BRANCH"
        for tr in wf.transitions:
            if tr.get("from") != aid:
                continue
            if not self._condition(wf, tr.get("condition")):
                continue
            target = tr["to"]
            arrivals[target] = arrivals.get(target, 0) + 1
            if wf.activities[target]["type"] != "SYNCHRONIZE" or arrivals[target] >= incoming[target]:
                ready.append(target)
            if branch:
                break

    def _start_activity(self, wf: Workflow, aid: str) -> str | None:
        a = wf.activities[aid]
        t = a["type"]
        with wf.lock:
            wf.detailed[aid] = "RUNNING"
        if t == "HOLD":
            with wf.lock:
                wf.status = "HELD"
                wf.continue_event.clear()
            wf.continue_event.wait()
            if wf.abort_event.is_set():
                raise _WorkflowAborted()
            with wf.lock:
                wf.status = "RUNNING"
        elif t == "MODIFY_VARIABLE":
            self._modify(wf, str(a.get("variable_name") or a.get("variableName")),
                         str(a.get("expression") or ""))
        elif t == "JOB":
            return self._submit_job(wf, aid, a)
        with wf.lock:
            wf.detailed[aid] = "SUCCESSFUL"
        return None

    def _modify(self, wf: Workflow, name: str, expression: str) -> None:
        if name not in wf.variables:
            raise RuntimeError(f"MODIFY_VARIABLE: unknown variable '{name}'")
        vtype, _ = wf.variables[name]
        expr = expression.strip().rstrip(";").strip()
        m = re.fullmatch(r"(\w+)\s*(\+\+|--)", expr)
        ev = self._evaluator(wf)
        if m:
            target, value = m.group(1), ev.eval(m.group(1)) + (1 if m.group(2) == "++" else -1)
        else:
            m = re.fullmatch(r"(\w+)\s*([-+*/]?)=(?!=)\s*(.+)", expr, re.DOTALL)
            if m:
                target = m.group(1)
                value = ev.eval(m.group(3))
                if m.group(2):
                    value = ev.eval(f"{target} {m.group(2)} ({m.group(3)})")
            else:
                target, value = name, ev.eval(expr)
        ttype = wf.variables.get(target, (vtype, None))[0]
        with wf.lock:
            wf.variables[target] = (ttype, _convert(value, ttype))

    def _substitute(self, wf: Workflow, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\$\{(\w+)\}", lambda m: _render(wf.variables[m.group(1)][1])
                          if m.group(1) in wf.variables else m.group(0), value)
        if isinstance(value, list):
            return [self._substitute(wf, v) for v in value]
        if isinstance(value, dict):
            return {k: self._substitute(wf, v) for k, v in value.items()}
        return value

    def _submit_job(self, wf: Workflow, aid: str, a: dict[str, Any]) -> str:
        d = self._substitute(wf, dict(a["job"]))
        d.pop("Site name", None)
        d.pop("User preferences", None)
        imports = d.get("Imports") or []
        if isinstance(imports, list):
            for item in imports:
                src = item.get("From")
                if isinstance(src, str) and src.startswith("wf:"):
                    if src not in wf.files:
                        raise RuntimeError(f"Activity '{aid}': no file '{src}' in the workflow")
                    item["From"] = wf.files[src]

        def wf_export(job: Job, src: str, target: str) -> None:
            storage_id = f"{job.id}-uspace"
            with wf.lock:
                wf.files[target] = self.ctx.storages.file_url(storage_id, src)

        job = self.ctx.jobs.submit(wf.identity, d, wf_export=wf_export)
        with wf.lock:
            wf.job_ids.append(job.id)
            wf.job_of[aid] = job.id
        return job.id

    # -- rendering ----------------------------------------------------------------------
    def properties(self, wf: Workflow) -> dict[str, Any]:
        url = self.url(wf)
        with wf.lock:
            props: dict[str, Any] = {
                "name": wf.name, "status": wf.status, "statusMessage": wf.status_message,
                "detailedStatus": dict(wf.detailed),
                "parameters": {k: _render(v[1]) for k, v in wf.variables.items()},
                "submissionTime": iso_time(wf.submission_time),
                "owner": wf.identity.dn, "acl": [], "tags": list(wf.tags),
            }
            if wf.termination_time:
                props["terminationTime"] = iso_time(wf.termination_time)
        props["_links"] = {"self": link(url), "action:abort": link(url + "/actions/abort"),
                           "action:continue": link(url + "/actions/continue"),
                           "action:callback": link(url + "/actions/callback"),
                           "jobs": link(url + "/jobs"), "files": link(url + "/files")}
        return props


# ----------------------------------------------------------------------------------------
# REST routes
# ----------------------------------------------------------------------------------------
def register(router: Router, ctx: SiteContext) -> None:
    base = f"/{ctx.site_name}/rest/workflows"
    wm = ctx.workflows

    def list_workflows(req: Request) -> Response:
        items = [] if req.identity.anonymous else wm.list_for(
            req.identity, parse_tags(req.query_value("tags")))
        chosen, links = page([wm.url(w) for w in items], ctx.workflows_url, req)
        server = ctx.server_info()
        server["engineMode"] = "embedded"
        return Response.json({"workflows": chosen, "_links": links,
                              "client": ctx.authenticator.client_info(req.identity),
                              "server": server})

    def submit(req: Request) -> Response:
        ctx.require(req.identity)
        wf = wm.submit(req.identity, req.json(None))
        return Response.created(wm.url(wf))

    def get_wf(req: Request, wid: str) -> Response:
        return Response.json(filter_fields(wm.properties(wm.get(wid, req.identity)), req))

    def delete_wf(req: Request, wid: str) -> Response:
        wm.delete(wm.get(wid, req.identity))
        return Response.no_content()

    def action(req: Request, wid: str, name: str) -> Response:
        wf = wm.get(wid, req.identity)
        params = req.json({}) or {}
        if name == "abort":
            wm.abort(wf)
        elif name in ("continue", "resume"):
            wm.resume(wf, params if isinstance(params, dict) else {})
        elif name == "callback":
            pass
        else:
            raise HTTPError(404)
        return Response.no_content()

    def jobs(req: Request, wid: str) -> Response:
        wf = wm.get(wid, req.identity)
        with wf.lock:
            urls = [ctx.jobs.url(j) for j in wf.job_ids]
        chosen, links = page(urls, wm.url(wf) + "/jobs", req)
        return Response.json({"jobs": chosen, "_links": links})

    def files(req: Request, wid: str, pattern: str | None = None) -> Response:
        wf = wm.get(wid, req.identity)
        with wf.lock:
            catalog = dict(wf.files)
        if pattern:
            pat = unquote(pattern.lstrip("/"))
            if not pat.startswith("wf:"):
                pat = "wf:" + pat
            catalog = {k: v for k, v in catalog.items() if fnmatch.fnmatchcase(k, pat)}
        return Response.json(catalog)

    def put_files(req: Request, wid: str, pattern: str | None = None) -> Response:
        wf = wm.get(wid, req.identity)
        params = req.json({}) or {}
        with wf.lock:
            for k, v in params.items():
                wf.files[k if k.startswith("wf:") else f"wf:{k}"] = str(v)
        return Response.json(params)

    w = base + r"/(?P<wid>[^/]+)"
    router.add("GET", base + "/?", list_workflows, anonymous=True)
    router.add("POST", base + "/?", submit)
    router.add("GET", w, get_wf)
    router.add("DELETE", w, delete_wf)
    router.add("POST", w + r"/actions/(?P<name>[^/]+)", action)
    router.add("GET", w + "/jobs/?", jobs)
    router.add("GET", w + r"/files(?P<pattern>/.*)?", files)
    router.add("PUT", w + r"/files(?P<pattern>/.*)?", put_files)
