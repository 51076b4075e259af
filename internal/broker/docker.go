package broker

// The Docker engine and testcontainers-go's process-wide settings.
//
// Settings this project's machines need (docs/environment.md), applied to
// the process environment when the package loads, before any
// testcontainers-go call, when they are unset:
//   - TESTCONTAINERS_RYUK_DISABLED=true: the reaper image cannot be pulled
//     without a registry. Containers are removed by rpcbench instead: every
//     container is labelled (LabelKey=1, LabelRun=<RunID>, LabelKind=<kind>)
//     and removed by Container.Stop, on a start error, on ctx cancellation
//     during start, and by StopAll (for a signal handler). ListLabelled and
//     RemoveContainer find and remove the leftovers of a run that was
//     killed (rpcbench brokers down).
//   - TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: /.dockerenv makes
//     testcontainers resolve the host to the default gateway; every endpoint
//     here is 127.0.0.1 anyway.
//
// Docker API versions: the moby client used by testcontainers-go v0.44.0
// negotiates down to the engine's version (Debian's 20.10 engine speaks API
// 1.41; the client supports 1.40 and later), so DOCKER_API_VERSION is not
// needed. Setting it pins the version and turns negotiation off.

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/client"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// NoEngineReason is the skip reason when no Docker engine answers.
const NoEngineReason = "skipped: no Docker engine; run `make brokers` (installs Docker and builds the images), or use --broker KIND=URL"

// dockerClient is a plain moby client (DOCKER_HOST or the default socket,
// API version negotiated). It does not go through testcontainers' host
// discovery, which caches its first answer for the whole process.
func dockerClient(_ context.Context) (*client.Client, error) {
	return client.New(client.FromEnv)
}

// engineCheckTimeout bounds CheckEngine.
const engineCheckTimeout = 5 * time.Second

// CheckEngine returns nil when a Docker engine answers within a few
// seconds, else an *Unavailable with NoEngineReason (and the cause).
func CheckEngine(ctx context.Context) error {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return &Unavailable{Reason: NoEngineReason}
		}
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return &Unavailable{Reason: NoEngineReason + " (" + err.Error() + ")"}
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, engineCheckTimeout)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return &Unavailable{Reason: NoEngineReason}
	}
	return nil
}

// tcEnvOnce applies the testcontainers settings before its first use.
var tcEnvOnce sync.Once

// The settings are applied when the package loads, so that no
// testcontainers call anywhere in the process can come first (it reads
// them once).
func init() { SetTestcontainersEnv() }

// SetTestcontainersEnv sets TESTCONTAINERS_RYUK_DISABLED=true and
// TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 in the process environment when
// they are unset, and silences testcontainers' default logger unless
// RPCBENCH_TC_LOG=1. testcontainers-go reads them once per process, so this
// runs before the first testcontainers call (StartContainer calls it).
func SetTestcontainersEnv() {
	tcEnvOnce.Do(func() {
		for k, v := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": Host,
		} {
			if _, ok := os.LookupEnv(k); !ok {
				os.Setenv(k, v)
			}
		}
		// testcontainers-go prints a banner to its default logger on the
		// first connection; keep rpcbench's output clean.
		if os.Getenv("RPCBENCH_TC_LOG") != "1" {
			tclog.SetDefault(tclog.NewNoopLogger())
		}
	})
}
