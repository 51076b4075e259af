package rmqadmin

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestFixJSON(t *testing.T) {
	in := `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","readQueueNums":4,"writeQueueNums":4,"perm":6}]}`
	var r Route
	if err := json.Unmarshal(fixJSON([]byte(in)), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Brokers) != 1 || r.Brokers[0].Master() != "127.0.0.1:10911" || r.Brokers[0].BrokerAddrs["1"] != "127.0.0.1:10921" || r.Queues[0].WriteQueueNums != 4 {
		t.Fatalf("route %+v", r)
	}
}

// fakeServer answers one remoting request per connection with code, remark
// and body, after an unrelated server request (which Invoke must skip),
// and reports the request it got.
func fakeServer(t *testing.T, code int, remark string, body []byte) (string, <-chan header) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan header, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var pre [8]byte
				if _, err := io.ReadFull(c, pre[:]); err != nil {
					return
				}
				total := binary.BigEndian.Uint32(pre[:4])
				hl := binary.BigEndian.Uint32(pre[4:]) & 0xffffff
				rest := make([]byte, total-4)
				if _, err := io.ReadFull(c, rest); err != nil {
					return
				}
				var h header
				json.Unmarshal(rest[:hl], &h)
				got <- h
				write := func(h header, body []byte) {
					hb, _ := json.Marshal(h)
					f := binary.BigEndian.AppendUint32(nil, uint32(4+len(hb)+len(body)))
					f = binary.BigEndian.AppendUint32(f, uint32(len(hb)))
					c.Write(append(append(f, hb...), body...))
				}
				write(header{Code: 40, Opaque: 999}, nil) // a server request
				write(header{Code: code, Opaque: h.Opaque, Flag: 1, Remark: remark}, body)
			}()
		}
	}()
	return ln.Addr().String(), got
}

func TestInvokeCodes(t *testing.T) {
	ctx := context.Background()
	addr, got := fakeServer(t, 0, "", []byte(`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:1"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","readQueueNums":1,"writeQueueNums":1,"perm":6}]}`))
	r, err := TopicRoute(ctx, addr, "t1")
	if err != nil || r.Brokers[0].Master() != "127.0.0.1:1" {
		t.Fatalf("route %+v, %v", r, err)
	}
	if h := <-got; h.Code != codeGetRouteInfoByTopic || h.ExtFields["topic"] != "t1" || h.Flag != 0 {
		t.Fatalf("request header %+v", h)
	}

	addr, _ = fakeServer(t, codeTopicNotExist, "No topic route info", nil)
	if _, err := TopicRoute(ctx, addr, "t2"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("missing topic: %v, want ErrNoRoute", err)
	}

	addr, got = fakeServer(t, 1, "create topic failed", nil)
	err = CreateTopic(ctx, addr, "t3", 4)
	if err == nil || !strings.Contains(err.Error(), "code 1: create topic failed") {
		t.Fatalf("create topic error %v", err)
	}
	if h := <-got; h.ExtFields["readQueueNums"] != "4" || h.ExtFields["perm"] != "6" || h.ExtFields["topic"] != "t3" {
		t.Fatalf("create topic header %+v", h)
	}

	addr, _ = fakeServer(t, 0, "", []byte("flushDiskType=SYNC_FLUSH\nbrokerIP1=127.0.0.1\n"))
	conf, err := BrokerConfig(ctx, addr)
	if err != nil || conf["flushDiskType"] != "SYNC_FLUSH" || conf["brokerIP1"] != "127.0.0.1" {
		t.Fatalf("config %v, %v", conf, err)
	}
}

func TestInvokeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := ClusterInfo(ctx, ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v, want deadline exceeded", err)
	}
	// Nothing listens: an error at once.
	addr := ln.Addr().String()
	ln.Close()
	if _, err := ClusterInfo(context.Background(), addr); err == nil {
		t.Fatal("closed port: want an error")
	}
}
