"""fsspec's own abstract test classes (``fsspec.tests.abstract``) against UFTPFileSystem.

Copy, get, put, open (exclusive create) and pipe (create/overwrite) behave exactly as fsspec
specifies for every implementation, on the embedded UFTPD behind the test Auth server.  No test
of these classes is skipped.
"""

from __future__ import annotations

import posixpath

import pytest
from fsspec.tests import abstract

from tests.fsconfig import PASSWORD, USER

pytest_plugins = ("tests.fsfixtures",)  # fixtures: auth


class UFTPFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, auth):
        from pyunicore_fast.uftp.fsspec_impl import UFTPFileSystem

        fsys = UFTPFileSystem(auth.url, username=USER, password=PASSWORD, skip_instance_cache=True)
        yield fsys
        fsys.close()

    @pytest.fixture
    def fs_join(self):
        return posixpath.join

    @pytest.fixture
    def fs_path(self, workdir):
        return str(workdir)


class TestUFTPCopy(abstract.AbstractCopyTests, UFTPFixtures):
    pass


class TestUFTPGet(abstract.AbstractGetTests, UFTPFixtures):
    pass


class TestUFTPPut(abstract.AbstractPutTests, UFTPFixtures):
    pass


class TestUFTPOpen(abstract.AbstractOpenTests, UFTPFixtures):
    pass


class TestUFTPPipe(abstract.AbstractPipeTests, UFTPFixtures):
    pass
