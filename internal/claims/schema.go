package claims

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is the JSON Schema of claims.json (schema.json).
//
//go:embed schema.json
var Schema []byte

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// Validate checks a claims.json document against Schema.
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
		return fmt.Errorf("claims: schema: %w", compileErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("claims: not JSON: %w", err)
	}
	return compiled.Validate(v)
}

// Encode is doc as claims.json: indented JSON, checked against Schema.
func Encode(doc Document) ([]byte, error) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	if err := Validate(data); err != nil {
		return nil, fmt.Errorf("claims.json does not match its schema: %w", err)
	}
	return append(data, '\n'), nil
}
