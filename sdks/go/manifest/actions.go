// Package manifest: this file owns the built-in action catalog as data (mirroring
// src/domain/actions.rs), the "uses" parser, the duration grammar (src/domain/duration.rs),
// semantic versions as the Rust semver crate parses them, and "did you mean" suggestions.
package manifest

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// rustDebug quotes a string the way Rust's {:?} prints it (for messages).
func rustDebug(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u{%x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// --- durations ---

var durationUnits = map[string]uint64{"ms": 1, "s": 1000, "m": 60000, "h": 3600000}

// ParseDuration returns the milliseconds of a duration string ("250ms", "1m30s").
func ParseDuration(text string) (uint64, error) {
	if text == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if len(text) > 64 {
		return 0, fmt.Errorf("duration is too long")
	}
	var total uint64
	i := 0
	overflow := false
	for i < len(text) {
		start := i
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
		if i == start {
			return 0, fmt.Errorf("expected a number at position %d of %s", start+1, rustDebug(text))
		}
		if i-start > 9 {
			return 0, fmt.Errorf("number in duration is too large")
		}
		var n uint64
		for _, c := range text[start:i] {
			n = n*10 + uint64(c-'0')
		}
		us := i
		for i < len(text) && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z')) {
			i++
		}
		unit := text[us:i]
		f, ok := durationUnits[unit]
		if unit == "" {
			return 0, fmt.Errorf("missing unit after %d (use ms, s, m or h, e.g. \"%ds\")", n, n)
		}
		if !ok {
			return 0, fmt.Errorf("unknown unit %s (use ms, s, m or h)", rustDebug(unit))
		}
		add := n * f
		if total+add < total {
			overflow = true
		}
		total += add
	}
	if overflow {
		return 0, fmt.Errorf("duration is too large")
	}
	return total, nil
}

// FormatDuration formats milliseconds in the grammar ParseDuration accepts.
func FormatDuration(ms uint64) string {
	if ms == 0 {
		return "0ms"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		size uint64
	}{{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}} {
		if ms >= u.size {
			fmt.Fprintf(&b, "%d%s", ms/u.size, u.unit)
			ms %= u.size
		}
	}
	return b.String()
}

// --- semantic versions (the Rust semver crate's parser and messages) ---

func qchar(r rune) string {
	if r == 0 {
		return `'\0'`
	}
	if r == '\'' {
		return `'\''`
	}
	s := rustDebug(string(r))
	return "'" + strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`) + "'"
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

func semverNumeric(text, pos string) (string, error) {
	n := 0
	var value uint64
	for n < len(text) && text[n] >= '0' && text[n] <= '9' {
		if value == 0 && n > 0 {
			return "", fmt.Errorf("invalid leading zero in %s", pos)
		}
		d := uint64(text[n] - '0')
		if value > (^uint64(0)-d)/10 {
			return "", fmt.Errorf("value of %s exceeds u64::MAX", pos)
		}
		value = value*10 + d
		n++
	}
	if n > 0 {
		return text[n:], nil
	}
	if text != "" {
		return "", fmt.Errorf("unexpected character %s while parsing %s", qchar(firstRune(text)), pos)
	}
	return "", fmt.Errorf("unexpected end of input while parsing %s", pos)
}

func semverDot(text, pos string) (string, error) {
	if strings.HasPrefix(text, ".") {
		return text[1:], nil
	}
	if text != "" {
		return "", fmt.Errorf("unexpected character %s after %s", qchar(firstRune(text)), pos)
	}
	return "", fmt.Errorf("unexpected end of input while parsing %s", pos)
}

func semverIdentifier(text, pos string) (string, string, error) {
	acc, seg := 0, 0
	nondigit := false
	for {
		i := acc + seg
		var c byte
		if i < len(text) {
			c = text[i]
		}
		switch {
		case i < len(text) && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-'):
			seg++
			nondigit = true
		case i < len(text) && c >= '0' && c <= '9':
			seg++
		default:
			if seg == 0 {
				if acc == 0 && !(i < len(text) && c == '.') {
					return "", text, nil
				}
				return "", "", fmt.Errorf("empty identifier segment in %s", pos)
			}
			if pos == "pre-release identifier" && seg > 1 && !nondigit && strings.HasPrefix(text[acc:], "0") {
				return "", "", fmt.Errorf("invalid leading zero in %s", pos)
			}
			acc += seg
			if i < len(text) && c == '.' {
				acc++
				seg = 0
				nondigit = false
			} else {
				return text[:acc], text[acc:], nil
			}
		}
	}
}

// ParseSemver checks a semantic version exactly as the Rust semver crate does (same
// errors) and returns it in canonical form.
func ParseSemver(text string) (string, error) {
	if text == "" {
		return "", fmt.Errorf("empty string, expected a semver version")
	}
	orig := text
	var err error
	for _, step := range []struct {
		pos string
		dot bool
	}{{"major version number", true}, {"minor version number", true}, {"patch version number", false}} {
		if text, err = semverNumeric(text, step.pos); err != nil {
			return "", err
		}
		if step.dot {
			if text, err = semverDot(text, step.pos); err != nil {
				return "", err
			}
		}
	}
	pos := "patch version number"
	if strings.HasPrefix(text, "-") {
		pos = "pre-release identifier"
		var pre string
		if pre, text, err = semverIdentifier(text[1:], pos); err != nil {
			return "", err
		}
		if pre == "" {
			return "", fmt.Errorf("empty identifier segment in %s", pos)
		}
	}
	if strings.HasPrefix(text, "+") {
		pos = "build metadata"
		var build string
		if build, text, err = semverIdentifier(text[1:], pos); err != nil {
			return "", err
		}
		if build == "" {
			return "", fmt.Errorf("empty identifier segment in %s", pos)
		}
	}
	if text != "" {
		return "", fmt.Errorf("unexpected character %s after %s", qchar(firstRune(text)), pos)
	}
	return orig, nil
}

// --- suggestions ---

// editDistance is the unrestricted Damerau-Levenshtein distance (strsim's).
func editDistance(a, b []rune) int {
	al, bl := len(a), len(b)
	if al == 0 {
		return bl
	}
	if bl == 0 {
		return al
	}
	width := al + 2
	maxD := al + bl
	d := make([]int, (al+2)*(bl+2))
	at := func(i, j int) int { return j*width + i }
	d[0] = maxD
	for i := 0; i <= al; i++ {
		d[at(i+1, 0)] = maxD
		d[at(i+1, 1)] = i
	}
	for j := 0; j <= bl; j++ {
		d[at(0, j+1)] = maxD
		d[at(1, j+1)] = j
	}
	last := map[rune]int{}
	for i := 1; i <= al; i++ {
		db := 0
		for j := 1; j <= bl; j++ {
			k := last[b[j-1]]
			ins := d[at(i, j+1)] + 1
			del := d[at(i+1, j)] + 1
			tr := d[at(k, db)] + (i - k - 1) + 1 + (j - db - 1)
			sub := d[at(i, j)] + 1
			if a[i-1] == b[j-1] {
				db = j
				sub--
			}
			m := sub
			for _, x := range []int{ins, del, tr} {
				if x < m {
					m = x
				}
			}
			d[at(i+1, j+1)] = m
		}
		last[a[i-1]] = i
	}
	return d[at(al+1, bl+1)]
}

func asciiLower(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r >= 'A' && r <= 'Z' {
			b[i] = r + 32
		}
	}
	return string(b)
}

// DidYouMean is ` (did you mean "x"?)` for the closest candidate, or "".
func DidYouMean(value string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance([]rune(asciiLower(value)), []rune(asciiLower(c)))
		l := len(c)
		if len(value) > l {
			l = len(value)
		}
		limit := l / 3
		if limit < 1 {
			limit = 1
		}
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", rustDebug(best))
}

// --- the catalog ---

// KindOf names the JSON type of a value for messages.
func KindOf(v Value) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, uint64, float64, int:
		return "a number"
	case string:
		return "a string"
	case []Value:
		return "a list"
	}
	return "an object"
}

// InputKind is what values an input accepts: "any", "string", "integer", "bool",
// "string_map", "string_list", "duration" or "one_of" (with Options).
type InputKind struct {
	Name    string
	Options []string
}

// Describe is the short description used in messages.
func (k InputKind) Describe() string {
	switch k.Name {
	case "any":
		return "any value"
	case "string":
		return "a string"
	case "integer":
		return "a whole number"
	case "bool":
		return "true or false"
	case "string_map":
		return "an object of strings"
	case "string_list":
		return "a list of strings"
	case "duration":
		return `a duration such as "30s"`
	}
	return "one of " + strings.Join(k.Options, ", ")
}

// Check returns "" when a literal value fits, or the message.
func (k InputKind) Check(v Value) string {
	mismatch := fmt.Sprintf("expected %s, found %s", k.Describe(), KindOf(v))
	switch k.Name {
	case "duration":
		s, ok := v.(string)
		if !ok {
			return mismatch
		}
		if _, err := ParseDuration(s); err != nil {
			return err.Error()
		}
		return ""
	case "one_of":
		s, ok := v.(string)
		if !ok {
			return mismatch
		}
		for _, o := range k.Options {
			if o == s {
				return ""
			}
		}
		return fmt.Sprintf("%s is not %s%s", rustDebug(s), k.Describe(), DidYouMean(s, k.Options))
	case "any":
		return ""
	case "string":
		if _, ok := v.(string); ok {
			return ""
		}
	case "integer":
		switch v.(type) {
		case int64, uint64, int:
			return ""
		}
	case "bool":
		if _, ok := v.(bool); ok {
			return ""
		}
	case "string_map":
		if o, ok := v.(*Object); ok {
			for _, key := range o.Keys {
				if _, ok := o.values[key].(string); !ok {
					return mismatch
				}
			}
			return ""
		}
	case "string_list":
		if l, ok := v.([]Value); ok {
			for _, x := range l {
				if _, ok := x.(string); !ok {
					return mismatch
				}
			}
			return ""
		}
	}
	return mismatch
}

// InputSpec is one input of an action.
type InputSpec struct {
	Name     string
	Kind     InputKind
	Required bool
	Doc      string
}

// ActionSpec is a built-in action.
type ActionSpec struct {
	Name    string
	Summary string
	Inputs  []InputSpec
	Outputs []string
}

// Input returns the spec of an input by name.
func (a *ActionSpec) Input(name string) *InputSpec {
	for i := range a.Inputs {
		if a.Inputs[i].Name == name {
			return &a.Inputs[i]
		}
	}
	return nil
}

func req(name string, kind InputKind, doc string) InputSpec { return InputSpec{name, kind, true, doc} }
func opt(name string, kind InputKind, doc string) InputSpec { return InputSpec{name, kind, false, doc} }

var (
	kAny        = InputKind{Name: "any"}
	kString     = InputKind{Name: "string"}
	kInteger    = InputKind{Name: "integer"}
	kStringMap  = InputKind{Name: "string_map"}
	kStringList = InputKind{Name: "string_list"}
	kDuration   = InputKind{Name: "duration"}
)

func oneOf(options ...string) InputKind { return InputKind{Name: "one_of", Options: options} }

// TransformOps are the operations of builtin/transform.
var TransformOps = []string{"upper", "lower", "trim", "reverse", "length", "base64_encode", "base64_decode", "sha256", "json_pointer", "concat", "split", "replace", "to_json", "from_json"}

// HTTPMethods are the methods builtin/http may use.
var HTTPMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// Builtins is every built-in action, sorted by name.
var Builtins = []ActionSpec{
	{"builtin/artifact", "write bytes to a named storage location (which carries a region tag)", []InputSpec{
		req("name", kString, "artifact name, unique within the execution"),
		req("location", kString, "storage location name from the config"),
		req("content", kString, "the bytes to write, as text"),
		opt("encoding", oneOf("utf8", "base64"), "how content is encoded (default utf8)"),
		opt("media_type", kString, "media type (default text/plain)"),
	}, []string{"name", "digest", "size", "location", "region"}},
	{"builtin/echo", "return its message as output", []InputSpec{
		req("message", kAny, "any value"),
	}, []string{"message"}},
	{"builtin/exec", "run a command (disabled unless enabled in config)", []InputSpec{
		req("command", kStringList, "program and arguments"),
		opt("stdin", kString, "text written to standard input"),
		opt("env", kStringMap, "extra environment variables"),
	}, []string{"exit_code", "stdout", "stderr", "truncated"}},
	{"builtin/fail", "fail, optionally only for the first N attempts (for retry and chaos tests)", []InputSpec{
		opt("message", kString, "the error message"),
		opt("attempts", kInteger, "fail only the first N attempts, then succeed (default: always fail)"),
	}, []string{"attempt"}},
	{"builtin/hash", "digest a string", []InputSpec{
		req("data", kString, "the text to digest"),
		opt("algorithm", oneOf("sha256", "sha512"), "digest algorithm (default sha256)"),
	}, []string{"digest", "algorithm", "size"}},
	{"builtin/http", "call an allow-listed HTTP endpoint", []InputSpec{
		req("url", kString, "http or https URL; the host must be allow-listed"),
		opt("method", oneOf(HTTPMethods...), "HTTP method (default GET)"),
		opt("headers", kStringMap, "request headers"),
		opt("body", kAny, "request body: a string, or JSON for other values"),
		opt("expect_status", kInteger, "fail unless the response has this status (default: any 2xx)"),
	}, []string{"status", "body", "body_digest", "json"}},
	{"builtin/sleep", "wait for a duration", []InputSpec{
		req("duration", kDuration, "how long to wait"),
	}, []string{"slept_ms"}},
	{"builtin/transform", "transform a value (upper, lower, trim, json_pointer, concat, replace, …)", []InputSpec{
		req("input", kAny, "the value to transform"),
		req("op", oneOf(TransformOps...), "the operation"),
		opt("pointer", kString, "JSON pointer for json_pointer, e.g. /a/0"),
		opt("separator", kString, "separator for concat and split"),
		opt("from", kString, "text to replace, for replace"),
		opt("to", kString, "replacement text, for replace"),
	}, []string{"value"}},
}

// Builtin returns the built-in action named by a "uses" value, or nil.
func Builtin(name string) *ActionSpec {
	for i := range Builtins {
		if Builtins[i].Name == name {
			return &Builtins[i]
		}
	}
	return nil
}

// Uses is a parsed "uses" value: a built-in action or a catalog package.
type Uses struct {
	Builtin        *ActionSpec
	PackageName    string
	PackageVersion string
}

// UsesError is a "uses" value that names nothing.
type UsesError struct{ Message, Hint string }

func (e *UsesError) Error() string { return e.Message }

func builtinNames() []string {
	names := make([]string, len(Builtins))
	for i, a := range Builtins {
		names[i] = a.Name
	}
	return names
}

// ParseUses parses "builtin/NAME" or "pkg:NAME@VERSION".
func ParseUses(uses string) (Uses, error) {
	if strings.HasPrefix(uses, "pkg:") {
		rest := uses[4:]
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			return Uses{}, &UsesError{fmt.Sprintf("package reference %s has no version", rustDebug(uses)), "write pkg:NAME@VERSION, e.g. pkg:release-notes@1.0.0"}
		}
		name, version := rest[:at], rest[at+1:]
		ok := name != "" && len(name) <= 128 && isASCIIAlnum(name[0])
		for i := 0; ok && i < len(name); i++ {
			c := name[i]
			ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strings.IndexByte("._-/", c) >= 0
		}
		if !ok {
			return Uses{}, &UsesError{fmt.Sprintf("invalid package name %s", rustDebug(name)), "package names use lowercase letters, digits, '.', '_', '-' and '/'"}
		}
		v, err := ParseSemver(version)
		if err != nil {
			return Uses{}, &UsesError{fmt.Sprintf("invalid package version %s: %v", rustDebug(version), err), "use an exact semantic version, e.g. 1.0.0"}
		}
		return Uses{PackageName: name, PackageVersion: v}, nil
	}
	if spec := Builtin(uses); spec != nil {
		return Uses{Builtin: spec}, nil
	}
	names := builtinNames()
	suggestion := DidYouMean(uses, names)
	bare := "builtin/" + uses
	if suggestion == "" && Builtin(bare) != nil {
		suggestion = fmt.Sprintf(" (did you mean %s?)", rustDebug(bare))
	}
	return Uses{}, &UsesError{
		fmt.Sprintf("unknown action %s%s", rustDebug(uses), suggestion),
		fmt.Sprintf("use a built-in action (%s) or a catalog package pkg:NAME@VERSION", strings.Join(names, ", ")),
	}
}

func isASCIIAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
