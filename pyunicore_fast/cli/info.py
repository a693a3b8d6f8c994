"""``info``: describe UNICORE endpoints (PyUNICORE's ``pyunicore.cli.info``)."""

from __future__ import annotations

import re
from typing import Any

from pyunicore_fast.cli.base import Base


class Info(Base):
    """Show information about endpoint(s)."""

    name = "info"

    def add_command_args(self) -> None:
        self.parser.add_argument("URL", help="Endpoint URL(s)", nargs="*")
        self.parser.add_argument("-p", "--pattern", required=False, type=str,
                                 help="Only show info for endpoints matching the given regexp")
        self.parser.add_argument("-l", "--long", required=False, action="store_true", help="Show detailed info")

    def _require_registry(self) -> bool:
        return True

    def get_synopsis(self) -> str:
        return ("Show information about endpoint(s). If no explicit endpoints are given,\n"
                "the endpoints in the registry are used. The optional pattern allows to limit which\n"
                "endpoints are listed.")

    def get_description(self) -> str:
        return "show info on available services"

    def get_group(self) -> str:
        return "Utilities"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.client import Resource

        self.setup(args)
        endpoints = list(self.args.URL) if self.args.URL else list(self.registry.site_urls.values())
        pattern = re.compile(self.args.pattern) if self.args.pattern else None
        transport = self.transport()
        for url in endpoints:
            if pattern is not None and not pattern.match(url):
                continue
            self.show_endpoint_details(Resource(transport, resource_url=url))
        return 0

    def show_endpoint_details(self, ep: Any) -> None:
        print(ep.resource_url)
        if re.match(".*/rest/core[/]?$", ep.resource_url):
            self._show_details_core(ep)
        elif re.match(".*/rest/core/storages/.+", ep.resource_url):
            self._show_details_storage(ep)
        elif re.match(".*/rest/core/factories/.+", ep.resource_url):
            self._show_details_sitefactory(ep)
        else:
            print(" * no further details available.")

    def _show_details_core(self, ep: Any) -> None:
        props = ep.properties
        client = props.get("client", {})
        xlogin = client.get("xlogin", {})
        role = client.get("role", {})
        print(" * type: UNICORE/X base")
        print(f" * server v{props.get('server', {}).get('version', 'n/a')}")
        print(f" * authenticated (via '{client.get('authenticationMethod', 'n/a')}') as: '{client.get('dn')}' "
              f"role='{role.get('selected')}' uid='{xlogin.get('UID', 'n/a')}'")
        if xlogin.get("availableUIDs"):
            print(f" * available UIDs: {xlogin['availableUIDs']}")
        if xlogin.get("availableGroups"):
            print(f" * available groups: {xlogin['availableGroups']}")
        if role.get("availableRoles"):
            print(f" * available roles: {role['availableRoles']}")

    def _show_details_storage(self, ep: Any) -> None:
        props = ep.properties
        kind = "storage (job directory)" if ep.resource_url.endswith("-uspace") else "storage"
        print(f" * type: {kind}")
        print(f" * mount point: {props.get('mountPoint')}")
        free = props.get("freeSpace")
        if isinstance(free, (int, float)):
            print(f" * free space : {int(free / 1024 / 1024)} MB")

    def _show_details_sitefactory(self, ep: Any) -> None:
        print(" * type: compute")
