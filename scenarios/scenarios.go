// Package scenarios parses scenario files: a matrix of drivers × variants ×
// payload sizes × load (concurrency or rate) × service time, with duration,
// warm-up, repetitions and timeout. Decoding is strict: unknown keys, wrong
// types, missing required fields and out-of-range values are errors of the
// form "file:line: field: what is wrong".
package scenarios

// Loading scenarios: embedded by name, or from a file.
//
// The package's files: types.go (the resolved scenario and its value
// types), values.go (sizes and service times), parse.go (strict YAML
// decoding with file:line errors), validate.go (limits and the checks across
// keys), defaults.go (what a scenario does not set), overrides.go
// (command-line values), errors.go (Error).

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

//go:embed *.yaml
var embedded embed.FS

// Default is the name of the scenario embedded in the binary.
const Default = "default"

// Embedded lists the scenarios built into the binary.
func Embedded() []string {
	ents, _ := embedded.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Load reads a scenario from a file path, or an embedded one by name.
func Load(nameOrPath string) (*Scenario, error) {
	if data, err := embedded.ReadFile(nameOrPath + ".yaml"); err == nil && !strings.ContainsAny(nameOrPath, `/\`) {
		return Parse("embedded:"+nameOrPath, data)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: nameOrPath, Msg: fmt.Sprintf("no such file and no embedded scenario of that name (embedded: %s)", strings.Join(Embedded(), ", "))}
		}
		return nil, &Error{File: nameOrPath, Msg: err.Error()}
	}
	return Parse(nameOrPath, data)
}

// Name of the results directory for a run of s started at t.
func (s *Scenario) RunID(t time.Time) string {
	return t.UTC().Format("20060102T150405Z") + "-" + filepath.Base(s.Name)
}
