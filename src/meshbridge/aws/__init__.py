"""The AWS side: the local ALB + Lambda emulator (``alb``, ``lambda_runtime``) and boto3 provisioning."""
