"""What 'translate --against-istiod' says when istiod's harness refuses the input: every error it lists."""

from __future__ import annotations

from meshbridge.istiod.oracle import _refusal

REFUSED = """2026-12-07T07:00:00Z info some log line
istio-oracle: istiod refused the configuration: configuration is invalid: 2 errors occurred:
	* host must be wildcarded for resolution mode DYNAMIC_DNS
	* only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS

"""


def test_every_error_of_a_refusal_is_said() -> None:
    assert _refusal(REFUSED) == (
        "istiod refused the configuration: configuration is invalid: 2 errors occurred: * host must be wildcarded "
        "for resolution mode DYNAMIC_DNS * only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution "
        "type DYNAMIC_DNS"
    )


def test_negative_twin_a_crash_without_the_harness_line_gives_stderrs_last_line() -> None:
    assert _refusal("panic: runtime error\ngoroutine 1 [running]:\nmain.main()\n") == "main.main()"
    assert _refusal("") == ""
