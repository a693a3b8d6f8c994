"""``pyunicore-fast``: dispatcher, help/version, configuration, credentials and error reporting.

Failures must be one line on stderr with a non-zero exit code and no traceback, whether the
arguments are wrong, the configuration is broken or the site cannot be reached.
"""

from __future__ import annotations

import os

from .cli_support import (
    CLI,
    assert_fails,
    clean_env,
    ok,
    run_cli,
    user_env,
)

pytest_plugins = ["tests.cli_fixtures"]  # fixtures: cli_home, cli_site

def test_help_lists_every_command(cli_home):
    for word in ([], ["help"], ["-h"], ["--help"]):
        out = ok(run_cli(*word, home=cli_home)).stdout
        for name in ("cancel-job", "cat", "cp", "exec", "info", "issue-token", "job-status", "list-jobs", "ls",
                     "rest", "run", "mkdir", "rm", "checksum", "mount", "serve", "bench", "demo"):
            assert f"  {name} " in out, name


def test_version(cli_home):
    for word in ("version", "-V", "--version"):
        out = ok(run_cli(word, home=cli_home)).stdout
        assert "pyunicore-fast" in out and "Python" in out and "OS:" in out and "uftpcore" in out


def test_command_help_exits_zero(cli_home):
    for name in ("cp", "ls", "bench", "serve", "demo", "mount", "rest", "exec"):
        res = ok(run_cli(name, "-h", home=cli_home))
        assert f"pyunicore-fast {name}" in res.stdout


def test_abbreviations_follow_pyunicore(cli_home):
    # the first command in PyUNICORE's order that starts with the word wins
    assert "pyunicore-fast cancel-job" in ok(run_cli("c", "-h", home=cli_home)).stdout
    assert "pyunicore-fast list-jobs" in ok(run_cli("l", "-h", home=cli_home)).stdout
    assert "pyunicore-fast rest" in ok(run_cli("r", "-h", home=cli_home)).stdout
    assert "pyunicore-fast checksum" in ok(run_cli("chec", "-h", home=cli_home)).stdout


def test_unknown_command(cli_home):
    assert_fails(run_cli("frobnicate", home=cli_home), 2, "No such command: frobnicate")


def test_bad_arguments_are_one_line_usage_errors(cli_home):
    assert_fails(run_cli("ls", "--bogus", home=cli_home), 2, "unrecognized arguments")
    assert_fails(run_cli("cp", "onlyone", home=cli_home), 2, "required")
    assert_fails(run_cli("cp", "-t", "x", "a", "b", home=cli_home), 2, "invalid int value")
    assert_fails(run_cli("cp", "-B", "9-1", "http://h/rest/auth/T:/a", "/tmp/x", home=cli_home), 2, "-B")
    assert_fails(run_cli("cp", "-t", "0", "http://h/rest/auth/T:/a", "/tmp/x", home=cli_home), 2, "-t")
    assert_fails(run_cli("cp", "-B", "1-2", "-R", "http://h/rest/auth/T:/a", "/tmp/x", home=cli_home), 2,
                 "cannot be combined")
    assert_fails(run_cli("cp", "a", "b", home=cli_home), 2, "no remote location")
    assert_fails(run_cli("cp", "-t", "2", "http://h/S/rest/core/storages/HOME/files/a", "/tmp", home=cli_home),
                 2, "only for UFTP")
    assert_fails(run_cli("job-status", "-w", "BOGUS", "http://h/x", home=cli_home), 2, "no such job status")
    assert_fails(run_cli("bench", "--streams", "0", home=cli_home), 2, "between 1 and 64")
    assert_fails(run_cli("bench", "--size", "lots", home=cli_home), 2, "not a size")
    assert_fails(run_cli("ls", "/not/remote", home=cli_home), 2, "not a remote location")


def test_configuration_errors(cli_home, tmp_path):
    assert_fails(run_cli("ls", "-c", str(tmp_path / "missing"), "http://h/rest/auth/T:", home=cli_home), 2,
                 "not found")
    props = tmp_path / "props"
    props.write_text("username=demouser\npassword=${NO_SUCH_VARIABLE}\n")
    assert_fails(run_cli("ls", "-c", str(props), "http://h/rest/auth/T:", home=cli_home), 2,
                 "NO_SUCH_VARIABLE is not set")
    props.write_text("authentication-method=KERBEROS\n")
    assert_fails(run_cli("ls", "-c", str(props), "http://h/rest/auth/T:", home=cli_home), 2,
                 "No such authentication method")
    # commands that need a registry say how to configure one
    assert_fails(run_cli("list-jobs", "-u", "demouser:x", home=cli_home), 2, "no registry configured")


def test_credential_sources_fail_clearly(cli_home):
    url = "http://127.0.0.1:9/rest/auth/T:"
    assert_fails(run_cli("ls", "--token", "@/no/such/file", url, home=cli_home), 2, "--token")
    assert_fails(run_cli("ls", "--token", "@@NO_SUCH_ENV", url, home=cli_home), 2, "NO_SUCH_ENV")
    assert_fails(run_cli("ls", "-i", "/no/such/key", "-u", "demouser", url, home=cli_home), 2, "/no/such/key")
    # a password is needed but there is no terminal: say how to give it, do not hang
    assert_fails(run_cli("ls", "-u", "demouser", url, home=cli_home), 2, "UFTP_PASSWORD")


def test_unreachable_sites(cli_home):
    dead = "http://127.0.0.1:9"
    line = assert_fails(run_cli("ls", "-u", "demouser:x", f"{dead}/SITE/rest/auth/TEST:", home=cli_home), 1)
    assert "Connection refused" in line
    assert_fails(run_cli("cp", "-u", "demouser:x", f"{dead}/SITE/rest/auth/TEST:/a", "/tmp/x", home=cli_home), 1,
                 "cannot reach")
    assert_fails(run_cli("exec", "-u", "demouser:x", "-S", f"{dead}/SITE/rest/core", "date", home=cli_home), 1,
                 "Connection refused")
    assert_fails(run_cli("ls", "-u", "demouser:x", f"{dead}/SITE/rest/core/storages/HOME/files/", home=cli_home),
                 1, "Connection refused")
    assert_fails(run_cli("bench", "-u", "demouser:x", f"{dead}/SITE/rest/auth/TEST:", home=cli_home), 1,
                 "Connection refused")


def test_authentication_failures(cli_home, cli_site):
    assert_fails(run_cli("ls", "-u", "demouser:wrong", cli_site.uftp(), home=cli_home), 1, "403")
    assert_fails(run_cli("ls", cli_site.uftp(), home=cli_home), 1, "401")  # anonymous


def test_credentials_from_options_environment_and_configuration(cli_home, cli_site, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    os.makedirs(cli_site.home_dir, exist_ok=True)
    with open(os.path.join(cli_site.home_dir, "cred-check.txt"), "w") as f:
        f.write("hello")
    url = cli_site.uftp("cred-check.txt")
    assert "cred-check.txt" in ok(run_cli("ls", "-u", "demouser:test123", url, home=cli_home)).stdout
    assert "cred-check.txt" in ok(run_cli("ls", url, home=cli_home, env=user_env(cli_home))).stdout
    # UCC properties file, with ${VAR} substitution, as PyUNICORE reads it
    props = tmp_path / "props"
    props.write_text("# test\nusername=demouser\npassword=${MY_SECRET}\n")
    env = clean_env(cli_home, MY_SECRET="test123")
    assert "cred-check.txt" in ok(run_cli("ls", "-c", str(props), url, home=cli_home, env=env)).stdout
    # the default file is ~/.ucc/properties
    os.makedirs(os.path.join(cli_home, ".ucc"), exist_ok=True)
    with open(os.path.join(cli_home, ".ucc", "properties"), "w") as f:
        f.write("username=demouser\n")
    try:
        env = clean_env(cli_home, UCC_PASSWORD="test123")
        assert "cred-check.txt" in ok(run_cli("ls", url, home=cli_home, env=env)).stdout
    finally:
        os.unlink(os.path.join(cli_home, ".ucc", "properties"))
    # Bearer tokens: value, @file, @@ENV
    token = cli_site.info["tokens"]["demouser"]
    (tmp_path / "token").write_text(token + "\n")
    assert ok(run_cli("ls", "--token", token, url, home=cli_home)).stdout
    assert ok(run_cli("ls", "--token", f"@{tmp_path / 'token'}", url, home=cli_home)).stdout
    env = clean_env(cli_home, MY_TOKEN=token)
    assert ok(run_cli("ls", "--token", "@@MY_TOKEN", url, home=cli_home, env=env)).stdout


def test_ssh_key_identity(cli_home, tmp_path):
    """``-i KEY``: a JWT signed with the user's SSH key (site started with the public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from .cli_support import Served

    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "id_ed25519").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    (tmp_path / "id_ed25519.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    with Served(cli_home, "--authorized-key", f"demouser:{tmp_path / 'id_ed25519.pub'}") as served:
        res = ok(run_cli("mkdir", "-i", str(tmp_path / "id_ed25519"), "-u", "demouser",
                         served.uftp("made-with-key"), home=cli_home))
        assert os.path.isdir(os.path.join(served.home_dir, "made-with-key")), res.stderr
        # a key the site does not know is refused with one line
        other = ed25519.Ed25519PrivateKey.generate()
        (tmp_path / "other").write_bytes(other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        assert_fails(run_cli("ls", "-i", str(tmp_path / "other"), "-u", "demouser", served.uftp(), home=cli_home),
                     1, "403")


def test_debug_shows_traceback_only_when_asked(cli_home):
    import subprocess

    res = subprocess.run([*CLI, "ls", "--debug", "-u", "demouser:x", "http://127.0.0.1:9/S/rest/auth/T:"],
                         capture_output=True, text=True, env=clean_env(cli_home), timeout=60,
                         check=False)
    assert res.returncode == 1
    assert "Traceback" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("pyunicore-fast ls: ")
