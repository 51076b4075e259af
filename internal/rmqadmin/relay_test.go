package rmqadmin

import (
	"context"
	"testing"
)

// TestRelayRewrites: the relay's answers carry the broker address it was
// told to replace, longer than the original (the frame's length word
// follows), and the request reaches the name server as sent.
func TestRelayRewrites(t *testing.T) {
	addr, got := fakeServer(t, 0, "", []byte(`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:1"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","readQueueNums":1,"writeQueueNums":1,"perm":6}]}`))
	r, err := StartRelay(addr, map[string]string{"127.0.0.1:1": "127.0.0.1:45678"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	route, err := TopicRoute(context.Background(), r.Addr(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if m := route.Brokers[0].Master(); m != "127.0.0.1:45678" {
		t.Fatalf("master %q through the relay, want 127.0.0.1:45678", m)
	}
	if h := <-got; h.Code != codeGetRouteInfoByTopic || h.ExtFields["topic"] != "t1" {
		t.Fatalf("the name server got %+v", h)
	}
	// without a rewrite that applies, the answer passes as it is
	r2, err := StartRelay(addr, map[string]string{"127.0.0.1:2": "127.0.0.1:45678"})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if route, err := TopicRoute(context.Background(), r2.Addr(), "t1"); err != nil || route.Brokers[0].Master() != "127.0.0.1:1" {
		t.Fatalf("route %+v, %v", route, err)
	}
}
