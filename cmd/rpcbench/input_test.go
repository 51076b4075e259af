package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/results"
)

// wantBadInput checks that r is bad input: exit 2, one line on stderr
// containing want, and (when out is not "") nothing at out.
func wantBadInput(t *testing.T, r result, want, out string) {
	t.Helper()
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("stderr %q\nwant one line containing %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Fatalf("a panic, not a message: %s", r.stderr)
	}
	if out != "" {
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("bad input wrote %s", out)
		}
	}
}

// TestBadRunInput: every flag out of range, a flag given as 0 or empty, a
// broker URL or --target malformed for its kind, and a scenario that
// repeats itself is refused before anything is written.
func TestBadRunInput(t *testing.T) {
	dir := t.TempDir()
	scenario := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const tail = "payloads: [64]\nconcurrency: [1]\n"
	twice := scenario("twice.yaml", "name: x\ndrivers:\n  - tcp\n  - tcp\n"+tail)
	dupKey := scenario("dupkey.yaml", "name: x\ndrivers:\n  - name: grpc\n    variants: [unary]\n    variants: [stream]\n"+tail)
	dupOpt := scenario("dupopt.yaml", "name: x\ndrivers:\n  - name: tcp\n    options: {connections: 1, connections: 4}\n"+tail)
	secondDoc := scenario("docs.yaml", "name: x\ndrivers: [tcp]\n"+tail+"---\nname: y\n")
	// connections=2 is tcp's default: the same cells as plain tcp
	sameEffective := scenario("effective.yaml", "name: x\ndrivers:\n  - tcp\n  - name: tcp\n    options: {connections: \"02\"}\n"+tail)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--repeat", "0"}, "--repeat: 0: want 1 to 100"},
		{[]string{"--repeat", "101"}, "--repeat: 101: want 1 to 100"},
		{[]string{"--calls", "0"}, "--calls: 0: want 1 to 2147483647"},
		{[]string{"--calls", "-5"}, "--calls: -5: want 1 to"},
		{[]string{"--responder-concurrency", "0"}, "--responder-concurrency: 0: want 1 to 4096"},
		{[]string{"--responder-concurrency", "5000"}, "--responder-concurrency: 5000: want 1 to 4096"},
		{[]string{"--duration", ""}, `--duration: "": want a duration from 1ms to 24h`},
		{[]string{"--duration", "0s"}, `--duration: "0s": want a duration from 1ms to 24h`},
		{[]string{"--duration", "25h"}, `--duration: "25h"`},
		{[]string{"--warmup", "-1s"}, `--warmup: "-1s": want a duration from 0s to 1h`},
		{[]string{"--warmup", "2h"}, `--warmup: "2h"`},
		{[]string{"--broker-warmup", "2h"}, `--broker-warmup: "2h": want a duration from 0s to 1h`},
		{[]string{"--timeout", "0s"}, `--timeout: "0s": want a duration from 1ms to 10m`},
		{[]string{"--timeout", "11m"}, `--timeout: "11m"`},
		{[]string{"--concurrency", "0"}, `--concurrency: "0": want whole numbers from 1 to 4096`},
		{[]string{"--concurrency", "4097"}, `--concurrency: "4097"`},
		{[]string{"--concurrency", ""}, `--concurrency: "": want whole numbers`},
		{[]string{"--concurrency", "1,1"}, `--concurrency: "1,1": 1 is given twice`},
		{[]string{"--rate", "0"}, `--rate: "0": want calls per second from 0.001`},
		{[]string{"--rate", "20000000"}, `--rate: "20000000"`},
		{[]string{"--payload", "65MiB"}, `--payload: "65MiB" is not a payload size`},
		{[]string{"--payload", "1KiB,1024"}, `--payload: "1KiB,1024": 1024 bytes is given twice`},
		{[]string{"--service-time", "2m"}, `--service-time: "2m" is not a service time`},
		{[]string{"--service-time", "1s", "--timeout", "500ms"}, "--service-time: service time 1s is not below the timeout 500ms"},
		{[]string{"--drivers", ""}, `--drivers: "": want a comma-separated list`},
		{[]string{"--drivers", "tcp,tcp"}, `--drivers: "tcp,tcp": tcp is given twice`},
		{[]string{"--drivers", "grpc,grpc:unary"}, `grpc:unary is given twice`},
		{[]string{"--broker", "rabbitmq=http://guest:s3cret@127.0.0.1:15672/"}, `--broker rabbitmq=http://guest:***@127.0.0.1:15672/: scheme "http" is not amqp or amqps: want amqp://`},
		{[]string{"--broker", "rocketmq=nohostport"}, "--broker rocketmq=nohostport: no port: want NAMESRV_HOST:PORT"},
		{[]string{"--broker", "nats=::::"}, "--broker nats=::::: not HOST:PORT"},
		{[]string{"--broker", "nats=nats://127.0.0.1:4222", "--broker", "nats=nats://127.0.0.1:4223"}, "a second nats broker"},
		{[]string{"--drivers", "tcp", "--responder", "thread"}, `--responder "thread": want process or in-process`},
		{[]string{"--drivers", "tcp", "--target", "nohostport"}, `--target nohostport: tcp: no port`},
		{[]string{"--drivers", "grpc", "--target", "127.0.0.1:70000"}, `--target 127.0.0.1:70000: grpc: port "70000": want a number from 1 to 65535`},
		{[]string{"--drivers", "tcp", "--target", "::::"}, `--target ::::: tcp: not HOST:PORT`},
		{[]string{"--drivers", "nats", "--target", "http://127.0.0.1:4222"}, `--target http://127.0.0.1:4222: scheme "http" is not a NATS scheme`},
		{[]string{"--drivers", "nats", "--target", "nats://127.0.0.1:4222"}, "--target nats://127.0.0.1:4222: nats: want <broker URL>#<request subject>"},
		{[]string{"--drivers", "rabbitmq:reply-queue/transient", "--target", "amqp://127.0.0.1:5672/"}, "--target amqp://127.0.0.1:5672/: rabbitmq: want <amqp URL>#<request queue>"},
		{[]string{"--scenario", twice}, twice + ":4: drivers[1]: driver tcp is already listed at line 3"},
		{[]string{"--scenario", dupKey}, dupKey + ":5: drivers[0].variants: given twice in this driver entry"},
		{[]string{"--scenario", dupOpt}, dupOpt + ":4: drivers[0].options.connections: given twice"},
		{[]string{"--scenario", secondDoc}, secondDoc + ":6: a second YAML document"},
		{[]string{"--scenario", sameEffective}, sameEffective + ":4: drivers[1]: tcp/mux with options connections=2 is already listed at line 3 (drivers[0])"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(dir, "out")
			r := runBin(t, append([]string{"run", "--out", out}, tc.args...)...)
			wantBadInput(t, r, tc.want, out)
			if strings.Contains(r.stderr, "s3cret") {
				t.Fatalf("the password is in the message: %s", r.stderr)
			}
		})
	}
}

// shortRun runs tcp briefly into out and returns its result.json.
func shortRun(t *testing.T, out string, extra ...string) string {
	t.Helper()
	args := append([]string{"run", "--drivers", "tcp", "--concurrency", "1", "--duration", "200ms", "--warmup", "50ms", "--settle", "0s", "--out", out, "-q"}, extra...)
	r := runBin(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return driverstest.ResultsFile(t, out)
}

// TestBadResultFiles: report, compare and export refuse a damaged result
// (exit 2, one line naming the file, the field and what would fix it), never
// panic, and write nothing.
func TestBadResultFiles(t *testing.T) {
	dir := t.TempDir()
	good := shortRun(t, filepath.Join(dir, "good"))
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(name string, f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	hist := func(m map[string]any) map[string]any {
		return m["cells"].([]any)[0].(map[string]any)["histograms"].(map[string]any)
	}
	truncated := edit("truncated-hist.json", func(m map[string]any) {
		h := hist(m)["corrected"].(string)
		hist(m)["corrected"] = h[:len(h)/2-len(h)/2%4]
	})
	corrupt := edit("corrupt-hist.json", func(m map[string]any) {
		b := []byte(hist(m)["uncorrected"].(string))
		for i := 16; i < len(b)-4; i += 2 {
			b[i] = 'Q'
		}
		hist(m)["uncorrected"] = string(b)
	})
	schema := edit("schema.json", func(m map[string]any) {
		delete(m["cells"].([]any)[0].(map[string]any), "counts")
	})
	badType := edit("type.json", func(m map[string]any) {
		m["cells"].([]any)[0].(map[string]any)["throughput"] = "fast"
	})
	version := edit("v99.json", func(m map[string]any) { m["schema_version"] = 99 })
	cut := filepath.Join(dir, "cut.json")
	os.WriteFile(cut, data[:len(data)/2], 0o644)

	for _, tc := range []struct{ file, want string }{
		{truncated, truncated + ": cells[0].histograms.corrected: cell tcp/mux"},
		{corrupt, corrupt + ": cells[0].histograms.uncorrected: cell tcp/mux"},
		{schema, schema + ": cells[0]: missing property 'counts'"},
		{badType, badType + ": cells[0].throughput: got string, want number"},
		{version, version + ": schema_version 99, but this rpcbench reads version 2"},
		{cut, cut + ": not JSON"},
	} {
		for _, cmd := range [][]string{
			{"report", tc.file, "-o", filepath.Join(dir, "out.html")},
			{"report", good, tc.file, "-o", filepath.Join(dir, "out.md")},
			{"compare", good, tc.file},
			{"compare", tc.file, good},
			{"export", "--format", "benchfmt", tc.file, "-o", filepath.Join(dir, "out.txt")},
		} {
			t.Run(filepath.Base(tc.file)+" "+cmd[0], func(t *testing.T) {
				r := runBin(t, cmd...)
				out := ""
				if cmd[len(cmd)-2] == "-o" {
					out = cmd[len(cmd)-1]
				}
				wantBadInput(t, r, tc.want, out)
				if r.stdout != "" {
					t.Fatalf("bad input printed %q", r.stdout)
				}
			})
		}
	}
}

// TestRunDirsNeverShared: runs started in the same second get directories
// of their own; an existing directory is never written into.
func TestRunDirsNeverShared(t *testing.T) {
	out := t.TempDir()
	// two runs at once
	done := make(chan result, 2)
	for range 2 {
		go func() {
			done <- runBin(t, "run", "--drivers", "tcp", "--concurrency", "1", "--calls", "200", "--warmup", "0s", "--settle", "0s", "--out", out, "-q")
		}()
	}
	for range 2 {
		if r := <-done; r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	}
	got, _ := filepath.Glob(filepath.Join(out, "*", "result.json"))
	if len(got) != 2 {
		t.Fatalf("two runs wrote %v, want two result.json in two directories", got)
	}
	// the directory a run would take exists already (with a file of
	// someone else's): the run takes another and leaves it untouched
	out = t.TempDir()
	now := time.Now().UTC()
	var taken []string
	for d := -2; d <= 30; d++ {
		p := filepath.Join(out, now.Add(time.Duration(d)*time.Second).Format("20060102T150405Z")+"-default")
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "result.json"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		taken = append(taken, p)
	}
	if r := runBin(t, "run", "--drivers", "tcp", "--concurrency", "1", "--calls", "100", "--warmup", "0s", "--settle", "0s", "--out", out, "-q"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, p := range taken {
		if b, _ := os.ReadFile(filepath.Join(p, "result.json")); string(b) != "mine" {
			t.Fatalf("the run wrote into %s, which existed", p)
		}
	}
	got, _ = filepath.Glob(filepath.Join(out, "*-default-2", "result.json"))
	if len(got) != 1 {
		all, _ := filepath.Glob(filepath.Join(out, "*"))
		t.Fatalf("want the run in a -2 directory beside the one that existed; found %v", all)
	}
	if _, err := results.Read(got[0]); err != nil {
		t.Fatal(err)
	}
}

// TestSameWorkloadSameKey: a driver's options written out with their
// default values are the same cells as the driver without options; other
// values are other cells, which compare never matches.
func TestSameWorkloadSameKey(t *testing.T) {
	dir := t.TempDir()
	plainDir, explicitDir, otherDir := filepath.Join(dir, "plain"), filepath.Join(dir, "explicit"), filepath.Join(dir, "other")
	plain := shortRun(t, plainDir)
	scen := func(name, opts string) string {
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte("name: "+name+"\ndrivers:\n  - name: tcp\n    options: "+opts+"\npayloads: [64]\nconcurrency: [1]\n"), 0o644)
		return p
	}
	explicit := shortRun(t, explicitDir, "--scenario", scen("explicit", `{connections: "2"}`), "--drivers", "tcp")
	other := shortRun(t, otherDir, "--scenario", scen("other", `{connections: 1}`), "--drivers", "tcp")
	a, b, c := driverstest.ReadResults(t, plainDir), driverstest.ReadResults(t, explicitDir), driverstest.ReadResults(t, otherDir)
	if a.Cells[0].Key != b.Cells[0].Key || a.Cells[0].Options["connections"] != "2" {
		t.Fatalf("keys %q and %q (options %v): want the same, with connections=2 recorded", a.Cells[0].Key, b.Cells[0].Key, a.Cells[0].Options)
	}
	if a.Cells[0].Key == c.Cells[0].Key {
		t.Fatalf("connections=1 has the key of connections=2: %q", c.Cells[0].Key)
	}
	for _, want := range []string{"tcp/mux", "connections=2", "payload=64", "response=64", "concurrency=1", "service=0", "responder_concurrency=64"} {
		if !strings.Contains(a.Cells[0].Key, want) {
			t.Errorf("key %q lacks %q", a.Cells[0].Key, want)
		}
	}
	if r := runBin(t, "compare", plain, explicit, "--format", "json"); r.code == 2 {
		t.Fatalf("compare of the same workload written two ways: exit 2: %s", r.stderr)
	}
	r := runBin(t, "compare", plain, other)
	wantBadInput(t, r, "no cell in common", "")
}

// TestOptionsTellUnitsApart: one driver and variant run with two sets of
// options: the console table and the Markdown summary name each unit's
// options, and so do the progress lines, so that they can be told apart.
func TestOptionsTellUnitsApart(t *testing.T) {
	dir := t.TempDir()
	scen := filepath.Join(dir, "two.yaml")
	os.WriteFile(scen, []byte("name: two\ndrivers:\n  - name: tcp\n    options: {connections: 1}\n  - name: tcp\n    options: {connections: 3}\npayloads: [64]\nconcurrency: [1]\nduration: 200ms\nwarmup: 50ms\n"), 0o644)
	r := runBin(t, "run", "--scenario", scen, "--settle", "0s", "--out", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	md, err := os.ReadFile(filepath.Join(filepath.Dir(driverstest.ResultsFile(t, dir)), "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"connections=1", "connections=3"} {
		if !strings.Contains(r.stdout, "mux ["+o+"]") {
			t.Errorf("the console table does not name %s:\n%s", o, r.stdout)
		}
		if !strings.Contains(r.stderr, "tcp/mux ["+o+"] 64B") {
			t.Errorf("the progress lines do not name %s:\n%s", o, r.stderr)
		}
		if !strings.Contains(string(md), `mux \[`+o+`\]`) {
			t.Errorf("summary.md does not name %s:\n%s", o, md)
		}
	}
}
