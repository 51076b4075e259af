// Package rmqadmin speaks just enough of RocketMQ's remoting protocol (JSON
// headers) to administer a single cluster for rpcbench: read the cluster's
// brokers and a topic's route from the name server, create a topic on a
// broker and read a broker's configuration, with every response code
// checked.
//
// It exists because the admin of rocketmq-client-go v2.1.2 cannot do this
// safely: its CreateTopic needs the broker address (which the client gives
// no way to look up), ignores the response code, logs at Info, and shares a
// client instance with producers and consumers unless it is closed first.
// Each call here opens its own short connection; nothing is shared.
//
// Frame: int32 length of what follows, int32 (serialize type << 24 |
// header length), the header as JSON, the body.
package rmqadmin

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Request codes (org.apache.rocketmq.remoting.protocol.RequestCode).
const (
	codeUpdateAndCreateTopic = 17
	codeGetBrokerConfig      = 26
	codeGetRouteInfoByTopic  = 105
	codeGetBrokerClusterInfo = 106
)

// Response codes (ResponseCode).
const (
	codeSuccess       = 0
	codeTopicNotExist = 17
)

// ErrNoRoute is returned by TopicRoute when the name server knows no route
// for the topic (yet).
var ErrNoRoute = errors.New("rmqadmin: no route for topic")

// maxFrame bounds a response frame.
const maxFrame = 16 << 20

var opaque atomic.Int32

type header struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// Response is a remoting response.
type Response struct {
	Code   int
	Remark string
	Body   []byte
}

// Invoke sends one request to addr on a new connection and returns the
// response. ctx bounds the whole exchange (default 5 s when it has no
// deadline).
func Invoke(ctx context.Context, addr string, code int, ext map[string]string, body []byte) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rmqadmin: %w", err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id := opaque.Add(1)
	h, err := json.Marshal(header{Code: code, Language: "GO", Version: 317, Opaque: id, ExtFields: ext})
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 8, 8+len(h)+len(body))
	binary.BigEndian.PutUint32(frame[0:4], uint32(4+len(h)+len(body)))
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(h))) // serialize type 0: JSON
	frame = append(append(frame, h...), body...)
	if _, err := c.Write(frame); err != nil {
		return nil, fmt.Errorf("rmqadmin: write to %s: %w", addr, ctxErr(ctx, err))
	}
	br := bufio.NewReader(c)
	for {
		var pre [8]byte
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			return nil, fmt.Errorf("rmqadmin: read from %s: %w", addr, ctxErr(ctx, err))
		}
		total := binary.BigEndian.Uint32(pre[0:4])
		hl := binary.BigEndian.Uint32(pre[4:8]) & 0xffffff
		if total > maxFrame || hl+4 > total {
			return nil, fmt.Errorf("rmqadmin: bad frame from %s (length %d, header %d)", addr, total, hl)
		}
		rest := make([]byte, total-4)
		if _, err := io.ReadFull(br, rest); err != nil {
			return nil, fmt.Errorf("rmqadmin: read from %s: %w", addr, ctxErr(ctx, err))
		}
		var rh header
		if pre[4] != 0 {
			return nil, fmt.Errorf("rmqadmin: %s answered in serialize type %d, want JSON", addr, pre[4])
		}
		if err := json.Unmarshal(rest[:hl], &rh); err != nil {
			return nil, fmt.Errorf("rmqadmin: bad header from %s: %w", addr, err)
		}
		if rh.Flag&1 == 0 || rh.Opaque != id {
			continue // a request from the server, or someone else's response
		}
		return &Response{Code: rh.Code, Remark: rh.Remark, Body: rest[hl:]}, nil
	}
}

// ctxErr reports a read or write that failed because ctx ended (the
// connection's deadline is ctx's) as ctx's error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// intKeys quotes the integer map keys RocketMQ's fastjson writes
// ({0:"127.0.0.1:10911"}), which encoding/json rejects.
var intKeys = regexp.MustCompile(`([{,])(-?[0-9]+):`)

func fixJSON(b []byte) []byte { return intKeys.ReplaceAll(b, []byte(`$1"$2":`)) }

// BrokerData is one broker set (a master and its slaves by broker id).
type BrokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

// Master returns the master's address (broker id 0), if any.
func (b BrokerData) Master() string { return b.BrokerAddrs["0"] }

// QueueData is a topic's queues on one broker.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
}

// Route is a topic's route.
type Route struct {
	Brokers []BrokerData `json:"brokerDatas"`
	Queues  []QueueData  `json:"queueDatas"`
}

// TopicRoute asks the name server for topic's route. It returns ErrNoRoute
// when the name server has none.
func TopicRoute(ctx context.Context, namesrv, topic string) (*Route, error) {
	r, err := Invoke(ctx, namesrv, codeGetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, err
	}
	switch r.Code {
	case codeSuccess:
	case codeTopicNotExist:
		return nil, fmt.Errorf("%w %s at %s", ErrNoRoute, topic, namesrv)
	default:
		return nil, fmt.Errorf("rmqadmin: route of %s from %s: code %d: %s", topic, namesrv, r.Code, r.Remark)
	}
	var route Route
	if err := json.Unmarshal(fixJSON(r.Body), &route); err != nil {
		return nil, fmt.Errorf("rmqadmin: route of %s: %w", topic, err)
	}
	if len(route.Brokers) == 0 || len(route.Queues) == 0 {
		return nil, fmt.Errorf("%w %s at %s (empty)", ErrNoRoute, topic, namesrv)
	}
	return &route, nil
}

// Cluster is what the name server knows of the brokers.
type Cluster struct {
	Brokers  map[string]BrokerData `json:"brokerAddrTable"`
	Clusters map[string][]string   `json:"clusterAddrTable"`
}

// Masters lists the master addresses of every broker set, sorted.
func (c *Cluster) Masters() []string {
	var out []string
	for _, b := range c.Brokers {
		if a := b.Master(); a != "" {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// ClusterInfo asks the name server for the cluster's brokers.
func ClusterInfo(ctx context.Context, namesrv string) (*Cluster, error) {
	r, err := Invoke(ctx, namesrv, codeGetBrokerClusterInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.Code != codeSuccess {
		return nil, fmt.Errorf("rmqadmin: cluster info from %s: code %d: %s", namesrv, r.Code, r.Remark)
	}
	var c Cluster
	if err := json.Unmarshal(fixJSON(r.Body), &c); err != nil {
		return nil, fmt.Errorf("rmqadmin: cluster info from %s: %w", namesrv, err)
	}
	return &c, nil
}

// CreateTopic creates (or updates) topic on the broker at brokerAddr with
// queues read and write queues, readable and writable.
func CreateTopic(ctx context.Context, brokerAddr, topic string, queues int) error {
	ext := map[string]string{
		"topic":           topic,
		"defaultTopic":    "TBW102",
		"readQueueNums":   strconv.Itoa(queues),
		"writeQueueNums":  strconv.Itoa(queues),
		"perm":            "6",
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    "0",
		"order":           "false",
	}
	r, err := Invoke(ctx, brokerAddr, codeUpdateAndCreateTopic, ext, nil)
	if err != nil {
		return err
	}
	if r.Code != codeSuccess {
		return fmt.Errorf("rmqadmin: create topic %s on %s: code %d: %s", topic, brokerAddr, r.Code, r.Remark)
	}
	return nil
}

// BrokerConfig reads the broker's configuration (its properties).
func BrokerConfig(ctx context.Context, brokerAddr string) (map[string]string, error) {
	r, err := Invoke(ctx, brokerAddr, codeGetBrokerConfig, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.Code != codeSuccess {
		return nil, fmt.Errorf("rmqadmin: config of %s: code %d: %s", brokerAddr, r.Code, r.Remark)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(r.Body), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// WaitRoute polls the name server until topic has a route with a master
// broker, or ctx ends.
func WaitRoute(ctx context.Context, namesrv, topic string) (*Route, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		r, err := TopicRoute(qctx, namesrv, topic)
		cancel()
		if err == nil {
			for _, b := range r.Brokers {
				if b.Master() != "" {
					return r, nil
				}
			}
			err = fmt.Errorf("%w %s at %s (no master)", ErrNoRoute, topic, namesrv)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rmqadmin: waiting for a route for %s: %w (last: %v)", topic, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// More request codes (RequestCode).
const (
	codeDeleteSubscriptionGroup = 207
	codeDeleteTopicInBroker     = 215
	codeDeleteTopicInNamesrv    = 216
)

func expectSuccess(r *Response, err error, what string) error {
	if err != nil {
		return err
	}
	if r.Code != codeSuccess {
		return fmt.Errorf("rmqadmin: %s: code %d: %s", what, r.Code, r.Remark)
	}
	return nil
}

// DeleteTopicInBroker deletes topic (and its queues) on the broker at
// brokerAddr.
func DeleteTopicInBroker(ctx context.Context, brokerAddr, topic string) error {
	r, err := Invoke(ctx, brokerAddr, codeDeleteTopicInBroker, map[string]string{"topic": topic}, nil)
	return expectSuccess(r, err, "delete topic "+topic+" on "+brokerAddr)
}

// DeleteTopicInNamesrv removes topic's route from the name server.
func DeleteTopicInNamesrv(ctx context.Context, namesrv, topic string) error {
	r, err := Invoke(ctx, namesrv, codeDeleteTopicInNamesrv, map[string]string{"topic": topic}, nil)
	return expectSuccess(r, err, "delete topic "+topic+" on "+namesrv)
}

// DeleteGroup deletes a consumer group and its offsets on the broker.
func DeleteGroup(ctx context.Context, brokerAddr, group string) error {
	r, err := Invoke(ctx, brokerAddr, codeDeleteSubscriptionGroup, map[string]string{"groupName": group, "cleanOffset": "true"}, nil)
	return expectSuccess(r, err, "delete group "+group+" on "+brokerAddr)
}
