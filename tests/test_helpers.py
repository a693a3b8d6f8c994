"""pyunicore_fast.helpers: the dataclasses' ``to_dict()`` against PyUNICORE's unit-test oracles,
and the connection helpers (README and 1.x spellings) against the embedded site."""

from __future__ import annotations

import pytest

import pyunicore_fast.client as uc
import pyunicore_fast.credentials as cr
from pyunicore_fast import helpers
from pyunicore_fast.helpers import _api_object, jobs, workflows
from pyunicore_fast.helpers.jobs import data
from pyunicore_fast.helpers.workflows import activities, variable
from pyunicore_fast.helpers.workflows.activities import job, loops


# -- _api_object ----------------------------------------------------------------------------------
def test_api_object_conversion():
    import dataclasses

    @dataclasses.dataclass
    class Inner(_api_object.ApiRequestObject):
        x: bool = True

        def _to_dict(self):
            return {"x": self.x, "n": None}

    @dataclasses.dataclass
    class Outer(_api_object.ApiRequestObject):
        def _to_dict(self):
            return {"inner": Inner(), "list": [Inner(False), None, 1], "none": None, "d": {"a": None, "b": False},
                    "t": (1, True)}

    assert Outer().to_dict() == {"inner": {"x": "true"}, "list": [{"x": "false"}, 1], "d": {"b": "false"},
                                 "t": [1, "true"]}


# -- jobs -------------------------------------------------------------------------------------------
def test_job_description_oracle():
    d = jobs.Description(executable="x", project="p", resources=jobs.Resources(nodes=2, queue="batch"))
    assert d.to_dict() == {
        "Executable": "x", "IgnoreNonZeroExitCode": "false", "Job type": "normal", "Project": "p",
        "Resources": {"Nodes": 2, "Queue": "batch"}, "RunUserPostcommandOnLoginNode": "true",
        "RunUserPrecommandOnLoginNode": "true", "Stderr": "stderr", "Stdout": "stdout",
        "UserPostcommandIgnoreNonZeroExitcode": "false", "UserPrecommandIgnoreNonZeroExitcode": "false",
        "haveClientStageIn": "false"}


def test_job_description_rules():
    with pytest.raises(ValueError):
        jobs.Description(job_type="raw")
    d = jobs.Description(executable="x", imports=[data.Import("here", "there")])
    assert d.have_client_stage_in is True and d.to_dict()["haveClientStageIn"] == "true"
    assert d.to_dict()["Imports"] == [{"From": "here", "To": "there", "FailOnError": "true"}]


def test_resources_all_fields():
    r = jobs.Resources(runtime="1h", queue="q", nodes=1, cpus=4, cpus_per_node=4, memory="1G", reservation="r",
                       node_constraints="gpu", qos="high")
    assert r.to_dict() == {"Runtime": "1h", "Queue": "q", "Nodes": 1, "CPUs": 4, "CPUsPerNode": 4, "Memory": "1G",
                           "Reservation": "r", "NodeConstraints": "gpu", "QoS": "high"}


@pytest.mark.parametrize("item,expected", [
    (data.Import(from_="here", to="there"), {"From": "here", "To": "there", "FailOnError": "true"}),
    (data.Import(from_="here", to="there", fail_on_error=False), {"From": "here", "To": "there", "FailOnError": "false"}),
    (data.Import(from_="here", to="there", data="test"), {"From": "here", "To": "there", "FailOnError": "true",
                                                          "Data": "test"}),
    (data.Import(from_="here", to="there", credentials=data.Credentials("user", "password")),
     {"From": "here", "To": "there", "FailOnError": "true", "Credentials": {"Username": "user", "Password": "password"}}),
    (data.Export(from_="there", to="here"), {"From": "there", "To": "here"}),
    (data.Credentials("user", "password"), {"Username": "user", "Password": "password"}),
])
def test_data_oracles(item, expected):
    assert item.to_dict() == expected


def test_credentials_repr_hides_password():
    assert "password" not in repr(data.Credentials("user", "password")).replace("username", "")


def test_readme_names_and_status():
    assert helpers.JobDescription is jobs.Description and helpers.Resources is jobs.Resources
    assert helpers.JobStatus.SUCCESSFUL == "SUCCESSFUL" and helpers.JobStatus.STAGING_IN == "STAGINGIN"
    assert jobs.Status.RUNNING == "RUNNING"


# -- workflows -------------------------------------------------------------------------------------
@pytest.fixture
def loop_body():
    acts = [activities.ModifyVariable(id="test-modify-variable-id", variable_name="test-variable",
                                      expression="test-expression")]
    trans = [workflows.Transition(from_="here", to="there", condition="test-condition")]
    return loops.Body(activities=acts, transitions=trans, condition="test-body-condition")


EXPECTED_BODY = {
    "activities": [{"id": "test-modify-variable-id", "type": "ModifyVariable", "variableName": "test-variable",
                    "expression": "test-expression"}],
    "transitions": [{"from": "here", "to": "there", "condition": "test-condition"}],
    "condition": "test-body-condition",
}


@pytest.mark.parametrize("cls,type_name", [(activities.Start, "START"), (activities.Split, "Split"),
                                           (activities.Branch, "BRANCH"), (activities.Merge, "Merge"),
                                           (activities.Synchronize, "Synchronize"), (activities.Hold, "HOLD")])
def test_simple_activities(cls, type_name):
    assert cls(id="a").to_dict() == {"id": "a", "type": type_name}
    assert cls(id="a").type == type_name


def test_workflow_description_oracle():
    wf = workflows.Description(
        activities=[activities.Start(id="test-start")],
        transitions=[workflows.Transition(from_="here", to="there")],
        variables=[workflows.Variable(name="test-variable", type=workflows.VariableType.Integer, initial_value=1)])
    assert wf.to_dict() == {"activities": [{"id": "test-start", "type": "START"}],
                            "transitions": [{"from": "here", "to": "there"}],
                            "variables": [{"initial_value": 1, "name": "test-variable", "type": "INTEGER"}]}


def test_variables():
    assert workflows.Variable("b", workflows.VariableType.Boolean, True).to_dict() == {
        "name": "b", "type": "BOOLEAN", "initial_value": "true"}
    assert workflows.VariableType.get_type_name(float) == "FLOAT"
    with pytest.raises(ValueError):
        workflows.Variable("x", list, [])
    with pytest.raises(ValueError):
        workflows.Variable("x", workflows.VariableType.Integer, "1")
    with pytest.raises(ValueError):
        workflows.Variable("x", workflows.VariableType.Integer, True)


def test_job_activity_oracle():
    prefs = job.UserPreferences(role="test-role", uid="test-uid", group="test-group",
                                supplementary_groups="test-groups")
    j = job.Job(id="test-id", description=jobs.Description(executable="test-executable", project="test-project"),
                site_name="test-site", user_preferences=prefs,
                options=[job.Option.IgnoreFailure(True), job.Option.MaxResubmits(2)])
    assert j.to_dict() == {
        "id": "test-id", "type": "JOB",
        "job": {"Executable": "test-executable", "IgnoreNonZeroExitCode": "false", "Job type": "normal",
                "Project": "test-project", "Resources": {}, "RunUserPostcommandOnLoginNode": "true",
                "RunUserPrecommandOnLoginNode": "true", "Site name": "test-site", "Stderr": "stderr",
                "Stdout": "stdout", "UserPostcommandIgnoreNonZeroExitcode": "false",
                "UserPrecommandIgnoreNonZeroExitcode": "false", "haveClientStageIn": "false",
                "User preferences": {"role": "test-role", "uid": "test-uid", "group": "test-group",
                                     "supplementaryGroups": "test-groups"}},
        "options": {"IGNORE_FAILURE": "true", "MAX_RESUBMITS": 2}}
    assert activities.jobs is jobs  # PyUNICORE quirk: the module, not the activity class


def test_while_and_repeat_until(loop_body):
    v = [workflows.Variable("C", workflows.VariableType.Integer, 0)]
    w = loops.While(id="w", body=loop_body, variables=v)
    expected = {"id": "w", "type": "WHILE", "variables": [{"name": "C", "type": "INTEGER", "initial_value": 0}],
                "body": EXPECTED_BODY}
    assert w.to_dict() == expected
    assert loops.RepeatUntil(id="w", body=loop_body, variables=v).to_dict() == dict(expected, type="REPEAT_UNTIL")


@pytest.mark.parametrize("rng,chunking,expected_range,expected_chunking", [
    (loops.Values([1, 2, 3]), None, {"values": [1, 2, 3]}, None),
    (loops.Values([1, 2, 3]), loops.Chunking(chunksize=3, type=loops.ChunkingType.Normal), {"values": [1, 2, 3]},
     {"chunksize": 3, "type": "NORMAL"}),
    (loops.Values([1]), loops.Chunking(chunksize=3, type=loops.ChunkingType.Size, filename_format="f_{0}"),
     {"values": [1]}, {"chunksize": 3, "type": "SIZE", "filename_format": "f_{0}"}),
    (loops.Values([1]), loops.Chunking(type=loops.ChunkingType.Size, chunksize_formula="return 2048;"),
     {"values": [1]}, {"type": "SIZE", "chunksize_formula": "return 2048;"}),
    (loops.Variables([loops.Variable(name="x", type=variable.VariableType.Integer, initial_value=1, expression="x++",
                                     end_condition="x<2")]), None,
     {"variables": [{"variable_name": "x", "type": "INTEGER", "start_value": 1, "expression": "x++",
                     "end_condition": "x<2"}]}, None),
    (loops.Files([loops.File(base="https://s/files/pdf/", include=["*.pdf"], exclude=["u.pdf"], recurse=True,
                             indirection=True)]), None,
     {"file_sets": [{"base": "https://s/files/pdf/", "include": ["*.pdf"], "exclude": ["u.pdf"], "recurse": "true",
                     "indirection": "true"}]}, None),
])
def test_for_each_oracles(loop_body, rng, chunking, expected_range, expected_chunking):
    loop = loops.ForEach(id="test-for-each-loop-id", body=loop_body, iterator_name="test-name", range=rng,
                         chunking=chunking)
    expected = {"id": "test-for-each-loop-id", "type": "FOR_EACH", "iterator_name": "test-name", **expected_range,
                "body": EXPECTED_BODY}
    if chunking is not None:
        expected["chunking"] = expected_chunking
    assert loop.to_dict() == expected


def test_chunking_needs_exactly_one_size():
    with pytest.raises(ValueError):
        loops.Chunking(chunksize=3, chunksize_formula="x")
    with pytest.raises(ValueError):
        loops.Chunking()


# -- authentication and connection helpers (embedded site) -------------------------------------------
def test_authentication_objects():
    ua = helpers.UserAuthentication(user="demouser", password="test123")
    assert "test123" not in repr(ua) and "test123" not in str(ua)
    assert ua.to_credential().get_auth_header() == cr.UsernamePassword("demouser", "test123").get_auth_header()
    assert helpers.TokenAuthentication("tok").to_credential().get_auth_header() == "Bearer tok"
    tr = helpers.create_transport(ua)
    assert isinstance(tr, uc.Transport) and tr._headers({})["Authorization"].startswith("Basic ")
    assert helpers.create_transport(cr.Anonymous()).credential.get_auth_header() is None
    with pytest.raises(TypeError):
        helpers.create_transport("demouser:test123")


@pytest.fixture(scope="module")
def site():
    testing = pytest.importorskip("pyunicore_fast.testing")
    with testing.EmbeddedSite(tls=True, no_login_users=["otheruser"]) as s:
        yield s


def test_connect_helpers_all_spellings(site):
    auth = helpers.UserAuthentication(user="demouser", password="test123")
    reg = helpers.connect_to_registry(registry_url=site.registry_url, authentication=auth)
    assert isinstance(reg, uc.Registry) and "DEMO-SITE" in reg.site_urls
    c = helpers.connect_to_site_from_registry(registry_url=site.registry_url, site_name="DEMO-SITE",
                                              authentication=auth)
    assert c.properties["client"]["xlogin"]["UID"] == "demouser"
    c = helpers.connect_to_site(site_api_url=site.core_url, authentication=auth)
    assert isinstance(c, uc.Client)
    cred = cr.UsernamePassword("demouser", "test123")
    assert isinstance(helpers.connection.connect_to_site(site.core_url, cred), uc.Client)  # 1.3 positional
    assert isinstance(helpers.connect_to_site(site.core_url, credentials=cred), uc.Client)  # 1.1 keyword
    with pytest.raises(TypeError):
        helpers.connect_to_site(site.core_url, cred, authentication=auth)


def test_connect_helpers_errors(site):
    with pytest.raises(ValueError, match="Available sites: DEMO-SITE"):
        helpers.connect_to_site_from_registry(site.registry_url, "NOPE", cr.UsernamePassword("demouser", "test123"))
    with pytest.raises(cr.AuthenticationFailedException):  # authenticated, but no Unix login
        helpers.connect_to_site(site.core_url, cr.UsernamePassword("otheruser", "test456"))
    with pytest.raises((cr.AuthenticationFailedException, uc.AccessDeniedError)):
        helpers.connect_to_site(site.core_url, cr.UsernamePassword("demouser", "wrong"))


def test_job_description_submits(site):
    c = helpers.connect_to_site(site.core_url, helpers.UserAuthentication("demouser", "test123"))
    jd = helpers.JobDescription(executable="echo", arguments=["helper-job"], resources=helpers.Resources(nodes=1))
    j = c.new_job(jd.to_dict())
    assert j.poll() == uc.JobStatus.SUCCESSFUL
    assert j.working_dir.stat("stdout").read() == b"helper-job\n"
    j2 = c.new_job(jd)  # a dataclass is accepted directly
    assert j2.poll() == uc.JobStatus.SUCCESSFUL
