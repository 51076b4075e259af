package results

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is the JSON Schema of the result format (schema.json).
//
//go:embed schema.json
var Schema []byte

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// Validate checks a result document against Schema.
func Validate(doc []byte) error {
	compileOnce.Do(func() {
		var s any
		if compileErr = json.Unmarshal(Schema, &s); compileErr != nil {
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if compileErr = c.AddResource("schema.json", s); compileErr != nil {
			return
		}
		compiled, compileErr = c.Compile("schema.json")
	})
	if compileErr != nil {
		return fmt.Errorf("results: schema: %w", compileErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("results: not JSON: %w", err)
	}
	return compiled.Validate(v)
}
