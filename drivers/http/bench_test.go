package http_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/http"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal net/http client written as its documentation
// advises (one shared Client, idle pool sized to the callers, bodies read
// to EOF and closed): JSON via encoding/json or the protobuf bytes.
func plain(addr string, asJSON bool) func() func(uint64) error {
	hc := &nethttp.Client{Transport: &nethttp.Transport{MaxIdleConnsPerHost: 64}}
	url := "http://" + addr + http.Path
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes (zeros gzip for free)
	sum := wire.Checksum(payload)
	return func() func(uint64) error {
		return func(id uint64) error {
			var body []byte
			ct := "application/x-protobuf"
			if asJSON {
				body, _ = json.Marshal(&http.Call{ID: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()})
				ct = "application/json"
			} else {
				body = wire.Append(nil, &wire.Fields{ID: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()})
			}
			resp, err := hc.Post(url, ct, bytes.NewReader(body))
			if err != nil {
				return err
			}
			rb, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var got uint64
			if asJSON {
				var c http.Call
				if err := json.Unmarshal(rb, &c); err != nil {
					return err
				}
				got = c.ID
			} else {
				var f wire.Fields
				if err := wire.Parse(rb, &f); err != nil {
					return err
				}
				got = f.ID
			}
			if got != id {
				return fmt.Errorf("reply %d to call %d", got, id)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: the json and binary variants against the plain loop,
// one server, one run.
func BenchmarkVsPlain(b *testing.B) {
	for _, v := range []string{"json", "binary"} {
		b.Run(v, func(b *testing.B) {
			cfg := drivers.Config{Variant: v}
			tr := driverstest.Configure(b, http.New(), cfg)
			addr := driverstest.ServeApart(b, "http", cfg)
			driverstest.Versus(b, tr, addr, plain(addr, v == "json"))
		})
	}
}
