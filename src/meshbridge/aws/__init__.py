"""The AWS side: boto3 provisioning (``provision``). The local ALB + Lambda emulator is :mod:`meshbridge.alb`."""
