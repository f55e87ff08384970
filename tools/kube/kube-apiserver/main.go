// Command kube-apiserver is Kubernetes' API server, built from the k8s.io/kubernetes release pinned in
// ../go.mod. It is the upstream command (cmd/kube-apiserver) behind a main of ours: nothing is copied or
// changed; the build sets the version variables as Kubernetes' release build does (hack/lib/version.sh).
package main

import (
	"os"
	_ "time/tzdata" // as upstream's main: time zones for CronJob without a system tzdata

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream registers it
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream registers them
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream registers it
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
