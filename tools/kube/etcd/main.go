// Command etcd is the etcd server, built from the go.etcd.io/etcd/server/v3 release pinned in ../go.mod.
// etcd's own main lives in its root module, whose go.mod resolves server/v3 with a relative replace line
// ('go install go.etcd.io/etcd/v3@v' fails), so this main calls the same entry point, etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
