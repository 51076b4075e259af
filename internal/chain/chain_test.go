package chain_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/chain"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// hops records, per chain depth a request arrived with, how many requests
// the responder served, and can hold or fail the requests of one depth.
type hops struct {
	mu     sync.Mutex
	seen   map[uint32]int
	hold   uint32 // requests with this depth (not 0) wait for release
	fail   uint32 // requests with this depth (not 0) get an error reply
	held   chan struct{}
	served chan uint32
}

func newHops() *hops {
	return &hops{seen: map[uint32]int{}, held: make(chan struct{}), served: make(chan uint32, 100)}
}

func (h *hops) handle(req, buf []byte) []byte {
	var f wire.Fields
	if err := wire.Parse(req, &f); err != nil {
		panic(err)
	}
	h.mu.Lock()
	h.seen[f.ChainDepth]++
	h.mu.Unlock()
	defer func() { h.served <- f.ChainDepth }()
	if h.hold != 0 && f.ChainDepth == h.hold {
		<-h.held
	}
	if f.ChainDepth == h.fail && h.fail != 0 {
		return wire.Append(buf, &wire.Fields{ID: f.ID, Error: []byte("hop fails on purpose")})
	}
	return wire.Respond(req, buf)
}

func serve(t *testing.T, h drivers.Handler) (drivers.Client, drivers.Caller) {
	t.Helper()
	tr, err := tcp.New().Configure(drivers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := chain.Serve(ctx, tr, drivers.Place{}, h)
	if err != nil {
		t.Fatal(err)
	}
	client, err := tr.Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		cancel()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	return client, c
}

func call(t *testing.T, c drivers.Caller, depth int, async bool) wire.Fields {
	t.Helper()
	req := wire.NewRequestTemplate([]byte("chain payload"), 0).WithChain(depth, async, 5*time.Second).Append(nil, 77, 0, time.Now().UnixNano())
	reply, err := c.Call(context.Background(), time.Now().Add(10*time.Second), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.Fields
	if err := wire.Parse(reply, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSync: every hop of a synchronous chain runs, one after another, and
// the first reply says so.
func TestSync(t *testing.T) {
	h := newHops()
	_, c := serve(t, h.handle)
	f := call(t, c, 4, false)
	if len(f.Error) != 0 || f.ID != 77 || string(f.Payload) != "chain payload" || f.ChainHops != 4 {
		t.Fatalf("reply %+v, want id 77, the payload and chain_hops 4", f)
	}
	h.mu.Lock()
	for d := uint32(1); d <= 4; d++ {
		if h.seen[d] != 1 {
			t.Errorf("requests with chain depth %d: %d, want 1 (seen %v)", d, h.seen[d], h.seen)
		}
	}
	h.mu.Unlock()
	// depth 1 is a plain call
	if f := call(t, c, 1, false); f.ChainHops != 0 || len(f.Error) != 0 {
		t.Errorf("depth 1: %+v, want a plain reply", f)
	}
}

// TestSyncWaits: the first reply of a synchronous chain comes only after
// its last hop.
func TestSyncWaits(t *testing.T) {
	h := newHops()
	h.hold = 1 // the last hop
	_, c := serve(t, h.handle)
	got := make(chan wire.Fields, 1)
	go func() { got <- call(t, c, 3, false) }()
	for d := range h.served {
		if d == 2 {
			t.Fatal("hop 2 of 3 replied before hop 3 ran")
		}
		if d == 3 {
			break
		}
	}
	select {
	case f := <-got:
		t.Fatalf("the chain replied (%+v) while its last hop was held", f)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.held)
	if f := <-got; f.ChainHops != 3 {
		t.Fatalf("chain_hops %d, want 3", f.ChainHops)
	}
}

// TestAsyncTail: an asynchronous chain replies after its first hop; the
// tail runs after, every hop of it.
func TestAsyncTail(t *testing.T) {
	h := newHops()
	h.hold = 3 // hop 2 of 4: held until the first reply is in
	_, c := serve(t, h.handle)
	f := call(t, c, 4, true)
	if len(f.Error) != 0 || f.ChainHops != 1 || f.ID != 77 {
		t.Fatalf("reply %+v, want chain_hops 1 and no error", f)
	}
	close(h.held)
	deadline := time.After(10 * time.Second)
	for done := 0; done < 4; {
		select {
		case <-h.served:
			done++
		case <-deadline:
			t.Fatalf("the tail did not run: %v", h.seen)
		}
	}
	h.mu.Lock()
	for d := uint32(1); d <= 4; d++ {
		if h.seen[d] != 1 {
			t.Errorf("requests with chain depth %d: %d, want 1 (seen %v)", d, h.seen[d], h.seen)
		}
	}
	h.mu.Unlock()
}

// TestFailedHop: a hop that fails makes the synchronous chain's reply an
// error reply.
func TestFailedHop(t *testing.T) {
	h := newHops()
	h.fail = 2 // hop 3 of 4
	_, c := serve(t, h.handle)
	f := call(t, c, 4, false)
	if !strings.Contains(string(f.Error), "hop fails on purpose") || f.ChainHops != 0 {
		t.Fatalf("reply %+v, want the failing hop's error", f)
	}
}

// TestUnbound: a responder that cannot reach a next hop answers a chain
// with an error, not a silent one-hop reply.
func TestUnbound(t *testing.T) {
	r := chain.New(wire.Respond)
	req := wire.NewRequestTemplate([]byte("x"), 0).WithChain(2, false, time.Second).Append(nil, 5, 0, 0)
	var f wire.Fields
	if err := wire.Parse(r.Handle(req, nil), &f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Error), "not bound") {
		t.Fatalf("reply %+v, want an error naming the missing next hop", f)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
