package broker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Broker sources shared by the JVM brokers (Kafka, RocketMQ, ActiveMQ).
const (
	SourceAuto      = "auto"
	SourceContainer = "container"
	SourceProcess   = "process"
)

// jvmSources is how a JVM broker chooses where it runs: a container from
// its locally built image, or Java processes from its jars (or Debian's
// package). The "source" param, else RPCBENCH_<NAME>_SOURCE, asks for one;
// "auto" (the default) takes the container when Docker answers and has
// the image, else the processes when java and the jars are there.
type jvmSources struct {
	name  string // lower case, as in messages and the env var
	title string // as in prose: "Kafka"
	image string
	home  func() (string, error)
	// use is the advice where the image is missing: what builds it, or
	// --broker instead
	use string
	// neither is the reason auto gives when neither source can run and
	// Docker does not answer; "" makes auto take the processes, which
	// then say what is missing
	neither string
}

func (j *jvmSources) envVar() string {
	return "RPCBENCH_" + strings.ToUpper(j.name) + "_SOURCE"
}

// resolve returns the source a start uses: asked (a "source" param), else
// the env var, auto choosing. A source that is neither container nor
// process is auto's reason why nothing can run.
func (j *jvmSources) resolve(ctx context.Context, asked string) (string, error) {
	what := fmt.Sprintf("source %q", asked)
	if asked == "" {
		asked = os.Getenv(j.envVar())
		what = fmt.Sprintf("%s=%q", j.envVar(), asked)
	}
	switch asked {
	case "", SourceAuto:
		return j.choose(ctx), nil
	case SourceContainer, SourceProcess:
		return asked, nil
	}
	return "", fmt.Errorf("%s: %s: want auto, container or process", j.name, what)
}

// choose is auto's choice.
func (j *jvmSources) choose(ctx context.Context) string {
	engineErr := CheckEngine(ctx)
	if engineErr == nil && imagePresent(ctx, j.image) {
		return SourceContainer
	}
	if _, err := j.home(); err == nil {
		if _, err := exec.LookPath("java"); err == nil {
			return SourceProcess
		}
	}
	switch {
	case j.neither == "":
		return SourceProcess // it says what is missing
	case engineErr == nil:
		return SourceContainer // it says the image is missing
	}
	return j.neither
}

// unavailable is why source cannot start here, or nil. It starts nothing.
func (j *jvmSources) unavailable(ctx context.Context, source string) error {
	switch source {
	case SourceContainer:
		if err := CheckEngine(ctx); err != nil {
			return err
		}
		if !imagePresent(ctx, j.image) {
			return &Unavailable{Reason: "skipped: no " + j.image + " image; " + j.use}
		}
		return nil
	case SourceProcess:
		if _, err := j.home(); err != nil {
			return &Unavailable{Reason: "skipped: " + err.Error()}
		}
		if _, err := exec.LookPath("java"); err != nil {
			return &Unavailable{Reason: "skipped: no java for the " + j.title + " process source; run `make brokers` (installs it)"}
		}
		return nil
	}
	return &Unavailable{Reason: "skipped: no " + j.title + " here: " + source}
}

// check returns the source a start with no "source" param would use, or
// why it cannot start here. It starts nothing.
func (j *jvmSources) check(ctx context.Context) (string, error) {
	s, err := j.resolve(ctx, "")
	if err != nil {
		return "", err
	}
	if err := j.unavailable(ctx, s); err != nil {
		return "", err
	}
	return s, nil
}
