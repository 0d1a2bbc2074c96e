#!/usr/bin/env python3
"""Check Athanor's MCP server end to end with the official Python SDK (PyPI `mcp` 2.x).

Usage: check_mcp.py URL        e.g. check_mcp.py http://127.0.0.1:3000/mcp

What an agent would do, asserting every answer on the way: list the tools (all sixteen, each with a description
and an object input schema), list the modules, create an experiment with a bad configuration (a tool error naming
the field), create a valid one, start a run, wait until it completed, read its log tail, its result summary and one
key's values, edit the experiment, cancel a long run, list and compare runs. Then the same server through the
2026-07-28 `server/discover` path, which has no handshake.

Prints one line per step and exits 0 when everything held, 1 (with the reason) on the first failure. The whole
check is bounded in time, so a server that stops answering fails it instead of hanging it.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOLS = {
    "list_experiments",
    "get_experiment",
    "create_experiment",
    "update_experiment",
    "list_available_modules",
    "get_config_schema",
    "validate_config",
    "list_runs",
    "get_run",
    "start_run",
    "cancel_run",
    "get_run_logs",
    "list_results",
    "get_result_details",
    "wait_for_run",
    "compare_runs",
}

# A fast demo: five simulated epochs without the per-epoch pause; it logs at every level and records a loss and an
# accuracy series plus final scalars.
MODULE = "training_curve"
EPOCHS = 5
TIME_LIMIT_S = 120


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def step(message):
    print(f"ok   {message}", flush=True)


def payload(result):
    """The JSON a tool answered: the text block, which must agree with the structured content when there is one."""
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    check(texts, f"answer has no text block: {result}")
    value = json.loads(texts[0])
    if result.structured_content is not None:
        check(result.structured_content == value, "structured content and text block differ")
    return value


async def call(session, tool, arguments=None):
    """A tool call that must succeed; answers its JSON."""
    result = await session.call_tool(tool, arguments or {})
    check(not result.is_error, f"{tool} failed: {result.content[0].text if result.content else result}")
    return payload(result)


async def refused(session, tool, arguments):
    """A tool call that must be a tool error (isError, not a protocol error); answers its ErrorBody."""
    result = await session.call_tool(tool, arguments)
    check(result.is_error, f"{tool} with {arguments} should have been refused, answered {payload(result)}")
    body = payload(result)
    check({"code", "message"} <= body.keys(), f"{tool}: error is not an ErrorBody: {body}")
    return body


def field_paths(body):
    return [field["path"] for field in body.get("fields", [])]


def connect(url):
    """The streamable HTTP transport, with `Authorization: Bearer $ATHANOR_TOKEN` when the variable is set (a server
    on a non-loopback address answers nothing without it)."""
    token = os.environ.get("ATHANOR_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))


async def handshake_session(url):
    """The full flow over a session opened with `initialize` (protocol versions up to 2025-11-25)."""
    async with connect(url) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            step(f"initialize: {init.server_info.name} {init.server_info.version}, protocol {init.protocol_version}")

            tools = (await session.list_tools()).tools
            names = {tool.name for tool in tools}
            check(TOOLS <= names, f"missing tools: {sorted(TOOLS - names)}")
            for tool in tools:
                check(tool.description and len(tool.description) > 40, f"{tool.name} has no useful description")
                check(tool.input_schema.get("type") == "object", f"{tool.name}: input schema is not an object")
            logs_schema = next(tool for tool in tools if tool.name == "get_run_logs").input_schema
            check("run_id" in logs_schema.get("required", []), f"get_run_logs schema: {logs_schema}")
            check(logs_schema["properties"]["level"].get("enum"), "get_run_logs: level lists no values")
            step(f"list_tools: {len(tools)} tools, each with a description and an object input schema")

            modules = (await call(session, "list_available_modules"))["modules"]
            check(any(m["name"] == MODULE for m in modules), f"{MODULE} not among {[m['name'] for m in modules]}")
            check(all("schema" not in m for m in modules), "list_available_modules should not carry whole schemas")
            step(f"list_available_modules: {len(modules)} modules")

            schema = await call(session, "get_config_schema", {"experiment_module": MODULE})
            fields = [field["name"] for field in schema["schema"]["fields"]]
            check("epochs" in fields and "epochs" in schema["defaults"], f"schema fields: {fields}")
            step(f"get_config_schema: fields {', '.join(fields)}")

            bad = await refused(
                session,
                "create_experiment",
                {"experiment_module": MODULE, "name": "too long", "configuration": {"epochs": 0, "epoch": 3}},
            )
            check(bad["code"] == "invalid_input", f"bad configuration: {bad}")
            check("configuration.epochs" in field_paths(bad), f"no error for configuration.epochs: {bad}")
            check("configuration.epoch" in field_paths(bad), f"the misspelt field is not refused: {bad}")
            step(f"create_experiment with a bad configuration: refused, fields {field_paths(bad)}")

            missing = await refused(session, "create_experiment", {"experiment_module": MODULE})
            check("name" in field_paths(missing), f"missing argument not named: {missing}")
            bad_id = await refused(session, "get_run", {"id": "not-a-uuid"})
            check(field_paths(bad_id) == ["id"], f"malformed id not named: {bad_id}")
            unknown = await refused(session, "get_run", {"id": "0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11"})
            check(unknown["code"] == "not_found", f"unknown run: {unknown}")
            step("missing argument, malformed id and unknown run: refused as tool errors naming the problem")

            checked = await call(
                session, "validate_config", {"experiment_module": MODULE, "configuration": {"epochs": 100000}}
            )
            check(checked["valid"] is False and field_paths(checked) == ["configuration.epochs"], f"{checked}")
            step("validate_config: out-of-range epochs reported without saving")

            instance = await call(
                session,
                "create_experiment",
                {
                    "experiment_module": MODULE,
                    "name": "MCP check",
                    "description": "created by clients/mcp/check_mcp.py",
                    "configuration": {"epochs": EPOCHS, "epoch_ms": 0},
                },
            )
            check(instance["config"]["epochs"] == EPOCHS and "learning_rate" in instance["config"], f"{instance}")
            step(f"create_experiment: {instance['id']} (defaults filled in)")

            run = await call(session, "start_run", {"instance_id": instance["id"]})
            check(run["status"] in ("pending", "running"), f"new run: {run}")
            step(f"start_run: {run['id']} {run['status']}")

            waited = {"ended": False}
            for _ in range(10):
                waited = await call(session, "wait_for_run", {"id": run["id"], "timeout_s": 10})
                if waited["ended"]:
                    break
            check(waited["ended"], "the run did not end")
            check(waited["run"]["status"] == "completed", f"run ended {waited['run']['status']}: {waited['run']}")
            step("wait_for_run: completed")

            logs = await call(session, "get_run_logs", {"run_id": run["id"], "limit": 3})
            check(1 <= len(logs["lines"]) <= 3, f"log tail: {logs}")
            seqs = [line["seq"] for line in logs["lines"]]
            check(seqs == sorted(seqs), f"log tail not oldest first: {seqs}")
            warnings = await call(session, "get_run_logs", {"run_id": run["id"], "level": "info"})
            check(all(line["level"] == "info" for line in warnings["lines"]), "level filter not applied")
            step(f"get_run_logs: last {len(logs['lines'])} lines, e.g. {logs['lines'][-1]['message']!r}")

            results = await call(session, "list_results", {"run_id": run["id"]})
            series = {s["name"]: s for s in results["series"]}
            check("loss" in series and series["loss"]["points"] == EPOCHS, f"series: {results['series']}")
            check(series["loss"]["last_step"] == EPOCHS, f"loss series: {series['loss']}")
            check(any(k["key"] == "loss" for k in results["keys"]), f"keys: {results['keys']}")
            step(
                f"list_results: {results['total_values']} values, keys "
                f"{[k['key'] for k in results['keys']]}, series {list(series)}"
            )

            details = await call(session, "get_result_details", {"run_id": run["id"], "key": "loss"})
            steps = [point["step"] for point in details["series"]]
            check(steps == list(range(1, EPOCHS + 1)), f"loss points: {details['series']}")
            check(len(details["values"]) == 1, f"final loss: {details['values']}")
            step(f"get_result_details: loss has {len(steps)} points and a final value {details['values'][0]['value']}")

            no_key = await refused(session, "get_result_details", {"run_id": run["id"], "key": "no such key"})
            check(no_key["code"] == "not_found", f"unknown key: {no_key}")

            renamed = await call(session, "update_experiment", {"id": instance["id"], "name": "MCP check (renamed)"})
            check(renamed["name"] == "MCP check (renamed)" and renamed["config"] == instance["config"], f"{renamed}")
            bad_edit = await refused(
                session, "update_experiment", {"id": instance["id"], "configuration": {"epochs": 0}}
            )
            check(field_paths(bad_edit) == ["configuration.epochs"], f"bad edit: {bad_edit}")
            saved = await call(session, "get_experiment", {"id": instance["id"]})
            check(saved["instance"]["name"] == "MCP check (renamed)", f"edit not kept: {saved['instance']}")
            check(saved["experiment"]["name"] == MODULE, f"module: {saved['experiment']}")
            check([r["id"] for r in saved["runs"]] == [run["id"]], f"runs: {saved['runs']}")
            step("update_experiment and get_experiment: renamed, a bad edit refused and nothing else changed")

            sleeper = await call(
                session,
                "create_experiment",
                {"experiment_module": "sleeper", "name": "MCP check cancel", "configuration": {"seconds": 600}},
            )
            long_run = await call(session, "start_run", {"instance_id": sleeper["id"]})
            await call(session, "cancel_run", {"id": long_run["id"]})
            stopped = await call(session, "wait_for_run", {"id": long_run["id"], "timeout_s": 30})
            check(stopped["ended"] and stopped["run"]["status"] == "cancelled", f"cancelled run: {stopped}")
            again = await refused(session, "cancel_run", {"id": long_run["id"]})
            check(again["code"] == "conflict", f"second cancel: {again}")
            step("cancel_run: a ten-minute run ended cancelled; cancelling it again is a conflict")

            listed = await call(session, "list_runs", {"instance_id": instance["id"], "status": "completed"})
            check([r["run"]["id"] for r in listed["runs"]] == [run["id"]], f"list_runs: {listed}")
            compared = await call(session, "compare_runs", {"run_ids": [run["id"]]})
            check(compared["runs"][0]["id"] == run["id"], f"compare_runs: {compared['runs']}")
            step("list_runs and compare_runs: the run is there")


async def discover_session(url):
    """The same server through `server/discover` (2026-07-28, no handshake, no session)."""
    async with connect(url) as (read, write):
        async with ClientSession(read, write) as session:
            found = await session.discover()
            step(f"discover: versions {found.supported_versions}")
            names = {tool.name for tool in (await session.list_tools()).tools}
            check(TOOLS <= names, f"missing tools after discover: {sorted(TOOLS - names)}")
            experiments = (await call(session, "list_experiments"))["experiments"]
            names = [e["instance"]["name"] for e in experiments]
            check("MCP check (renamed)" in names, f"created experiment not listed: {names}")
            step(f"list_experiments after discover: {len(experiments)} experiments")


def reason(error):
    """The innermost error: the SDK's task groups wrap a refused connection in exception groups."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, CheckFailed):
        return str(error)
    return f"{type(error).__name__}: {error}"


async def main(url):
    with anyio.fail_after(TIME_LIMIT_S):
        await handshake_session(url)
        await discover_session(url)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    try:
        anyio.run(main, sys.argv[1])
    except Exception as error:  # a failed check, a protocol error, a refused connection, a timeout
        print(f"FAIL {reason(error)}", file=sys.stderr)
        sys.exit(1)
    print("MCP check passed")
