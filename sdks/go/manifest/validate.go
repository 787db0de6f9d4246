// Package manifest: this file owns validation with the appliance's exact rules: every
// problem at once, each with its path, stable code and hint. A port of
// src/domain/validate.rs and src/domain/expr.rs; the conformance vectors in
// fixtures/conformance/manifests keep the two in agreement.
package manifest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Field names of Manifest v1 objects, in schema order.
var (
	ManifestFields = []string{"name", "version", "region", "description", "timeout", "tasks"}
	TaskFields     = []string{"id", "uses", "with", "needs", "retry", "timeout"}
	RetryFields    = []string{"max_attempts", "backoff", "multiplier"}
)

// Problem is one thing wrong with a manifest.
type Problem struct {
	Code    string `json:"code"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Context is what validation knows about the appliance.
type Context struct {
	// Regions of the appliance; empty accepts any well-formed region.
	Regions []string
	// Packages maps a catalog package name to its installed versions.
	Packages map[string][]string
	// MaxTasks defaults to 256.
	MaxTasks int
	// MaxTimeoutMS defaults to 24 hours.
	MaxTimeoutMS uint64
}

// Valid is a manifest that passed validation.
type Valid struct {
	Document *Object
	Digest   string
	Deps     [][]int
	Order    []int
}

// InvalidError carries every problem of an invalid manifest.
type InvalidError struct{ Problems []Problem }

func (e *InvalidError) Error() string {
	if len(e.Problems) == 1 {
		return "the manifest is invalid: " + e.Problems[0].String()
	}
	first := ""
	if len(e.Problems) > 0 {
		first = e.Problems[0].String()
	}
	return fmt.Sprintf("the manifest has %d problems; the first: %s", len(e.Problems), first)
}

// Load parses YAML or JSON text and validates it. ctx may be nil.
func Load(text string, ctx *Context) (*Valid, error) {
	doc, err := ParseDocument(text)
	if err != nil {
		de := err.(*DocumentError)
		return nil, &InvalidError{[]Problem{{Code: de.Code, Message: de.Message, Hint: de.Hint}}}
	}
	return Validate(doc, ctx)
}

// Problems lists every problem of a manifest text (empty when it is valid).
func Problems(text string, ctx *Context) []Problem {
	_, err := Load(text, ctx)
	if ie, ok := err.(*InvalidError); ok {
		return ie.Problems
	}
	return nil
}

// --- expressions ---

// Reference is a parsed ${{ … }}: a task output (Task, Key, Path) or a context value.
type Reference struct {
	Task, Key string
	Path      []string
	Context   string
}

var segmentRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ParseReference parses the inside of ${{ … }}.
func ParseReference(body string) (Reference, error) {
	parts := strings.Split(body, ".")
	for _, p := range parts {
		if !segmentRe.MatchString(p) {
			return Reference{}, fmt.Errorf("invalid expression %s: expected tasks.ID.outputs.KEY or execution.id", rustDebug(body))
		}
	}
	switch {
	case len(parts) >= 4 && parts[0] == "tasks" && parts[2] == "outputs":
		return Reference{Task: parts[1], Key: parts[3], Path: parts[4:]}, nil
	case len(parts) >= 3 && parts[0] == "tasks" && parts[2] != "outputs":
		return Reference{}, fmt.Errorf("invalid expression %s: write tasks.%s.outputs.KEY", rustDebug(body), parts[1])
	case parts[0] == "tasks":
		return Reference{}, fmt.Errorf("invalid expression %s: expected tasks.ID.outputs.KEY", rustDebug(body))
	case len(parts) >= 2 && parts[0] == "inputs":
		// A package input: resolved at run time from the with: of the pkg: task.
		return Reference{Context: body}, nil
	case len(parts) == 2 && ((parts[0] == "execution" && (parts[1] == "id" || parts[1] == "tenant" || parts[1] == "region")) ||
		(parts[0] == "manifest" && (parts[1] == "name" || parts[1] == "version")) ||
		(parts[0] == "appliance" && parts[1] == "url")):
		return Reference{Context: body}, nil
	case parts[0] == "task" || parts[0] == "steps":
		return Reference{}, fmt.Errorf("invalid expression %s: references start with \"tasks.\"", rustDebug(body))
	}
	return Reference{}, fmt.Errorf("invalid expression %s: expected tasks.ID.outputs.KEY, inputs.KEY, execution.id, execution.tenant, execution.region, manifest.name, manifest.version or appliance.url", rustDebug(body))
}

type occurrence struct {
	ref Reference
	err error
}

// scan finds every ${{ … }} in a string.
func scan(text string) []occurrence {
	var out []occurrence
	from := 0
	for {
		rel := strings.Index(text[from:], "${{")
		if rel < 0 {
			return out
		}
		bodyStart := from + rel + 3
		end := strings.Index(text[bodyStart:], "}}")
		if end < 0 {
			return append(out, occurrence{err: fmt.Errorf("unterminated expression: missing \"}}\"")})
		}
		body := strings.TrimFunc(text[bodyStart:bodyStart+end], unicode.IsSpace)
		r, err := ParseReference(body)
		out = append(out, occurrence{r, err})
		from = bodyStart + end + 2
	}
}

func forEachString(v Value, path string, f func(path, s string)) {
	switch t := v.(type) {
	case string:
		f(path, t)
	case []Value:
		for i, x := range t {
			forEachString(x, fmt.Sprintf("%s[%d]", path, i), f)
		}
	case *Object:
		for _, k := range t.Keys {
			forEachString(t.values[k], path+"."+k, f)
		}
	}
}

func containsExpression(v Value) bool {
	found := false
	forEachString(v, "", func(_, s string) {
		if strings.Contains(s, "${{") {
			found = true
		}
	})
	return found
}

// --- the checker ---

func child(path, key string) string {
	simple := key != ""
	for i := 0; simple && i < len(key); i++ {
		c := key[i]
		simple = isASCIIAlnum(c) || c == '_' || c == '-'
	}
	switch {
	case simple && path == "":
		return key
	case simple:
		return path + "." + key
	}
	return path + "[" + rustDebug(key) + "]"
}

type taskView struct {
	path        string
	id          *string
	uses        *Uses
	with        *Object
	withInvalid bool
	needs       [][2]string
}

type checker struct {
	ctx      *Context
	problems []Problem
}

func (c *checker) push(code, path, message, hint string) {
	c.problems = append(c.problems, Problem{code, path, message, hint})
}

func (c *checker) typeError(path, expected string, found Value, hint string) {
	c.push("invalid_type", path, fmt.Sprintf("expected %s, found %s", expected, KindOf(found)), hint)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *checker) object(v Value, path, what string, fields []string, required [][2]string) *Object {
	o, ok := v.(*Object)
	if !ok {
		shown := what
		if path == "" {
			shown = "the manifest"
		}
		c.push("invalid_type", path, fmt.Sprintf("expected %s to be an object, found %s", shown, KindOf(v)),
			fmt.Sprintf("%s fields are: %s", what, strings.Join(fields, ", ")))
		return nil
	}
	for _, k := range o.Keys {
		if !contains(fields, k) {
			c.push("unknown_field", child(path, k), fmt.Sprintf("unknown field in %s%s", what, DidYouMean(k, fields)),
				fmt.Sprintf("%s fields are: %s", what, strings.Join(fields, ", ")))
		}
	}
	for _, r := range required {
		if !o.Has(r[0]) {
			c.push("missing_field", child(path, r[0]), fmt.Sprintf("missing required field %s", rustDebug(r[0])), r[1])
		}
	}
	return o
}

func (c *checker) str(o *Object, path, key, hint string) *string {
	v, ok := o.Get(key)
	if !ok {
		return nil
	}
	if s, ok := v.(string); ok {
		return &s
	}
	c.typeError(child(path, key), "a string", v, hint)
	return nil
}

func (c *checker) duration(o *Object, path, key string, maxMS uint64) {
	text := c.str(o, path, key, `write a duration such as "30s"`)
	if text == nil {
		return
	}
	p := child(path, key)
	ms, err := ParseDuration(*text)
	switch {
	case err != nil:
		c.push("invalid_duration", p, fmt.Sprintf("invalid duration %s: %v", rustDebug(*text), err),
			`write an integer and a unit (ms, s, m, h), e.g. "30s" or "1m30s"`)
	case ms == 0:
		c.push("invalid_duration", p, fmt.Sprintf("duration %s must be greater than zero", rustDebug(*text)), "")
	case ms > maxMS:
		c.push("invalid_duration", p, fmt.Sprintf("duration %s exceeds the limit of %s", rustDebug(*text), FormatDuration(maxMS)), "")
	}
}

func isLowerOrDigit(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') }

func (c *checker) topLevel(doc Value) []taskView {
	m := c.object(doc, "", "manifest", ManifestFields, [][2]string{
		{"name", "add name: my-workflow"},
		{"version", `add version: "1.0.0"`},
		{"region", "add region: with the region where the data must stay"},
		{"tasks", "add tasks: with at least one task"},
	})
	if m == nil {
		return nil
	}
	if name := c.str(m, "", "name", ""); name != nil {
		n := *name
		ok := n != "" && len(n) <= 64 && isLowerOrDigit(n[0])
		for i := 0; ok && i < len(n); i++ {
			ok = isLowerOrDigit(n[i]) || n[i] == '.' || n[i] == '_' || n[i] == '-'
		}
		if !ok {
			c.push("invalid_value", "name", fmt.Sprintf("invalid workflow name %s", rustDebug(n)),
				"use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
	}
	if v, ok := m.Get("version"); ok {
		if s, isStr := v.(string); isStr {
			if _, err := ParseSemver(s); err != nil {
				c.push("invalid_version", "version", fmt.Sprintf("%s is not a semantic version: %v", rustDebug(s), err),
					`use MAJOR.MINOR.PATCH, e.g. "1.0.0"`)
			}
		} else {
			c.typeError("version", "a string", v, versionHint(v))
		}
	}
	if region := c.str(m, "", "region", ""); region != nil {
		c.region(*region)
	}
	if desc := c.str(m, "", "description", ""); desc != nil && len(*desc) > 4096 {
		c.push("too_large", "description", fmt.Sprintf("description is %d bytes; the limit is 4096", len(*desc)), "")
	}
	if m.Has("timeout") {
		c.duration(m, "", "timeout", c.ctx.MaxTimeoutMS)
	}
	tv, ok := m.Get("tasks")
	if !ok {
		return nil
	}
	items, ok := tv.([]Value)
	if !ok {
		c.typeError("tasks", "a list of tasks", tv, "write tasks: followed by items such as - id: hello")
		return nil
	}
	if len(items) == 0 {
		c.push("invalid_value", "tasks", "a workflow needs at least one task",
			"add a task, e.g. - {id: hello, uses: builtin/echo, with: {message: hi}}")
	}
	if len(items) > c.ctx.MaxTasks {
		c.push("too_large", "tasks", fmt.Sprintf("%d tasks; the limit is %d", len(items), c.ctx.MaxTasks),
			"split the workflow or raise limits.max_tasks")
		return nil
	}
	var out []taskView
	for i, t := range items {
		if v := c.task(t, fmt.Sprintf("tasks[%d]", i)); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// serdeNumber is serde_json's Display of a number.
// versionHint is the hint for a version that is not a string: a number, unquoted, was read
// as one (and a float has lost how it was written: 1.10 is the number 1.1).
func versionHint(v Value) string {
	switch v.(type) {
	case float64:
		n := serdeNumber(v)
		return fmt.Sprintf(`quote the version as you meant it (unquoted it is the number %s): version: "%s.0"`, n, n)
	case int64, uint64:
		return fmt.Sprintf(`quote the version: version: "%s.0.0"`, serdeNumber(v))
	}
	return `quote the version: version: "1.0.0"`
}

func serdeNumber(v Value) string {
	switch t := v.(type) {
	case int64:
		return strconv.FormatInt(t, 10)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float64:
		s := strconv.FormatFloat(t, 'f', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s
	}
	return fmt.Sprint(v)
}

func (c *checker) region(region string) {
	ok := region != "" && len(region) <= 32 && region[0] >= 'a' && region[0] <= 'z'
	for i := 0; ok && i < len(region); i++ {
		ok = isLowerOrDigit(region[i]) || region[i] == '-'
	}
	if !ok {
		lower := asciiLower(region)
		hint := "use lowercase letters, digits and '-', e.g. eu-west"
		if lower != region && lower != "" {
			hint = "regions are lowercase: region: " + lower
		}
		c.push("invalid_value", "region", fmt.Sprintf("invalid region %s", rustDebug(region)), hint)
		return
	}
	if len(c.ctx.Regions) > 0 && !contains(c.ctx.Regions, region) {
		c.push("unknown_region", "region", fmt.Sprintf("unknown region %s%s", rustDebug(region), DidYouMean(region, c.ctx.Regions)),
			"regions of this appliance: "+strings.Join(c.ctx.Regions, ", "))
	}
}

func (c *checker) task(v Value, path string) *taskView {
	m := c.object(v, path, "task", TaskFields, [][2]string{
		{"id", "add id: with a unique task name"},
		{"uses", "add uses: builtin/echo (or another action)"},
	})
	if m == nil {
		return nil
	}
	t := &taskView{path: path}
	t.id = c.str(m, path, "id", "")
	if t.id != nil {
		id := *t.id
		ok := id != "" && len(id) <= 64 && id[0] >= 'a' && id[0] <= 'z'
		for i := 0; ok && i < len(id); i++ {
			ok = isLowerOrDigit(id[i]) || id[i] == '_' || id[i] == '-'
		}
		if !ok {
			c.push("invalid_value", child(path, "id"), fmt.Sprintf("invalid task id %s", rustDebug(id)),
				"use 1-64 lowercase letters, digits, '_' or '-', starting with a letter")
		}
	}
	if u := c.str(m, path, "uses", ""); u != nil {
		parsed, err := ParseUses(*u)
		if err != nil {
			ue := err.(*UsesError)
			c.push("unknown_action", child(path, "uses"), ue.Message, ue.Hint)
		} else {
			t.uses = &parsed
		}
	}
	if w, ok := m.Get("with"); ok {
		switch wt := w.(type) {
		case *Object:
			t.with = wt
		case nil:
		default:
			c.typeError(child(path, "with"), "an object of inputs", w, "write with: followed by key: value lines")
			t.withInvalid = true
		}
	}
	if n, ok := m.Get("needs"); ok {
		if list, isList := n.([]Value); isList {
			for i, item := range list {
				p := fmt.Sprintf("%s.needs[%d]", path, i)
				if s, isStr := item.(string); isStr {
					t.needs = append(t.needs, [2]string{p, s})
				} else {
					c.typeError(p, "a task id", item, "")
				}
			}
		} else {
			hint := "write needs: [other-task]"
			if s, isStr := n.(string); isStr {
				hint = fmt.Sprintf("write needs: [%s]", s)
			}
			c.typeError(child(path, "needs"), "a list of task ids", n, hint)
		}
	}
	if r, ok := m.Get("retry"); ok {
		c.retry(r, child(path, "retry"))
	}
	if m.Has("timeout") {
		c.duration(m, path, "timeout", c.ctx.MaxTimeoutMS)
	}
	return t
}

func (c *checker) retry(v Value, path string) {
	m := c.object(v, path, "retry", RetryFields, [][2]string{{"max_attempts", "add max_attempts: 3"}})
	if m == nil {
		return
	}
	if v, ok := m.Get("max_attempts"); ok {
		var n uint64
		isU64 := true
		switch t := v.(type) {
		case int64:
			isU64 = t >= 0
			n = uint64(t)
		case uint64:
			n = t
		default:
			isU64 = false
		}
		if !isU64 {
			c.typeError(child(path, "max_attempts"), "a whole number from 1 to 10", v, "")
		} else if n < 1 || n > 10 {
			c.push("invalid_value", child(path, "max_attempts"), fmt.Sprintf("max_attempts is %d; it must be between 1 and 10", n), "")
		}
	}
	if m.Has("backoff") {
		c.duration(m, path, "backoff", 3600000)
	}
	if v, ok := m.Get("multiplier"); ok {
		if KindOf(v) == "a number" {
			f := toFloat(v)
			if f < 1 || f > 10 {
				c.push("invalid_value", child(path, "multiplier"), fmt.Sprintf("multiplier is %s; it must be between 1 and 10", strconv.FormatFloat(f, 'f', -1, 64)), "")
			}
		} else {
			c.typeError(child(path, "multiplier"), "a number from 1 to 10", v, "")
		}
	}
}

func (c *checker) semantics(tasks []taskView) [][]int {
	index := map[string]int{}
	for i, t := range tasks {
		if t.id == nil {
			continue
		}
		if first, ok := index[*t.id]; ok {
			c.push("duplicate_id", child(t.path, "id"), fmt.Sprintf("duplicate task id %s (first defined at %s)", rustDebug(*t.id), tasks[first].path),
				"give every task a unique id")
		} else {
			index[*t.id] = i
		}
	}
	var ids []string
	for _, t := range tasks {
		if t.id != nil {
			ids = append(ids, *t.id)
		}
	}
	deps := make([][]int, len(tasks))
	addDep := func(i, j int) {
		for _, d := range deps[i] {
			if d == j {
				return
			}
		}
		deps[i] = append(deps[i], j)
	}
	for i, t := range tasks {
		if t.uses != nil && t.uses.Builtin == nil {
			versions := c.ctx.Packages[t.uses.PackageName]
			if !contains(versions, t.uses.PackageVersion) {
				hint := "publish and install the package first; `maestro package list` shows the catalog"
				if len(versions) > 0 {
					v := append([]string(nil), versions...)
					sort.Strings(v)
					hint = "installed versions: " + strings.Join(v, ", ")
				}
				c.push("unknown_package", child(t.path, "uses"), fmt.Sprintf("package \"%s@%s\" is not in the catalog", t.uses.PackageName, t.uses.PackageVersion), hint)
			}
		}
		var spec *ActionSpec
		if t.uses != nil {
			spec = t.uses.Builtin
		}
		if spec != nil && t.with != nil {
			c.inputs(spec, t.with, child(t.path, "with"))
		} else if spec != nil && t.with == nil && !t.withInvalid {
			for _, in := range spec.Inputs {
				if in.Required {
					c.push("missing_input", child(t.path, "with"), fmt.Sprintf("missing required input %s for %s", rustDebug(in.Name), spec.Name),
						fmt.Sprintf("add with: {%s: …} (%s)", in.Name, in.Doc))
				}
			}
		}
		var seen []string
		for _, pn := range t.needs {
			p, need := pn[0], pn[1]
			if contains(seen, need) {
				c.push("invalid_value", p, fmt.Sprintf("%s is listed twice in needs", rustDebug(need)), "list each task once")
				continue
			}
			seen = append(seen, need)
			j, ok := index[need]
			switch {
			case ok && j == i:
				c.push("self_reference", p, fmt.Sprintf("task %s cannot need itself", rustDebug(need)), "")
			case ok:
				addDep(i, j)
			default:
				c.push("unknown_task", p, fmt.Sprintf("unknown task %s%s", rustDebug(need), DidYouMean(need, ids)),
					"tasks in this manifest: "+strings.Join(ids, ", "))
			}
		}
		if t.with == nil {
			continue
		}
		type ref struct {
			path string
			occ  occurrence
		}
		var refs []ref
		forEachString(t.with, child(t.path, "with"), func(p, s string) {
			if strings.Contains(s, "${{") {
				for _, o := range scan(s) {
					refs = append(refs, ref{p, o})
				}
			}
		})
		for _, r := range refs {
			if r.occ.err != nil {
				c.push("invalid_expression", r.path, r.occ.err.Error(), "write ${{ tasks.ID.outputs.KEY }}")
				continue
			}
			if r.occ.ref.Context != "" {
				continue
			}
			task, key := r.occ.ref.Task, r.occ.ref.Key
			j, ok := index[task]
			switch {
			case ok && j == i:
				c.push("self_reference", r.path, fmt.Sprintf("task %s cannot reference its own outputs", rustDebug(task)), "")
			case ok:
				addDep(i, j)
				if u := tasks[j].uses; u != nil && u.Builtin != nil && !contains(u.Builtin.Outputs, key) {
					pr := u.Builtin
					c.push("unknown_output", r.path, fmt.Sprintf("%s has no output %s%s", pr.Name, rustDebug(key), DidYouMean(key, pr.Outputs)),
						fmt.Sprintf("outputs of %s: %s", pr.Name, strings.Join(pr.Outputs, ", ")))
				}
			default:
				c.push("unknown_task", r.path, fmt.Sprintf("reference to unknown task %s%s", rustDebug(task), DidYouMean(task, ids)),
					"tasks in this manifest: "+strings.Join(ids, ", "))
			}
		}
	}
	return deps
}

func (c *checker) inputs(spec *ActionSpec, with *Object, path string) {
	var names []string
	for _, in := range spec.Inputs {
		names = append(names, in.Name)
	}
	for _, key := range with.Keys {
		value := with.values[key]
		in := spec.Input(key)
		if in == nil {
			c.push("unknown_input", child(path, key), fmt.Sprintf("unknown input for %s%s", spec.Name, DidYouMean(key, names)),
				fmt.Sprintf("inputs of %s: %s", spec.Name, strings.Join(names, ", ")))
			continue
		}
		if containsExpression(value) {
			continue
		}
		if msg := in.Kind.Check(value); msg != "" {
			code := "invalid_type"
			if _, isStr := value.(string); isStr && in.Kind.Name == "duration" {
				code = "invalid_duration"
			}
			c.push(code, child(path, key), msg, in.Name+": "+in.Doc)
		}
	}
	for _, in := range spec.Inputs {
		if in.Required && !with.Has(in.Name) {
			c.push("missing_input", path, fmt.Sprintf("missing required input %s for %s", rustDebug(in.Name), spec.Name),
				fmt.Sprintf("add %s: … (%s)", in.Name, in.Doc))
		}
	}
}

func (c *checker) order(tasks []taskView, deps [][]int) []int {
	n := len(deps)
	indegree := make([]int, n)
	dependents := make([][]int, n)
	for i, ds := range deps {
		indegree[i] = len(ds)
		for _, d := range ds {
			dependents[d] = append(dependents[d], i)
		}
	}
	var ready []int
	for i := n - 1; i >= 0; i-- {
		if indegree[i] == 0 {
			ready = append(ready, i)
		}
	}
	var order []int
	for len(ready) > 0 {
		i := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		order = append(order, i)
		for k := len(dependents[i]) - 1; k >= 0; k-- {
			j := dependents[i][k]
			indegree[j]--
			if indegree[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	if len(order) == n {
		return order
	}
	start := -1
	for i := 0; i < n; i++ {
		if indegree[i] > 0 {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	seen := map[int]int{}
	path := []int{start}
	cur := start
	for {
		seen[cur] = len(path) - 1
		next := -1
		for _, d := range deps[cur] {
			if indegree[d] > 0 {
				next = d
				break
			}
		}
		if next < 0 {
			return nil
		}
		if pos, ok := seen[next]; ok {
			cycle := append([]int(nil), path[pos:]...)
			first, rot := cycle[0], 0
			for k, x := range cycle {
				if x < first {
					first, rot = x, k
				}
			}
			cycle = append(cycle[rot:], cycle[:rot]...)
			var names []string
			for _, x := range cycle {
				if tasks[x].id != nil {
					names = append(names, *tasks[x].id)
				} else {
					names = append(names, "?")
				}
			}
			names = append(names, names[0])
			c.push("cycle", child(tasks[first].path, "needs"), "dependency cycle: "+strings.Join(names, " -> "),
				"remove one of these needs or references")
			return nil
		}
		path = append(path, next)
		cur = next
	}
}

// Validate checks a parsed document. ctx may be nil.
func Validate(doc Value, ctx *Context) (*Valid, error) {
	cx := Context{MaxTasks: 256, MaxTimeoutMS: 24 * 3600 * 1000}
	if ctx != nil {
		cx = *ctx
		if cx.MaxTasks == 0 {
			cx.MaxTasks = 256
		}
		if cx.MaxTimeoutMS == 0 {
			cx.MaxTimeoutMS = 24 * 3600 * 1000
		}
	}
	c := &checker{ctx: &cx}
	tasks := c.topLevel(doc)
	deps := c.semantics(tasks)
	usable := true
	for _, t := range tasks {
		if t.id == nil {
			usable = false
		}
	}
	for _, p := range c.problems {
		if p.Code == "duplicate_id" {
			usable = false
		}
	}
	var order []int
	if usable {
		order = c.order(tasks, deps)
	}
	if len(c.problems) > 0 {
		return nil, &InvalidError{c.problems}
	}
	digest, err := DocumentDigest(doc)
	if err != nil {
		return nil, &InvalidError{[]Problem{{Code: "invalid_value", Message: err.Error()}}}
	}
	return &Valid{Document: doc.(*Object), Digest: digest, Deps: deps, Order: order}, nil
}
