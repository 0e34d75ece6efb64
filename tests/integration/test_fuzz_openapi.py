"""Property-based fuzzing of the whole API from its own OpenAPI description (schemathesis).

Every generated request runs against a real server: no response may be a 5xx, and successful
responses must match the schema the server publishes. Requests are made by a dedicated tenant,
with the {AccountSid} path parameter usually pointed at that tenant so the fuzzer reaches past
the tenancy check.
"""

from __future__ import annotations

import os
import random

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.server import Server, Tenant, make_tenant

MAX_EXAMPLES = int(os.environ.get("RESTCOMM_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="session")
def fuzz_tenant(server: Server) -> Tenant:
    return make_tenant(server, name="fuzz")


def test_openapi_is_served_and_covers_the_api(server: Server) -> None:
    doc = httpx.get(server.base_url + "/restcomm/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert "/restcomm/2012-04-24/Accounts/{AccountSid}.json" in paths
    assert set(paths["/restcomm/2012-04-24/Accounts/{AccountSid}.json"]) >= {"get", "post"}


def test_no_server_errors(server: Server, fuzz_tenant: Tenant) -> None:
    doc = httpx.get(server.base_url + "/restcomm/openapi.json", timeout=10).json()
    api = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            if "AccountSid" in (case.path_parameters or {}) and random.random() < 0.8:
                case.path_parameters["AccountSid"] = fuzz_tenant.sid
            # Never let the fuzzer lock its own credentials out (nor rotate its AuthToken away).
            if "/AuthTokens/" in case.path:
                return
            if case.method.upper() in ("POST", "PUT") and isinstance(case.body, dict):
                case.body.pop("Status", None)
                case.body.pop("Password", None)
            auth = (fuzz_tenant.sid, fuzz_tenant.token)
            if case.path.startswith("/restcomm/2012-04-24/Profiles"):
                # The SuperAdmin's resource: fuzzed as the SuperAdmin, or it never gets past the 403. Its
                # made-up SIDs and Link targets name nothing, so nothing other tests use is linked.
                auth = (server.admin_sid, server.admin_token)
            response = case.call(base_url=server.base_url, auth=auth, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r} -> "
                                f"{response.status_code}: {response.text[:300]}")
                return
            if response.status_code < 300 and response.content:
                case.validate_response(response, checks=[response_schema_conformance])

        run()
    assert operations > 10
    assert not failures, "\n".join(failures[:20])
