"""Provisioning the AWS side with boto3: the Lambda function, its internal ALB, target group and listeners.

This is step 1 of the seed article, automated (``meshbridge aws deploy|destroy|status``). The layers, from
pure to I/O::

    state      value types: names and tags, desired and observed resources          (pure)
    desired    spec → desired state                                                 (pure)
    package    handler file → checked (ast, never imported) → reproducible zip      (local files)
    plan       desired + observed → ordered actions (create/update/keep/delete/skip) (pure)
    session    boto3 session from the standard AWS configuration; botocore errors → AwsError
    observe    Describe/Get/List calls → observed state                             (AWS, read-only)
    execute    runs a plan with boto3 and botocore waiters                          (AWS)
    workflow   deploy / destroy / status
    writeback  the ALB's DNS name → the bridge file's backend.host (comments kept)

Every resource meshbridge creates carries the tags ``app.kubernetes.io/managed-by=meshbridge``,
``meshbridge.io/bridge=<bridge>`` and ``meshbridge.io/export=<export>`` (the Lambda permission, which
cannot carry tags, is recognised by its statement id). ``destroy`` deletes only those. Every public call
raises only :class:`~meshbridge.errors.AwsError` (or ``SpecError`` from loading the spec).
"""

from meshbridge.aws.provision.execute import Waits
from meshbridge.aws.provision.plan import Action, Plan, plan_deploy, plan_destroy
from meshbridge.aws.provision.session import AwsTarget, connect
from meshbridge.aws.provision.workflow import Identity, Report, Status, deploy, destroy, identity, status
from meshbridge.aws.provision.writeback import write_backend_host

__all__ = [
    "Action",
    "AwsTarget",
    "Identity",
    "Plan",
    "Report",
    "Status",
    "Waits",
    "connect",
    "deploy",
    "destroy",
    "identity",
    "plan_deploy",
    "plan_destroy",
    "status",
    "write_backend_host",
]
