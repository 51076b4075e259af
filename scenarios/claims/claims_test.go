package claims_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	iclaims "github.com/rpcbench/rpcbench/internal/claims"
	"github.com/rpcbench/rpcbench/scenarios/claims"
)

// TestScenarios: every claim whose evidence rpcbench can measure has a
// scenario that parses, repeats latency cells at least 3 times, and no
// scenario is for a claim that does not exist.
func TestScenarios(t *testing.T) {
	ids := iclaims.IDs()
	for _, id := range claims.IDs() {
		if !slices.Contains(ids, id) {
			t.Errorf("%s.yaml: no such claim (claims: %v)", id, ids)
			continue
		}
		sc, err := claims.Load(id)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if len(sc.Faults) == 0 && len(sc.Phases) == 0 && sc.Repeat < iclaims.MinRepetitions {
			t.Errorf("%s: repeat %d: latency and throughput claims are decided on at least %d", id, sc.Repeat, iclaims.MinRepetitions)
		}
	}
	for _, id := range ids {
		if !claims.Has(id) {
			t.Errorf("%s has no scenario", id)
		}
	}
}

// TestReadme: the README states every claim exactly as the verdict engine
// judges it (claim, source, assertion, tolerance).
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, c := range iclaims.Suite() {
		for field, text := range map[string]string{"Claim": c.Claim, "Source": c.Source, "Assertion": c.Assertion, "Tolerance": c.Tolerance} {
			if !strings.Contains(readme, "- "+field+": "+text+"\n") {
				t.Errorf("README.md: %s: no line \"- %s: %s\"", c.ID, field, text)
			}
		}
	}
}
