#!/bin/sh
# Istio 1.17.2 for mesh gke with Helm, rendered by meshbridge: the base chart, istiod,
# then the gateways. Arguments go to every helm command, e.g.: sh install.sh --kube-context <context>
set -eu
cd "$(dirname "$0")"
helm repo add istio https://blob.istio.io/istio-release/charts --force-update
helm upgrade --install istio-base istio/base --version 1.17.2 --namespace istio-system --create-namespace --values values-base.yaml --wait "$@"
helm upgrade --install istiod-1-17 istio/istiod --version 1.17.2 --namespace istio-system --create-namespace --values values-istiod.yaml --wait "$@"
helm upgrade --install istio-egressgateway istio/gateway --version 1.17.2 --namespace istio-egress --create-namespace --values values-gateway-istio-egress-istio-egressgateway.yaml "$@"
