"""``issue-token`` and ``rest``: PyUNICORE's utility commands (``pyunicore.cli.base``)."""

from __future__ import annotations

import json
from base64 import b64decode
from typing import Any

from pyunicore_fast.cli.base import Base
from pyunicore_fast.cli.errors import UsageError


class IssueToken(Base):
    """Get an authentication token from a UNICORE server."""

    name = "issue-token"

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("URL", help="Token endpoint URL", nargs="?")
        p.add_argument("-s", "--sitename", required=False, type=str, help="Site name")
        p.add_argument("-l", "--lifetime", required=False, type=int, default=-1,
                       help="Initial lifetime (in seconds) for token")
        p.add_argument("-R", "--renewable", required=False, action="store_true",
                       help="Token can be used to get a fresh token")
        p.add_argument("-L", "--limited", required=False, action="store_true",
                       help="Token should be limited to the issuing server")
        p.add_argument("-I", "--inspect", required=False, action="store_true", help="Inspect the issued token")

    def get_synopsis(self) -> str:
        return ("Gets a JWT authentication token from a UNICORE token endpoint.\n"
                "Lifetime and other properties can be configured.")

    def get_description(self) -> str:
        return "issue an authentication token"

    def get_group(self) -> str:
        return "Utilities"

    def run(self, args: list[str]) -> int:
        self.setup(args)
        if self.args.sitename:
            sites = self.registry.site_urls if self.registry else None
            if sites is None:
                raise UsageError("Sitename resolution requires registry - please check your configuration!")
            if self.args.sitename not in sites:
                raise UsageError(f"Site '{self.args.sitename}' not found in registry.")
            endpoint = sites[self.args.sitename]
        else:
            endpoint = self.args.URL
        if not endpoint:
            raise UsageError("Either URL or --sitename must be given.")
        endpoint = endpoint.split("/token")[0]
        token = self.issue_token(url=endpoint, lifetime=self.args.lifetime, limited=self.args.limited,
                                 renewable=self.args.renewable)
        if self.args.inspect:
            self.show_token_details(token)
        print(token)
        return 0

    def issue_token(self, url: str, lifetime: int, limited: bool, renewable: bool) -> str:
        from pyunicore_fast.client import Client

        client = Client(self.transport(), site_url=url)
        return client.issue_auth_token(lifetime, renewable, limited)

    def show_token_details(self, token: str) -> None:
        try:
            part = token.split(".")[1]
            part += "=" * (-len(part) % 4)
            payload = json.loads(b64decode(part.replace("-", "+").replace("_", "/")))
        except (IndexError, ValueError):
            print("(not a JWT: no details)")
            return
        print(f"Subject:      {payload.get('sub')}")
        if "exp" in payload and "iat" in payload:
            print(f"Lifetime (s): {payload['exp'] - payload['iat']}")
        print(f"Issued by:    {payload.get('iss')}")
        print(f"Valid for:    {payload.get('aud', '<unlimited>')}")
        print(f"Renewable:    {payload.get('renewable', 'no')}")


class REST(Base):
    """Low-level REST API operations (GET, PUT, POST, DELETE)."""

    name = "rest"
    short_identity = False  # -i is --include, as in PyUNICORE

    def add_command_args(self) -> None:
        p = self.parser
        p.add_argument("command", help="Operation (GET, PUT, POST, DELETE)")
        p.add_argument("URL", help="Endpoint URL(s)", nargs="*")
        p.add_argument("-A", "--accept", required=False, default="application/json",
                       help="Value for the 'Accept' header (default: 'application/json')")
        p.add_argument("-C", "--content-type", required=False, default="application/json",
                       help="Value for the 'Content-Type' header (default: 'application/json')")
        p.add_argument("-i", "--include", required=False, action="store_true",
                       help="Include the response headers in the output")
        p.add_argument("-D", "--data", required=False, help="JSON data for PUT/POST (or @file)")

    def get_synopsis(self) -> str:
        return "Low-level REST API operations."

    def get_description(self) -> str:
        return "perform a low-level REST API operation"

    def get_group(self) -> str:
        return "Utilities"

    def run(self, args: list[str]) -> int:
        from pyunicore_fast.cli.base import tls_verify
        from pyunicore_fast.client import Transport

        self.setup(args)
        cmd = self.args.command
        if not cmd:
            raise UsageError("REST operation (GET, PUT, POST, DELETE) required.")
        verb = next((v for v in ("GET", "POST", "PUT", "DELETE") if v.startswith(cmd.upper())), None)
        if verb is None:
            raise UsageError(f"Unsupported operation '{cmd}'")
        headers = {"Accept": self.args.accept, "Content-Type": self.args.content_type}
        self.to_json = "application/json" in self.args.accept
        tr = Transport(credential=self.credential, use_security_sessions=False, verify=tls_verify())
        for endpoint in self.args.URL:
            self.verbose(f"HTTP {verb} {endpoint}")
            if verb == "GET":
                response = tr.get(to_json=False, url=endpoint, headers=headers)
            elif verb == "POST":
                response = tr.post(url=endpoint, headers=headers, data=self._read_data())
            elif verb == "PUT":
                response = tr.put(url=endpoint, headers=headers, data=self._read_data())
            else:
                response = tr.run_method("DELETE", url=endpoint)
            with response:
                self._print_response(response)
        return 0

    def _print_response(self, response: Any, print_body: bool = True) -> None:
        if self.args.include:
            self._print_headers(response)
        if response.headers.get("Location"):
            self._last_location = response.headers["Location"]
            print(self._last_location)
        if print_body and response.status_code not in (201, 204) and response.content:
            if self.to_json:
                try:
                    print(json.dumps(response.json(), indent=2))
                    return
                except ValueError:
                    pass
            print(response.text)

    def _print_headers(self, response: Any) -> None:
        reason = getattr(response, "reason", None) or getattr(response, "reason_phrase", "")
        print(f"HTTP/1.1 {response.status_code} {reason}")
        for h in response.headers:
            print(f"{h}: {response.headers[h]}")

    def _read_data(self) -> str | None:
        d = self.args.data
        if not d:
            return None
        if d.startswith("@"):
            try:
                with open(d[1:], encoding="utf-8") as f:
                    return f.read()
            except OSError as exc:
                raise UsageError(f"--data {d}: {exc.strerror or exc}") from None
        return d
