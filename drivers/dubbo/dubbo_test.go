package dubbo_test

import (
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	// Linked for TestLinksWithConnect: Connect registers the protobuf
	// file Dubbo-go's Triple package conflicts with.
	_ "connectrpc.com/connect"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/dubbo"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func triple(t testing.TB) drivers.Transport {
	return driverstest.Configure(t, dubbo.New(), drivers.Config{})
}

func TestConformance(t *testing.T) {
	driverstest.Conformance(t, triple(t), drivers.Place{})
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, triple(t), drivers.Place{})
}

func TestStalled(t *testing.T) {
	driverstest.Stalled(t, triple(t), drivers.Place{})
}

func TestSilentPeer(t *testing.T) {
	driverstest.SilentPeer(t, triple(t), drivers.Place{})
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Variant: "dubbo"}, `dubbo: unknown variant "dubbo" (want one of triple)`},
		{drivers.Config{Options: map[string]string{"connections": "2"}}, `dubbo: unknown option "connections" (this driver has no options)`},
	} {
		_, err := dubbo.New().Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %s", tc.cfg, err, tc.want)
		}
	}
	tr := triple(t)
	if got := tr.Config().Variant; got != dubbo.VariantTriple {
		t.Fatalf("default variant %q, want %q", got, dubbo.VariantTriple)
	}
	if l := tr.Limits(t.Context(), ""); l.MaxRequest != dubbo.MaxMessage || l.MaxReply != dubbo.MaxMessage {
		t.Fatalf("limits %+v", l)
	}
}

// TestSignalsStayTheProcess checks, in a child process of this test
// binary (which links the driver and Dubbo-go's Triple packages), that a
// SIGINT reaches the handler the program installs, as rpcbench's main
// does, and that nothing else exits the process: Dubbo-go's
// graceful_shutdown handler would call os.Exit(0) first.
func TestSignalsStayTheProcess(t *testing.T) {
	if os.Getenv("DUBBO_SIGNAL_CHILD") == "1" {
		// Use the driver so that its packages are initialised and run.
		tr := triple(t)
		srv := driverstest.Serve(t, tr, drivers.Place{})
		driverstest.Dial(t, tr, srv.Addr())
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("SIGINT did not reach the program's handler")
		}
		// Anything else that had the signal would exit meanwhile.
		time.Sleep(500 * time.Millisecond)
		os.Stdout.WriteString("still-here\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalsStayTheProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DUBBO_SIGNAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "still-here") || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestQuietStdout checks that the driver writes nothing to stdout while
// serving and calling (rpcbench serve prints its address there): Dubbo-go's
// default logger writes coloured lines to it.
func TestQuietStdout(t *testing.T) {
	if os.Getenv("DUBBO_STDOUT_CHILD") == "1" {
		tr := triple(t)
		srv := driverstest.Serve(t, tr, drivers.Place{})
		cl := driverstest.Dial(t, tr, srv.Addr())
		c, err := cl.NewCaller()
		if err != nil {
			t.Fatal(err)
		}
		// A call that succeeds, then one that fails (the responder is
		// gone): Triple's client and handler log on their failure paths.
		if _, err := c.Call(t.Context(), time.Now().Add(5*time.Second), driverstest.RequestOfSize(t, 1, 64, 64), nil); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		c.Call(t.Context(), time.Now().Add(200*time.Millisecond), driverstest.RequestOfSize(t, 2, 64, 64), nil)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestQuietStdout$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DUBBO_STDOUT_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "PASS" {
		t.Fatalf("child wrote to stdout: %q", got)
	}
}

// TestLinksWithConnect: this test binary links Connect beside Dubbo-go's
// Triple package, as rpcbench does (both register grpc.status.v1.Status),
// so it started at all; in a child started without
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT, the setting that let the
// conflict pass is gone again once the packages are initialised.
func TestLinksWithConnect(t *testing.T) {
	const env = "GOLANG_PROTOBUF_REGISTRATION_CONFLICT"
	if os.Getenv("DUBBO_PROTO_CHILD") == "1" {
		if v, ok := os.LookupEnv(env); ok {
			t.Fatalf("%s=%q after init", env, v)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLinksWithConnect$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, env+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DUBBO_PROTO_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, dubbo.New(), drivers.Config{}))
}
