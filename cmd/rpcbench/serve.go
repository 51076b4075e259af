package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/chain"
	"github.com/rpcbench/rpcbench/internal/ledger"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

type serveFlags struct {
	responderConcurrency int
	driver               string
	variant              string
	options              []string
	listen               string
	brokers              []string
	ledger               string
	chainNext            string
	incarnation          int
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a driver's responder, for `rpcbench run --target` on another host",
		Long: `Run one driver's responder until interrupted, so caller and responder can be
on different hosts:

  host A:  rpcbench serve --driver tcp --listen 0.0.0.0:7000
  host B:  rpcbench run --drivers tcp --target hostA:7000

The line "serving DRIVER/VARIANT at ADDR" on stdout gives the address to pass
to --target. Broker drivers connect the responder to the broker given with
--broker KIND=URL (or start one, as run does).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.driver, "driver", "d", "", "driver whose responder to run (required; see rpcbench drivers)")
	fl.StringVar(&f.variant, "variant", "", "driver variant (default: the driver's first)")
	fl.StringArrayVar(&f.options, "option", nil, "driver option KEY=VALUE; repeatable")
	fl.StringVarP(&f.listen, "listen", "l", "127.0.0.1:0", "address to listen on (direct drivers)")
	fl.StringArrayVar(&f.brokers, "broker", nil, "broker to connect the responder to: KIND=URL; repeatable")
	fl.StringVar(&f.ledger, "ledger", "", "record every request handled in this file (a fault run's ledger; see `rpcbench run --fault`)")
	fl.IntVar(&f.incarnation, "incarnation", 1, "this responder's number in the ledger (1, then one more per restart)")
	fl.StringVar(&f.chainNext, "chain-next", "", "where a call chain's onward hops dial (HOST:PORT; default: this responder's own address), e.g. a delay proxy in front of it")
	fl.IntVar(&f.responderConcurrency, "responder-concurrency", scenarios.DefaultResponderConcurrency, "requests handled at once (match the scenario's responder_concurrency)")
	return c
}

func parseOptions(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErr("--%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func runServe(ctx context.Context, f serveFlags, stdout io.Writer) (err error) {
	// no broker credential in what serve prints
	brokers := append([]string(nil), f.brokers...)
	if v := os.Getenv(serveBrokersEnv); v != "" {
		brokers = append(brokers, strings.Split(v, "\n")...)
	}
	red := newRedactor(brokers...)
	stdout = red.writer(stdout)
	defer func() { err = red.err(err) }()
	if f.driver == "" {
		return usageErr("serve: --driver is required (one of %s)", strings.Join(driverNames(), ", "))
	}
	d, ok := registry().Get(f.driver)
	if !ok {
		return usageErr("--driver %q: unknown driver (want one of %s)", f.driver, strings.Join(driverNames(), ", "))
	}
	opts, err := parseOptions("option", f.options)
	if err != nil {
		return err
	}
	if f.responderConcurrency < 1 || f.responderConcurrency > scenarios.MaxResponderConcurrency {
		return usageErr("--responder-concurrency %d: want 1 to %d", f.responderConcurrency, scenarios.MaxResponderConcurrency)
	}
	tr, err := d.Configure(drivers.Config{Variant: f.variant, Options: opts, ResponderConcurrency: f.responderConcurrency})
	if err != nil {
		return usageErr("%v", err)
	}
	cfg := tr.Config()
	// KIND=URL#QUEUE: serve a given queue or topic (a fault run restarting
	// a responder): the broker is the URL, the place the whole
	frags := map[string]string{}
	for i, kv := range brokers {
		kind, rest, _ := strings.Cut(kv, "=")
		// routes to delay proxies (drivers.WithVia) follow the fragment
		base, via, err := drivers.SplitVia(rest)
		if err != nil {
			return usageErr("--broker %s: %v", broker.Redact(kv), err)
		}
		if url, frag, ok := strings.Cut(base, "#"); ok && frag != "" {
			frags[kind] = frag
			brokers[i] = kind + "=" + drivers.WithVia(url, via)
		}
	}
	ext, err := broker.ParseExternal(brokers, brokerKinds())
	if err != nil {
		return usageErr("%v", err)
	}
	spec := d.Spec()
	mgr := broker.NewManager(ext, brokerStarters())
	setForceCleanup(func(ctx context.Context) { mgr.Close(ctx) })
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mgr.Close(cctx)
	}()
	at := drivers.Place{Listen: f.listen}
	if spec.Kind == drivers.Broker {
		b, err := mgr.Get(ctx, spec.Broker, "", broker.StartOptions{Params: tr.BrokerParams()})
		if err != nil {
			return fmt.Errorf("serve %s: %w", spec.Name, err)
		}
		at.Broker = b.URL
		if frag := frags[spec.Broker]; frag != "" {
			url, via, _ := drivers.SplitVia(b.URL)
			at.Broker = drivers.WithVia(url+"#"+frag, via)
		}
	}
	h := drivers.Handler(wire.Limit(cfg.ResponderConcurrency))
	if f.ledger != "" {
		w, err := ledger.Open(f.ledger, f.incarnation)
		if err != nil {
			return usageErr("--ledger: %v", err)
		}
		defer w.Close()
		h = ledger.Wrap(h, w)
	}
	if f.chainNext != "" {
		if err := tr.CheckTarget(f.chainNext); err != nil {
			return usageErr("--chain-next %s: %v", f.chainNext, err)
		}
	}
	srv, err := chain.ServeVia(ctx, tr, at, h, f.chainNext)
	if err != nil {
		return fmt.Errorf("serve %s/%s: %w", spec.Name, cfg.Variant, err)
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "serving %s/%s at %s\n", spec.Name, cfg.Variant, srv.Addr())
	<-ctx.Done()
	return nil
}
