// Package manifest: this file owns the Manifest v1 Go types (matching
// docs/schema/manifest-v1.json) and Parse, which validates text with the appliance's rules
// before decoding it into them.
package manifest

import "encoding/json"

// Manifest is a workflow: named, versioned, bound to a region, made of tasks.
type Manifest struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Region      string `json:"region"`
	Description string `json:"description,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
	Tasks       []Task `json:"tasks"`
}

// Task is one step of a workflow.
type Task struct {
	ID      string                 `json:"id"`
	Uses    string                 `json:"uses"`
	With    map[string]interface{} `json:"with,omitempty"`
	Needs   []string               `json:"needs,omitempty"`
	Retry   *Retry                 `json:"retry,omitempty"`
	Timeout string                 `json:"timeout,omitempty"`
}

// Retry is how a failed task is retried.
type Retry struct {
	MaxAttempts uint32   `json:"max_attempts"`
	Backoff     string   `json:"backoff,omitempty"`
	Multiplier  *float64 `json:"multiplier,omitempty"`
}

// Parse validates YAML or JSON text with the appliance's rules (returning *InvalidError
// with every problem) and decodes it. ctx may be nil.
func Parse(text string, ctx *Context) (*Manifest, *Valid, error) {
	v, err := Load(text, ctx)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(v.Document)
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, err
	}
	return &m, v, nil
}

// Check validates a Manifest value as the appliance would validate its JSON form.
func (m *Manifest) Check(ctx *Context) (*Valid, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return Load(string(b), ctx)
}
