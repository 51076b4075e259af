package broker

// Choosing the image a container runs: the first candidate present, else
// the first that can be pulled (never a Local one).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// Image is one candidate image and how to run it.
type Image struct {
	Name string
	// Local marks an image built on this machine (docker/build-images.sh):
	// never pulled.
	Local bool
	// Entrypoint and Cmd override the image's when not nil.
	Entrypoint []string
	Cmd        []string
	// Env is added to ContainerSpec.Env (and wins over it).
	Env map[string]string
}

// pullFailed remembers images that could not be pulled in this process.
var pullFailed sync.Map

// chooseImage returns the first candidate present or pullable.
func chooseImage(ctx context.Context, spec *ContainerSpec) (Image, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return Image{}, err
	}
	defer cli.Close()
	pullTimeout := spec.PullTimeout
	if pullTimeout == 0 {
		pullTimeout = 60 * time.Second
	}
	noPull := pullTimeout < 0 || os.Getenv("RPCBENCH_NO_PULL") == "1"
	var tried []string
	// First pass: what is present; second pass: pull.
	for _, im := range spec.Images {
		if _, err := cli.ImageInspect(ctx, im.Name); err == nil {
			return im, nil
		}
	}
	for _, im := range spec.Images {
		if im.Local || noPull {
			tried = append(tried, im.Name+" (absent)")
			continue
		}
		if v, ok := pullFailed.Load(im.Name); ok {
			tried = append(tried, im.Name+" ("+v.(string)+")")
			continue
		}
		if err := pull(ctx, cli, im.Name, pullTimeout); err != nil {
			if ctx.Err() != nil {
				return Image{}, ctx.Err()
			}
			msg := firstLine(err.Error())
			pullFailed.Store(im.Name, msg)
			tried = append(tried, im.Name+" (pull: "+msg+")")
			continue
		}
		return im, nil
	}
	return Image{}, &Unavailable{Reason: fmt.Sprintf("skipped: no %s image: tried %s; run `make brokers` (installs Docker and builds the images), or use --broker", spec.Kind, strings.Join(tried, ", "))}
}

func pull(ctx context.Context, cli *client.Client, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rc, err := cli.ImagePull(ctx, name, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := rc.Wait(ctx); err != nil {
		return err
	}
	// A pull can end without error but without the image.
	if _, err := cli.ImageInspect(ctx, name); err != nil {
		return err
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// imagePresent reports whether the engine has image name locally.
func imagePresent(ctx context.Context, name string) bool {
	cli, err := dockerClient(ctx)
	if err != nil {
		return false
	}
	defer cli.Close()
	_, err = cli.ImageInspect(ctx, name)
	return err == nil
}
