"""The article's handler, timed from inside: it adds ``x-handler-ns`` (its own run time, in ns) so the
benchmark can subtract the handler's time from the round trip."""

import importlib.util
import os
import time

_path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "seed", "handler.py")
_spec = importlib.util.spec_from_file_location("seed_handler", _path)
_seed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_seed)


def lambda_handler(event, context):
    started = time.perf_counter_ns()
    response = _seed.lambda_handler(event, context)
    response["headers"] = {**response["headers"], "x-handler-ns": str(time.perf_counter_ns() - started)}
    return response
