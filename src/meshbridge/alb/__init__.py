"""The local Application Load Balancer with a Lambda function as its target, on real ``awslambdaric`` processes.

:mod:`~meshbridge.alb.contract` is the ALB ↔ Lambda contract (pure: the event, the response rules, the ALB's
own error responses); :mod:`~meshbridge.alb.function` the function and what an invoke returns;
:mod:`~meshbridge.alb.lambda_runtime` schedules invocations on the function's execution environments, whose
processes are :mod:`~meshbridge.alb.runtime_process` and whose Runtime API is :mod:`~meshbridge.alb.runtime_api`;
:mod:`~meshbridge.alb.server` is the ALB (listeners → target group), used by
``meshbridge lambda serve`` and run by the local twin as ``python -m meshbridge.alb.server``. What differs
from AWS is listed in ``docs/alb-lambda.md``. Provisioning the real ALB and Lambda is :mod:`meshbridge.aws`.
"""
