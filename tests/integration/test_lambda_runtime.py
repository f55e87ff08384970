"""Lambda execution environments with real awslambdaric processes: warm reuse, cold starts, timeouts,
crashes, init errors, throttling, the Runtime API contract, output capture, and process cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from meshbridge.alb.function import FunctionConfig, FunctionInitError
from meshbridge.alb.lambda_runtime import EnvironmentPool
from meshbridge.errors import LambdaError
from tests.integration.support import FAKE_RUNTIME, HANDLERS, children, doc, function, gone, invoke, run, wait_gone

pytestmark = pytest.mark.integration


# -- warm reuse and cold starts ------------------------------------------------------------------------


def test_module_globals_persist_across_warm_invokes() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            first, second, third = [await invoke(pool, {}) for _ in range(3)]
            assert [doc(i)["count"] for i in (first, second, third)] == [1, 2, 3]
            assert (first.cold, second.cold, third.cold) == (True, False, False)
            assert first.init_duration_ms is not None and first.init_duration_ms > 0
            assert second.init_duration_ms is None
            assert doc(first)["pid"] == doc(third)["pid"]
            assert pool.environments == 1

    run(scenario())


def test_globals_persist_after_a_function_error() -> None:
    """LDG/RIE: /error then /next is a normal invoke flow, no reset."""

    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            await invoke(pool, {})
            failed = await invoke(pool, {"raise": "bad thing"})
            assert (failed.outcome, failed.error_type, failed.error_message) == ("Unhandled", "ValueError", "bad thing")
            assert doc(failed)["stackTrace"]
            after = await invoke(pool, {})
            assert (doc(after)["count"], after.cold) == (3, False)

    run(scenario())


def test_a_deep_recursion_is_reported_as_the_functions_recursion_error() -> None:
    """awslambdaric posts the stack trace in a header (X-Ray error cause) far over aiohttp's 8 KiB default."""

    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            failed = await invoke(pool, {"recurse": True})
            assert (failed.outcome, failed.error_type) == ("Unhandled", "RecursionError"), failed
            after = await invoke(pool, {})  # negative twin: the environment lives on, warm
            assert after.cold is False and doc(after)["count"] == 2

    run(scenario())


def test_timeout_kills_and_resets_the_environment() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(timeout_s=0.5)) as pool:
            warm = await invoke(pool, {})
            old_pid = doc(warm)["pid"]
            timed_out = await invoke(pool, {"sleep": 30})
            assert (timed_out.outcome, timed_out.error_type) == ("Unhandled", "Sandbox.Timedout")
            assert doc(timed_out)["errorMessage"] == (
                f"RequestId: {timed_out.request_id} Error: Task timed out after 0.50 seconds"
            )
            assert f"{timed_out.request_id} Task timed out after 0.50 seconds" in timed_out.output
            assert await wait_gone(old_pid)
            after = await invoke(pool, {})
            assert after.cold and doc(after)["count"] == 1  # module globals were reset
            assert doc(after)["pid"] != old_pid
            assert pool.environments == 1

    run(scenario())


def test_invoke_within_the_timeout_twin_is_not_reset() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(timeout_s=5)) as pool:
            await invoke(pool, {})
            slow = await invoke(pool, {"sleep": 0.2})
            assert slow.outcome == "Success" and doc(slow)["count"] == 2 and not slow.cold

    run(scenario())


def test_suppressed_init_after_a_reset_counts_against_the_timeout() -> None:
    """Since 2024-10 the init that follows a reset runs inside the invoke's timeout (LDG lambda-runtime-environment);
    an on-demand init does not (its own 10 s limit)."""

    async def scenario() -> None:
        slow_init = function("slow_init.py:handler", timeout_s=0.6, environment={"INIT_SLEEP": "0.45"})
        async with EnvironmentPool(slow_init) as pool:
            fresh = await invoke(pool, {"sleep": 0.3})
            assert fresh.outcome == "Success" and fresh.cold and fresh.init_duration_ms is not None
            await pool.reset()
            suppressed = await invoke(pool, {"sleep": 0.3})
            assert suppressed.cold and suppressed.init_duration_ms is None
            assert suppressed.error_type == "Sandbox.Timedout"

    run(scenario())


def test_init_over_the_init_limit_is_retried_within_the_function_timeout() -> None:
    async def scenario() -> None:
        slow_init = function("slow_init.py:handler", timeout_s=5, init_timeout_s=0.5, environment={"INIT_SLEEP": "1.0"})
        async with EnvironmentPool(slow_init) as pool:
            retried = await invoke(pool, {})
            assert retried.outcome == "Success" and retried.cold
            assert retried.init_duration_ms is None  # the retry is a suppressed init, inside the invoke
            assert retried.output.count("init: sleeping") == 2  # the first init was cut, the retry finished

    run(scenario())


def test_init_over_the_init_limit_twin_fails_when_the_retry_exceeds_the_timeout() -> None:
    async def scenario() -> None:
        slow_init = function(
            "slow_init.py:handler", timeout_s=0.6, init_timeout_s=0.5, environment={"INIT_SLEEP": "1.0"}
        )
        async with EnvironmentPool(slow_init) as pool:
            assert (await invoke(pool, {})).error_type == "Sandbox.Timedout"

    run(scenario())


# -- crashes and init errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ({"exit": 3}, "exit status 3"),
        ({"signal": "SIGSEGV"}, "signal: segmentation fault"),
        ({"signal": "SIGKILL"}, "signal: killed"),
    ],
)
def test_runtime_exit_fails_the_invoke_and_resets(event: dict[str, object], status: str) -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            await invoke(pool, {})
            crashed = await invoke(pool, event)
            assert (crashed.outcome, crashed.error_type) == ("Unhandled", "Runtime.ExitError")
            assert doc(crashed)["errorMessage"] == (
                f"RequestId: {crashed.request_id} Error: Runtime exited with error: {status}"
            )
            after = await invoke(pool, {})
            assert after.cold and doc(after)["count"] == 1

    run(scenario())


def _write(tmp_path: Path, source: str) -> FunctionConfig:
    (tmp_path / "app.py").write_text(source)
    return FunctionConfig(handler="app.py:handler", task_root=tmp_path)


@pytest.mark.parametrize(
    ("source", "handler", "error_type"),
    [
        ("import no_such_module_xyz\n", "app.py:handler", "Runtime.ImportModuleError"),
        ("def other(e, c):\n    return 1\n", "app.py:handler", "Runtime.HandlerNotFound"),
        ("def handler(e, c)\n    return 1\n", "app.py:handler", "Runtime.UserCodeSyntaxError"),
        ("raise RuntimeError('config missing')\n", "app.py:handler", "RuntimeError"),
    ],
)
def test_init_error_fails_every_invoke_with_its_error_type(
    tmp_path: Path, source: str, handler: str, error_type: str
) -> None:
    async def scenario() -> None:
        (tmp_path / "app.py").write_text(source)
        async with EnvironmentPool(FunctionConfig(handler=handler, task_root=tmp_path, concurrency=1)) as pool:
            for _ in range(2):  # every invoke retries the init in a fresh runtime
                failed = await invoke(pool, {})
                assert (failed.outcome, failed.error_type, failed.cold) == ("Unhandled", error_type, True)
                assert doc(failed)["errorType"] == error_type
                assert "LAMBDA_WARNING: Unhandled exception" in failed.output
            assert pool.environments == 1 and pool.pids == []

    run(scenario())


def test_init_twin_a_valid_module_initializes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with EnvironmentPool(_write(tmp_path, "def handler(e, c):\n    return {'statusCode': 200}\n")) as pool:
            assert (await invoke(pool, {})).outcome == "Success"

    run(scenario())


def test_unserializable_return_value_is_a_marshal_error() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            failed = await invoke(pool, {"unserializable": True})
            assert (failed.outcome, failed.error_type) == ("Unhandled", "Runtime.MarshalError")
            assert not (await invoke(pool, {})).cold  # a function error: the environment stays warm

    run(scenario())


def test_response_over_6_mb_is_function_response_size_too_large_and_resets() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            big = await invoke(pool, {"size": 6_300_000})
            assert (big.outcome, big.error_type) == ("Unhandled", "Function.ResponseSizeTooLarge")
            assert "exceeded maximum allowed payload size (6291556 bytes)" in doc(big)["errorMessage"]
            after = await invoke(pool, {})
            assert after.cold and after.outcome == "Success"

    run(scenario())


def test_response_under_6_mb_twin_succeeds_warm() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            big = await invoke(pool, {"size": 6_000_000})
            assert big.outcome == "Success" and len(big.payload) > 6_000_000
            assert not (await invoke(pool, {})).cold

    run(scenario())


# -- one event per environment, reserved concurrency ----------------------------------------------------


def test_concurrent_invokes_run_in_separate_environments_and_beyond_the_limit_are_throttled() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(concurrency=2)) as pool:
            results = await asyncio.gather(*[invoke(pool, {"sleep": 0.5}) for _ in range(3)])
            done = [r for r in results if r.outcome == "Success"]
            throttled = [r for r in results if r.outcome == "Throttled"]
            assert len(done) == 2 and len(throttled) == 1
            assert {r.environment for r in done} == {0, 1}
            assert len({doc(r)["pid"] for r in done}) == 2
            assert throttled[0].error_type == "TooManyRequestsException"
            assert json.loads(throttled[0].payload)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
            assert pool.environments == 2

    run(scenario())


def test_sequential_invokes_twin_reuse_one_environment_and_are_never_throttled() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(concurrency=1)) as pool:
            results = [await invoke(pool, {}) for _ in range(5)]
            assert all(r.outcome == "Success" for r in results) and pool.environments == 1

    run(scenario())


def test_reserved_concurrency_zero_throttles_everything() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(concurrency=0)) as pool:
            assert (await invoke(pool, {})).outcome == "Throttled"
            assert pool.environments == 0 and pool.pids == []

    run(scenario())


# -- what the handler sees -------------------------------------------------------------------------------


def test_handler_runs_as_aws_starts_it() -> None:
    async def scenario() -> None:
        config = function(memory_mb=256, timeout_s=3, region="eu-west-1", environment={"GREETING": "hi"})
        trace = "Root=1-6750a1b2-0123456789abcdef01234567;Parent=1a2b3c4d5e6f7081;Sampled=0"
        async with EnvironmentPool(config) as pool:
            inv = await invoke(pool, {"say": "hello"}, trace_id=trace)
            seen = doc(inv)
        assert seen["event_type"] == "dict"  # /next sent exactly application/json (awslambdaric parses nothing else)
        assert seen["cwd"] == str(HANDLERS)
        ctx = seen["context"]
        assert ctx["aws_request_id"] == inv.request_id
        assert ctx["function_name"] == "behaviours"
        assert ctx["function_version"] == "$LATEST"
        assert ctx["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:012345678912:function:behaviours"
        assert ctx["memory_limit_in_mb"] == "256"
        assert ctx["log_group_name"] == "/aws/lambda/behaviours"
        assert "/[$LATEST]" in ctx["log_stream_name"]
        assert 0 < ctx["remaining_ms"] <= 3000
        env = seen["env"]
        assert env["_HANDLER"] == "behaviours.handler"
        assert env["_X_AMZN_TRACE_ID"] == trace
        assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
        assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS)
        assert (Path(env["LAMBDA_RUNTIME_DIR"]) / "awslambdaric" / "bootstrap.py").is_file()
        assert env["TZ"] == ":UTC" and env["GREETING"] == "hi"
        assert "AWS_ACCESS_KEY_ID" not in env  # nothing leaks from the emulator's own environment

    run(scenario())


def test_raw_bytes_returned_by_the_handler_are_the_payload() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            inv = await invoke(pool, {"bytes": "not json"})
            assert (inv.outcome, inv.payload) == ("Success", b"not json")

    run(scenario())


def test_output_is_captured_per_invocation() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            first = await invoke(pool, {"say": "one"})
            second = await invoke(pool, {"say": "two"})
            failed = await invoke(pool, {"raise": "bad"})
        assert first.output == "init: module imported\ninvoke 1: one\n"
        assert second.output == "invoke 2: two\n"
        assert failed.output.startswith("invoke 3: \n[ERROR] ValueError: bad\rTraceback")

    run(scenario())


def test_config_errors_are_lambda_errors() -> None:
    with pytest.raises(LambdaError, match="does not exist"):
        EnvironmentPool(function("missing.py:handler"))
    with pytest.raises(LambdaError, match=r"FILE\.py:FUNCTION"):
        FunctionConfig(handler="behaviours.handler")
    with pytest.raises(LambdaError, match="reserved Lambda variable"):
        function(environment={"AWS_REGION": "x"})
    with pytest.raises(LambdaError, match="out of range"):
        function(timeout_s=901)
    with pytest.raises(LambdaError, match="not running"):
        run(EnvironmentPool(function()).invoke(b"{}"))


# -- the start-up init check ---------------------------------------------------------------------------


def test_init_check_of_a_good_handler_leaves_the_first_invoke_a_cold_start() -> None:
    """The check's environment is killed: the first invoke still runs an on-demand init, as on AWS."""

    async def scenario() -> None:
        async with EnvironmentPool(function()) as pool:
            init_ms = await pool.check_init()
            assert init_ms is not None and init_ms > 0
            assert (pool.environments, pool.pids) == (0, [])
            first = await invoke(pool, {})
            assert first.cold and first.init_duration_ms is not None
            assert doc(first)["count"] == 1  # fresh module globals: not the checked process
            assert "init: module imported" in first.output  # its own init's output, once
            assert first.output.count("init: module imported") == 1

    run(scenario())


@pytest.mark.parametrize(
    ("source", "error_type", "message", "fix"),
    [
        (
            "def other(e, c):\n    return 1\n",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
            "define handler(event, context) in",
        ),
        (
            "def handler(e, c)\n    return 1\n",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app'",
            "correct the syntax",
        ),
        (
            "import no_such_module_xyz\n",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module_xyz'",
            "install the missing module",
        ),
        ("x = 1\nraise RuntimeError('config missing')\n", "RuntimeError", "config missing (at ", "app.py runs at"),
        ("import sys\nsys.exit(4)\n", "Runtime.ExitError", "Runtime exited with error: exit status 4", "sys.exit"),
    ],
)
def test_init_check_twin_a_handler_that_cannot_initialize_fails_with_its_error_type(
    tmp_path: Path, source: str, error_type: str, message: str, fix: str
) -> None:
    async def scenario() -> None:
        async with EnvironmentPool(_write(tmp_path, source)) as pool:
            with pytest.raises(FunctionInitError) as caught:
                await pool.check_init()
            assert (pool.environments, pool.pids, children(os.getpid())) == (0, [], [])
        error = caught.value
        assert (error.handler, error.error_type) == ("app.py:handler", error_type)
        line = str(error)
        assert "\n" not in line
        assert line.startswith(f"handler app.py:handler cannot initialize: {error_type}: ")
        assert message in line.partition(" Fix: ")[0] and fix in line.partition(" Fix: ")[2]

    run(scenario())


def test_init_check_waits_for_the_init_limit_not_only_the_function_timeout() -> None:
    """An on-demand init may take up to 10 s whatever the function timeout (LDG lambda-runtime-environment):
    an init longer than the timeout passes the check; one longer than both bounds fails as Sandbox.Timedout."""

    async def scenario() -> None:
        slow = function("slow_init.py:handler", timeout_s=0.1, init_timeout_s=2.0, environment={"INIT_SLEEP": "0.4"})
        async with EnvironmentPool(slow) as pool:
            assert (await pool.check_init() or 0) >= 400
        stuck = function("slow_init.py:handler", timeout_s=0.3, init_timeout_s=0.2, environment={"INIT_SLEEP": "30"})
        async with EnvironmentPool(stuck) as pool:
            started = time.monotonic()
            with pytest.raises(FunctionInitError, match=r"within 0\.3 s") as caught:
                await pool.check_init()
            assert time.monotonic() - started < 5
            assert caught.value.error_type == "Sandbox.Timedout" and "init: sleeping" in caught.value.output
            assert pool.pids == []

    run(scenario())


def test_init_check_starts_nothing_with_reserved_concurrency_zero_or_before_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        broken = _write(tmp_path, "import no_such_module_xyz\n")
        async with EnvironmentPool(FunctionConfig(handler="app.py:handler", task_root=tmp_path, concurrency=0)) as pool:
            assert await pool.check_init() is None  # no environment would ever run
        with pytest.raises(LambdaError, match="not running"):
            await EnvironmentPool(broken).check_init()

    run(scenario())


# -- the Runtime API at the HTTP level (a scripted runtime instead of awslambdaric) ----------------------


def test_runtime_api_contract_seen_by_a_scripted_runtime() -> None:
    async def scenario() -> None:
        config = function(timeout_s=3, environment={"FAKE_SCENARIO": "probe"})
        async with EnvironmentPool(config, runtime_command=[sys.executable, str(FAKE_RUNTIME)]) as pool:
            before = int(time.time() * 1000)
            first = await invoke(pool, {"n": 1}, trace_id="Root=1-6750a1b2-0123456789abcdef01234567")
            after = int(time.time() * 1000)
            second = await invoke(pool, {"n": 2})
            third = await invoke(pool, {"n": 3})
        seen = doc(first)
        headers = seen["next_headers"]
        assert headers["Content-Type"] == "application/json"  # exactly: awslambdaric parses nothing else
        assert headers["Lambda-Runtime-Aws-Request-Id"] == first.request_id
        assert headers["Lambda-Runtime-Invoked-Function-Arn"] == config.arn
        assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-6750a1b2-0123456789abcdef01234567"
        # the event was handed over between `before` and `after`; the deadline is that moment + the timeout
        assert before + 3000 - 1 <= int(headers["Lambda-Runtime-Deadline-Ms"]) <= after + 3000
        assert (seen["bogus"], seen["bogus_body"]["errorType"]) == (400, "InvalidRequestID")
        # an error posted with no Content-Type and no Lambda-Runtime-Function-Error-Type is accepted
        assert (second.outcome, second.error_type, second.error_message) == ("Unhandled", "Probe.Error", "boom")
        statuses = doc(third)
        assert (statuses["first"], statuses["error"]) == (202, 202)
        assert (statuses["again"], statuses["again_body"]["errorType"]) == (403, "InvalidStateTransition")

    run(scenario())


def test_init_error_without_content_type_gets_202_before_the_runtime_exits(tmp_path: Path) -> None:
    report = tmp_path / "status"

    async def scenario() -> None:
        config = function(environment={"FAKE_SCENARIO": "init-error", "FAKE_REPORT": str(report)})
        async with EnvironmentPool(config, runtime_command=[sys.executable, str(FAKE_RUNTIME)]) as pool:
            failed = await invoke(pool, {})
            assert (failed.outcome, failed.error_type, failed.error_message) == (
                "Unhandled",
                "Runtime.Scripted",
                "scripted",
            )
            assert pool.pids == []  # out of service at once, though it may still be exiting
            for _ in range(500):
                if report.exists() and report.read_text():
                    break
                await asyncio.sleep(0.01)
        assert report.read_text() == "202"

    run(scenario())


# -- no process left behind ------------------------------------------------------------------------------


def test_stop_kills_and_reaps_every_runtime() -> None:
    async def scenario() -> list[int]:
        async with EnvironmentPool(function(concurrency=3)) as pool:
            await asyncio.gather(*[invoke(pool, {"sleep": 0.2}) for _ in range(3)])
            pids = pool.pids
            assert len(pids) == 3 and not any(gone(p) for p in pids)
            busy = asyncio.ensure_future(invoke(pool, {"sleep": 30}))
            await asyncio.sleep(0.1)
        interrupted = await busy
        assert interrupted.error_type == "Runtime.ExitError"
        return pids

    pids = run(scenario())
    assert all(gone(p) for p in pids)


def test_reset_kills_the_handlers_own_children() -> None:
    async def scenario() -> None:
        async with EnvironmentPool(function(timeout_s=0.5)) as pool:
            spawned = doc(await invoke(pool, {"child": True}))
            assert not gone(spawned["child"])
            await invoke(pool, {"sleep": 30})  # times out: the whole process group is killed
            assert await wait_gone(spawned["child"]) and await wait_gone(spawned["pid"])

    run(scenario())


def test_stop_while_a_runtime_is_starting_starts_nothing() -> None:
    async def scenario() -> None:
        pool = EnvironmentPool(function())
        await pool.start()
        starting = asyncio.ensure_future(invoke(pool, {}))
        await asyncio.sleep(0)  # the invoke is now inside the spawn, awaiting its Runtime API endpoint
        await pool.stop()
        stopped = await starting
        assert (stopped.outcome, stopped.error_type) == ("Unhandled", "Runtime.InvalidEntrypoint")
        assert "stopped" in (stopped.error_message or "")
        assert pool.pids == []

    run(scenario())


# -- a new version of the code --------------------------------------------------------------------------------


def _redeploy(tmp_path: Path, source: str) -> None:
    """Write a new version of app.py, its modification time moved on (a same-second edit still counts by size)."""
    file = tmp_path / "app.py"
    before = file.stat().st_mtime_ns
    file.write_text(source)
    os.utime(file, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_a_changed_handler_file_is_a_new_deployment_its_next_invoke_a_cold_start(tmp_path: Path) -> None:
    """As after UpdateFunctionCode: the old code's environment takes no further invoke; the next one starts a
    fresh environment with an on-demand init of the new code."""

    async def scenario() -> None:
        config = _write(tmp_path, "import os\ndef handler(e, c):\n    return {'v': 1, 'pid': os.getpid()}\n")
        async with EnvironmentPool(config) as pool:
            first = await invoke(pool, {})
            old_pid = doc(first)["pid"]
            _redeploy(tmp_path, "import os\ndef handler(e, c):\n    return {'v': 2, 'pid': os.getpid()}\n")
            second = await invoke(pool, {})
            assert (doc(second)["v"], second.cold, second.init_duration_ms is not None) == (2, True, True)
            assert doc(second)["pid"] != old_pid
            assert await wait_gone(old_pid)  # the old code's runtime was stopped
            third = await invoke(pool, {})
            assert (doc(third)["v"], third.cold) == (2, False)  # the new environment is warm from then on

    run(scenario())


def test_negative_twin_an_unchanged_handler_file_keeps_its_warm_environment(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = _write(tmp_path, "import os\ndef handler(e, c):\n    return {'pid': os.getpid()}\n")
        async with EnvironmentPool(config) as pool:
            first, second = [await invoke(pool, {}) for _ in range(2)]
            (tmp_path / "other.py").write_text("x = 1\n")  # another file of the task root: not watched
            third = await invoke(pool, {})
            assert (first.cold, second.cold, third.cold) == (True, False, False)
            assert doc(first)["pid"] == doc(third)["pid"]

    run(scenario())


def test_an_invoke_in_flight_finishes_on_the_old_code_then_its_environment_stops(tmp_path: Path) -> None:
    async def scenario() -> None:
        slow = "import os, time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n"
        slow += "    return {'v': 1, 'pid': os.getpid()}\n"
        config = _write(tmp_path, slow)
        async with EnvironmentPool(config) as pool:
            await invoke(pool, {})
            busy = asyncio.ensure_future(invoke(pool, {"s": 0.5}))
            await asyncio.sleep(0.2)
            _redeploy(tmp_path, "def handler(e, c):\n    return {'v': 2}\n")
            fresh = await invoke(pool, {})
            old = await busy
            assert (doc(old)["v"], old.outcome) == (1, "Success")
            assert (doc(fresh)["v"], fresh.cold) == (2, True)
            assert await wait_gone(doc(old)["pid"])

    run(scenario())
