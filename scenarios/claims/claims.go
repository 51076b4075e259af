// Package claims holds the claims suite's scenarios (one per claim whose
// evidence rpcbench can measure; README.md states every claim), embedded
// in the binary for `rpcbench claims`.
package claims

import (
	"embed"
	"strings"

	"github.com/rpcbench/rpcbench/scenarios"
)

//go:embed *.yaml
var files embed.FS

// Has reports whether claim id has a scenario.
func Has(id string) bool {
	_, err := files.ReadFile(id + ".yaml")
	return err == nil
}

// Load parses claim id's scenario (Source "embedded:claims/ID").
func Load(id string) (*scenarios.Scenario, error) {
	data, err := files.ReadFile(id + ".yaml")
	if err != nil {
		return nil, &scenarios.Error{File: "embedded:claims/" + id, Msg: "no scenario for this claim"}
	}
	return scenarios.Parse("embedded:claims/"+id, data)
}

// IDs lists the claims that have a scenario.
func IDs() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}
