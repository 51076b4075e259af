// Command rpcbench measures what it costs to carry RPC over a message queue
// instead of a direct connection. main is thin: it builds the command tree,
// handles signals, and maps errors to exit codes (0 success, 1 run failed,
// 2 bad input). Every command is a function that returns an error, and
// the subcommands are registered in one table (commands); main is the only
// place the process exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/internal/broker"
)

// errUsage marks bad input: exit code 2.
var errUsage = errors.New("usage")

// errRegression is returned by compare when the comparison fails (exit 1,
// nothing more printed).
var errRegression = errors.New("regression")

// commands are rpcbench's subcommands: add one here with its constructor.
var commands = []struct {
	name string
	new  func() *cobra.Command
}{
	{"run", newRunCmd},
	{"sweep", newSweepCmd},
	{"serve", newServeCmd},
	{"drivers", newDriversCmd},
	{"brokers", newBrokersCmd},
	{"report", newReportCmd},
	{"compare", newCompareCmd},
	{"export", newExportCmd},
	{"claims", newClaimsCmd},
}

// usageErr wraps a message as bad input.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// forceCleanup is run, bounded in time, when a second Ctrl-C exits at once.
var forceCleanup struct {
	sync.Mutex
	fn func(context.Context)
}

func setForceCleanup(fn func(context.Context)) {
	forceCleanup.Lock()
	forceCleanup.fn = fn
	forceCleanup.Unlock()
}

// pushForceCleanup adds fn before the cleanup in force (a run's brokers
// inside a suite whose shared brokers must go too) and returns what undoes
// it.
func pushForceCleanup(fn func(context.Context)) (pop func()) {
	forceCleanup.Lock()
	prev := forceCleanup.fn
	forceCleanup.fn = func(ctx context.Context) {
		fn(ctx)
		if prev != nil {
			prev(ctx)
		}
	}
	forceCleanup.Unlock()
	return func() { setForceCleanup(prev) }
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	forced := make(chan struct{}) // closed after a second Ctrl-C's cleanup
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nrpcbench: interrupted: stopping and writing partial results (Ctrl-C again to exit at once)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "rpcbench: exiting now")
		forceCleanup.Lock()
		fn := forceCleanup.fn
		forceCleanup.Unlock()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		if fn != nil {
			fn(cctx)
		}
		broker.StopAll(cctx)           // whatever containers are left
		broker.StopNATSProcesses(cctx) // and NATS child processes
		ccancel()
		close(forced)
	}()

	root := newRootCmd()
	ran := markRun(root)
	done := make(chan int, 1)
	go func() { done <- exitCode(root.ExecuteContext(ctx), *ran) }()
	select {
	case code := <-done:
		return code
	case <-forced:
		return 130
	}
}

// markRun wraps every command so that exitCode can tell cobra's own errors
// (unknown command, bad flag, wrong arguments: bad input) from the errors
// of a command that ran.
func markRun(root *cobra.Command) *bool {
	ran := new(bool)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageErr("%s: %v (see rpcbench %s --help)", cmd.CommandPath(), err, cmd.Name())
				}
				return nil
			}
		}
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, a []string) error {
				*ran = true
				return run(cmd, a)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return ran
}

func exitCode(err error, ran bool) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errRegression) {
		return 1
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "rpcbench: "+trimUsage(err))
		return 2
	}
	if !ran {
		// cobra's own errors: unknown command or flag.
		fmt.Fprintln(os.Stderr, "rpcbench: "+err.Error()+" (see rpcbench --help)")
		return 2
	}
	fmt.Fprintln(os.Stderr, "rpcbench: "+err.Error())
	return 1
}

// trimUsage drops the "usage: " marker from a wrapped usage error.
func trimUsage(err error) string {
	msg := err.Error()
	const p = "usage: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rpcbench",
		Short: "Measure direct RPC against RPC over message queues",
		Long: `rpcbench runs identical call workloads through pluggable drivers: direct RPC
(tcp, grpc, http, netrpc, connect, thrift, rpcx, gozero, dubbo) and MQ-RPC (nats,
rabbitmq, rocketmq, kafka, activemq). Same request bytes, same responder work, same
load model: the transport is the only difference.

  rpcbench run                  the default scenario on every driver that can run here
  rpcbench run --scenario F     a scenario file (see scenarios/)
  rpcbench sweep                where each driver saturates (X_sat, R*)
  rpcbench claims               judge the articles' claims (C1-C11) from measurements
  rpcbench drivers              drivers, their variants and options`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see rpcbench %s --help)", err, c.Name())
	})
	for _, c := range commands {
		root.AddCommand(c.new())
	}
	return root
}
