"""helloworld's answer, as Istio's sample serves it, with the Host header the backend received."""


def hello(event, context):
    host = (event.get("headers") or {}).get("host", "")
    return {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "isBase64Encoded": False,
        "headers": {"Content-Type": "text/plain"},
        "body": f"Hello version: v1, instance: helloworld-v1 (Host: {host})\n",
    }
