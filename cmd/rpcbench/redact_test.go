package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// TestRedaction runs against a NATS server that needs a password, given in
// the --broker URL, and finds the password in no artifact and no output:
// the URL is recorded as nats://user:***@host:port. A second run with a
// wrong password fails its cells, and their errors do not quote it either.
func TestRedaction(t *testing.T) {
	const user, pass, wrong = "bench", "s3cretPassw0rd", "wr0ngPassw0rd"
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
		Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	addr := ns.Addr().String()
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{{"right password", pass, true}, {"wrong password", wrong, false}} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			url := fmt.Sprintf("nats://%s:%s@%s", user, tc.password, addr)
			r := runBin(t, "run", "--drivers", "nats:core", "--broker", "nats="+url, "--duration", "300ms", "--warmup", "100ms",
				"--settle", "0s", "--concurrency", "1", "--out", out)
			if tc.ok && r.code != 0 || !tc.ok && r.code == 0 {
				t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			for what, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if strings.Contains(text, tc.password) {
					t.Errorf("the password is in %s:\n%s", what, text)
				}
			}
			var files []string
			filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) < 3 {
				t.Fatalf("artifacts: %v, want result.json, report.html, summary.md", files)
			}
			for _, p := range files {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(data), tc.password) {
					t.Errorf("the password is in %s", p)
				}
			}
			run := driverstest.ReadResults(t, out)
			want := fmt.Sprintf("nats://%s:***@%s", user, addr)
			if b := run.Environment.Brokers; len(b) != 1 || b[0].URL != want {
				t.Errorf("brokers %+v, want the URL recorded as %s", b, want)
			}
			if tc.ok {
				if c := run.Cells; len(c) != 1 || c[0].Counts.OK == 0 {
					t.Errorf("cells %+v", c)
				}
			}
		})
	}
}
