package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/scenarios"
)

// brokersStateFile is the file, in the results directory, where
// `rpcbench brokers up` records the brokers it left running.
const brokersStateFile = "brokers.json"

// brokersState is the content of brokersStateFile.
type brokersState struct {
	UpdatedAt time.Time      `json:"updated_at"`
	Brokers   []brokerRecord `json:"brokers"`
}

type brokerRecord struct {
	broker.Broker
	// Containers are the ids of the containers the broker runs in.
	Containers []string  `json:"containers"`
	StartedAt  time.Time `json:"started_at"`
}

type brokersFlags struct {
	out      string
	scenario string
	network  string
}

// newBrokersCmd is `rpcbench brokers up|down|status`.
func newBrokersCmd() *cobra.Command {
	var f brokersFlags
	c := &cobra.Command{
		Use:   "brokers",
		Short: "Start brokers and leave them running for repeated runs (up, down, status)",
		Long: `brokers up starts the brokers a scenario's drivers need (or the kinds named)
in containers and leaves them running; their URLs, images and container ids
are kept in <out>/` + brokersStateFile + `. Runs with the same --out use them; for
others it prints --broker flags (passwords shown as ***: the full URLs are in
` + brokersStateFile + `). brokers status shows them; brokers down removes them.

NATS runs in a child process of every rpcbench run and is not started here.`,
		Example: `  rpcbench brokers up rabbitmq
  rpcbench run --drivers rabbitmq --broker rabbitmq=amqp://guest:guest@127.0.0.1:PORT/
  rpcbench brokers status
  rpcbench brokers down`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("brokers: want a subcommand: up, down or status")
		},
	}
	c.PersistentFlags().StringVarP(&f.out, "out", "o", "results", "results directory holding "+brokersStateFile)

	up := &cobra.Command{
		Use:   "up [KIND...]",
		Short: "Start the brokers of a scenario (or the kinds named) and leave them running",
		RunE: func(cmd *cobra.Command, args []string) error {
			return brokersUp(cmd.Context(), f, args, brokerStarters(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	up.Flags().StringVarP(&f.scenario, "scenario", "s", scenarios.Default, "scenario whose broker drivers decide the kinds, when none are named")
	up.Flags().StringVar(&f.network, "network", "", "container networking: host (default) or mapped")

	down := &cobra.Command{
		Use:   "down",
		Short: "Remove the brokers started by brokers up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return brokersDown(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the brokers started by brokers up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return brokersStatus(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	c.AddCommand(up, down, status)
	return c
}

func statePath(out string) string { return filepath.Join(out, brokersStateFile) }

func readBrokersState(out string) (*brokersState, error) {
	data, err := os.ReadFile(statePath(out))
	if errors.Is(err, os.ErrNotExist) {
		return &brokersState{}, nil
	}
	if err != nil {
		return nil, err
	}
	var st brokersState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %v", statePath(out), err)
	}
	return &st, nil
}

func writeBrokersState(out string, st *brokersState) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if len(st.Brokers) == 0 {
		err := os.Remove(statePath(out))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	st.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(out) + ".tmp"
	// 0600: the URLs hold the brokers' passwords.
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(out))
}

// upBrokerURLs returns kind -> URL of the brokers `brokers up` left
// running (per the state file in out), for runs to use like --broker.
func upBrokerURLs(ctx context.Context, out string) (map[string]string, error) {
	st, err := readBrokersState(out)
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, b := range st.Brokers {
		if running(ctx, b) {
			urls[b.Kind] = b.URL
		}
	}
	return urls, nil
}

func running(ctx context.Context, b brokerRecord) bool {
	if len(b.Containers) == 0 {
		return false
	}
	for _, id := range b.Containers {
		ok, err := broker.ContainerRunning(ctx, id)
		if err != nil || !ok {
			return false
		}
	}
	return true
}

// scenarioBrokerKinds lists the broker kinds the scenario's drivers need.
func scenarioBrokerKinds(name string) ([]string, error) {
	sc, err := scenarios.Load(name)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	units, err := runner.Resolve(registry(), sc)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	var kinds []string
	for _, u := range units {
		if k := u.Driver.Spec().Broker; k != "" && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	return kinds, nil
}

// brokersUp starts the brokers of kinds with starters. What it prints and
// returns never holds a password: URLs are shown as amqp://user:***@host/.
func brokersUp(ctx context.Context, f brokersFlags, kinds []string, starters map[string]broker.Starter, stdout, stderr io.Writer) error {
	if f.network != "" {
		if _, err := broker.ParseNetworkMode(f.network); err != nil {
			return usageErr("--network: %v", err)
		}
	}
	known := brokerKinds()
	for _, k := range kinds {
		if !slices.Contains(known, k) {
			return usageErr("brokers up: unknown broker kind %q (want one of %s)", k, strings.Join(known, ", "))
		}
	}
	if len(kinds) == 0 {
		var err error
		if kinds, err = scenarioBrokerKinds(f.scenario); err != nil {
			return err
		}
		if len(kinds) == 0 {
			fmt.Fprintf(stdout, "scenario %s needs no broker\n", f.scenario)
			return nil
		}
	}
	st, err := readBrokersState(f.out)
	if err != nil {
		return err
	}
	red := newRedactor()
	for _, b := range st.Brokers {
		red.add(b.URL)
	}
	stderr = red.writer(stderr)
	var errs []error
	for _, kind := range kinds {
		if i := slices.IndexFunc(st.Brokers, func(b brokerRecord) bool { return b.Kind == kind }); i >= 0 {
			if running(ctx, st.Brokers[i]) {
				fmt.Fprintf(stderr, "%s: already up at %s\n", kind, st.Brokers[i].URL)
				continue
			}
			// Gone since: forget it (and remove what is left of it).
			for _, id := range st.Brokers[i].Containers {
				broker.RemoveContainer(context.WithoutCancel(ctx), id)
			}
			st.Brokers = slices.Delete(st.Brokers, i, i+1)
		}
		start, ok := starters[kind]
		if !ok {
			fmt.Fprintf(stderr, "%s: no starter here; use --broker %s=URL\n", kind, kind)
			continue
		}
		params := map[string]string{"keep": "true"}
		if f.network != "" {
			params["network"] = f.network
		}
		before, _ := broker.ListLabelled(ctx, broker.RunID, true)
		fmt.Fprintf(stderr, "%s: starting...\n", kind)
		b, stop, err := start(ctx, broker.StartOptions{Dir: f.out, Params: params})
		red.add(b.URL)
		if err != nil {
			if reason, ok := broker.IsUnavailable(err); ok {
				errs = append(errs, fmt.Errorf("%s: %s", kind, reason))
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", kind, err))
			}
			continue
		}
		if b.Source != "container" {
			// Embedded (in-process) brokers end with this command.
			fmt.Fprintf(stderr, "%s: %s broker runs inside each rpcbench run; nothing to leave running\n", kind, b.Source)
			if stop != nil {
				stop(context.WithoutCancel(ctx))
			}
			continue
		}
		after, _ := broker.ListLabelled(ctx, broker.RunID, true)
		var ids []string
		for _, id := range after {
			if !slices.Contains(before, id) {
				ids = append(ids, id)
			}
		}
		st.Brokers = append(st.Brokers, brokerRecord{Broker: b, Containers: ids, StartedAt: time.Now().UTC()})
		// Recorded before anything else can fail, so `down` finds it.
		if err := writeBrokersState(f.out, st); err != nil {
			stop(context.WithoutCancel(ctx))
			return fmt.Errorf("record %s: %w", statePath(f.out), err)
		}
		fmt.Fprintf(stderr, "%s: up at %s (%s %s)\n", kind, b.URL, b.Image, b.Version)
	}
	if err := writeBrokersState(f.out, st); err != nil {
		return err
	}
	printBrokerFlags(stdout, f.out, st)
	return red.err(errors.Join(errs...))
}

// printBrokerFlags prints the --broker flags of the brokers up, their
// passwords redacted (and then where to find them).
func printBrokerFlags(w io.Writer, out string, st *brokersState) {
	if len(st.Brokers) == 0 {
		return
	}
	var flags []string
	redacted := false
	for _, b := range st.Brokers {
		u := broker.Redact(b.URL)
		redacted = redacted || u != b.URL
		flags = append(flags, "--broker "+b.Kind+"="+u)
	}
	note := ""
	if redacted {
		note = fmt.Sprintf(" (passwords are in %s; runs with --out %s use these brokers without --broker)", statePath(out), out)
	}
	fmt.Fprintf(w, "use: rpcbench run %s%s\n", strings.Join(flags, " "), note)
}

func brokersDown(ctx context.Context, f brokersFlags, stdout io.Writer) error {
	st, err := readBrokersState(f.out)
	if err != nil {
		return err
	}
	if len(st.Brokers) == 0 {
		fmt.Fprintf(stdout, "no brokers up (%s)\n", statePath(f.out))
		return nil
	}
	var errs []error
	var left []brokerRecord
	for _, b := range st.Brokers {
		var berrs []error
		for _, id := range b.Containers {
			if err := broker.RemoveContainer(ctx, id); err != nil {
				berrs = append(berrs, err)
			}
		}
		if len(berrs) > 0 {
			left = append(left, b)
			errs = append(errs, fmt.Errorf("%s: %w", b.Kind, errors.Join(berrs...)))
			continue
		}
		fmt.Fprintf(stdout, "%s: removed\n", b.Kind)
	}
	st.Brokers = left
	if err := writeBrokersState(f.out, st); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func brokersStatus(ctx context.Context, f brokersFlags, stdout io.Writer) error {
	st, err := readBrokersState(f.out)
	if err != nil {
		return err
	}
	if len(st.Brokers) == 0 {
		fmt.Fprintf(stdout, "no brokers up (%s)\n", statePath(f.out))
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTATE\tURL\tIMAGE\tVERSION\tCONTAINERS")
	for _, b := range st.Brokers {
		state := "running"
		if !running(ctx, b) {
			state = "gone"
		}
		short := make([]string, len(b.Containers))
		for i, id := range b.Containers {
			short[i] = id[:min(12, len(id))]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Kind, state, broker.Redact(b.URL), b.Image, b.Version, strings.Join(short, ","))
	}
	tw.Flush()
	printBrokerFlags(stdout, f.out, st)
	return nil
}
