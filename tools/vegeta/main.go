// An open-loop, constant-rate HTTP load generator for meshbridge's benchmarks (benchmarks/vegeta.py builds
// this module through src/meshbridge/gotools.py and caches it by its hash; 'make vegeta').
//
// The attack is vegeta's own (github.com/tsenart/vegeta/v12/lib: a constant pacer, workers added whenever
// all are busy, pooled keep-alive connections); this program only sets it up from flags and prints one JSON
// object: every successful request's latency measured from its intended send time (the pacer sends hit n at
// start + (n+1) / rate), so a request the generator itself sent late counts its wait (coordinated omission
// corrected); the errors by kind; and the generator's own CPU time and context switches during the attack
// (its start-up, a few ms, is not counted).
//
// It runs on one P (-procs 1, GOMAXPROCS): what a generator costs per request on a small VM is mostly the Go
// scheduler waking threads (measured with perf stat at 200 rps: 20 context switches per request with 2 Ps, 10
// with 1), not the HTTP work; one P sends over 5000 requests per second.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type report struct {
	Sent        int            `json:"sent"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`
	Seconds     float64        `json:"seconds"`
	LatenciesMs []float64      `json:"latencies_ms"`
	CPUSeconds  float64        `json:"cpu_seconds"`
	Switches    int64          `json:"context_switches"`
}

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "the URL to send GET requests to")
	rate := flag.Int("rate", 100, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	connections := flag.Int("connections", 16, "at most this many connections (and idle ones kept)")
	cacert := flag.String("cacert", "", "PEM file of the CA that signed the server's certificate (HTTPS)")
	serverName := flag.String("servername", "", "the TLS server name (SNI) to send and verify")
	expect := flag.Int("expect", 200, "the status that counts as a success")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	procs := flag.Int("procs", 1, "Go Ps (GOMAXPROCS) the generator runs on")
	var hdrs headers
	flag.Var(&hdrs, "header", "'Name: value' to send (repeatable; Host sets the authority)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if *url == "" {
		fmt.Fprintln(os.Stderr, "vegeta-bench: -url is required")
		os.Exit(2)
	}
	tlsConfig, err := clientTLS(*cacert, *serverName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vegeta-bench: %v\n", err)
		os.Exit(2)
	}
	header := http.Header{}
	for _, h := range hdrs {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "vegeta-bench: header %q is not 'Name: value'\n", h)
			os.Exit(2)
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	attacker := vegeta.NewAttacker(
		vegeta.TLSConfig(tlsConfig),
		vegeta.Connections(*connections),
		vegeta.MaxConnections(*connections),
		vegeta.Timeout(*timeout),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.KeepAlive(true),
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: *url, Header: header})
	out := report{Errors: map[string]int{}, LatenciesMs: []float64{}}
	pacer := vegeta.ConstantPacer{Freq: *rate, Per: time.Second}
	interval := time.Second / time.Duration(pacer.Freq) // the pacer sends hit n at (n+1) intervals from the start
	before := usage()
	began := time.Now()
	for res := range attacker.Attack(targeter, pacer, *duration, "") {
		out.Sent++
		switch {
		case res.Error != "" && res.Code == 0:
			out.Errors[errorKind(res.Error)]++
		case int(res.Code) != *expect:
			out.Errors[fmt.Sprintf("HTTP %d", res.Code)]++
		default:
			out.OK++
			intended := began.Add(time.Duration(res.Seq+1) * interval)
			done := res.Timestamp.Add(res.Latency)
			out.LatenciesMs = append(out.LatenciesMs, float64(done.Sub(intended))/float64(time.Millisecond))
		}
	}
	out.Seconds = time.Since(began).Seconds()
	after := usage()
	out.CPUSeconds = float64(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / 1e9
	out.Switches = after.Nvcsw + after.Nivcsw - before.Nvcsw - before.Nivcsw
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "vegeta-bench: %v\n", err)
		os.Exit(1)
	}
}

// usage is the process's resource usage so far (every thread's); zero when the kernel refuses.
func usage() syscall.Rusage {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return u
}

// clientTLS trusts cacert (when given, else the system's roots) and sends serverName as SNI.
func clientTLS(cacert, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cacert == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(cacert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", cacert)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// errorKind is an error's text without what varies per request (addresses, ports), to count alike errors once.
func errorKind(text string) string {
	if i := strings.LastIndex(text, ": "); i >= 0 {
		return text[i+2:]
	}
	return text
}
