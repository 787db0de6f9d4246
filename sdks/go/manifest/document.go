// Package manifest: this file owns manifest documents: YAML or JSON text to a JSON value
// with the appliance's exact rules (parse_document in src/domain/validate.rs), the ordered
// JSON value types, and the RFC 8785 (JCS) canonical form behind the document digest.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A Value is a parsed JSON value: nil, bool, int64, uint64 (above the int64 range),
// float64, string, []Value or *Object.
type Value = interface{}

// Object is a JSON object that keeps its keys in document order.
type Object struct {
	Keys   []string
	values map[string]Value
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{values: map[string]Value{}} }

// Get returns the value of a key.
func (o *Object) Get(key string) (Value, bool) {
	v, ok := o.values[key]
	return v, ok
}

// Has reports whether the object has a key.
func (o *Object) Has(key string) bool {
	_, ok := o.values[key]
	return ok
}

// Set sets a key, appending it when new.
func (o *Object) Set(key string, v Value) {
	if _, ok := o.values[key]; !ok {
		o.Keys = append(o.Keys, key)
	}
	o.values[key] = v
}

// Len is the number of keys.
func (o *Object) Len() int { return len(o.Keys) }

// MarshalJSON writes the object with its keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.Keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.values[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Limits of manifest documents.
const (
	MaxDepth         = 32
	MaxDocumentBytes = 1024 * 1024
	jsonRecursion    = 128
	maxYAMLNodes     = 250000
	maxYAMLAliases   = 50000
)

// DocumentError is text the appliance would not accept as a document; Code is "syntax" or
// "too_large", as in validation problems.
type DocumentError struct {
	Code, Message, Hint string
}

func (e *DocumentError) Error() string { return e.Message }

// ParseDocument parses YAML or JSON text (JSON when it starts with "{") into a Value.
func ParseDocument(text string) (Value, error) {
	if len(text) > MaxDocumentBytes {
		return nil, &DocumentError{"too_large", fmt.Sprintf("manifest is %d bytes; the limit is %d", len(text), MaxDocumentBytes), "split large inputs into artifacts"}
	}
	trimmed := strings.TrimLeftFunc(strings.TrimLeft(text, "\ufeff"), unicode.IsSpace)
	var v Value
	var err error
	if strings.HasPrefix(trimmed, "{") {
		v, err = parseJSON(trimmed)
	} else {
		v, err = parseYAMLDocument(text)
	}
	if err != nil {
		return nil, err
	}
	if Depth(v) > MaxDepth {
		return nil, &DocumentError{Code: "too_large", Message: fmt.Sprintf("manifest is nested deeper than %d levels", MaxDepth)}
	}
	return v, nil
}

// Depth is the nesting depth as the validator counts it.
func Depth(v Value) int {
	switch t := v.(type) {
	case []Value:
		m := 0
		for _, x := range t {
			if d := Depth(x); d > m {
				m = d
			}
		}
		return 1 + m
	case *Object:
		m := 0
		for _, k := range t.Keys {
			if d := Depth(t.values[k]); d > m {
				m = d
			}
		}
		return 1 + m
	}
	return 0
}

// --- JSON ---

func jsonSyntax(msg string) error {
	return &DocumentError{"syntax", "invalid JSON: " + msg, "check brackets, commas and quotes around that position"}
}

func parseJSON(text string) (Value, error) {
	if !utf8.ValidString(text) {
		return nil, jsonSyntax("not UTF-8")
	}
	depth, inString, escaped := 0, false, false
	for _, c := range text {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth >= jsonRecursion {
				return nil, jsonSyntax("recursion limit exceeded")
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	if strings.Contains(text, `\u`) && loneSurrogate.MatchString(text) {
		return nil, jsonSyntax("lone surrogate in a string escape")
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := readJSON(dec)
	if err != nil {
		return nil, jsonSyntax(err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, jsonSyntax("trailing characters")
	}
	return v, nil
}

var loneSurrogate = regexp.MustCompile(`\\u[dD][89abAB][0-9a-fA-F]{2}(?:[^\\]|\\[^u]|\\u[^dD]|\\u[dD][0-7c-fC-F]|$)|(?:^|[^\\]|\\[^u]|\\u[^dD].{3}|\\u[dD][0-7].{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}`)

func readJSON(dec *json.Decoder) (Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			items := []Value{}
			for dec.More() {
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return items, nil
		case '{':
			obj := NewObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("expected a string key")
				}
				if obj.Has(k) {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				obj.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return jsonNumber(string(t)), nil
	default:
		return t, nil
	}
}

// jsonNumber converts a JSON number literal as serde_json does: integers to int64 or
// uint64 when they fit, everything else to float64.
func jsonNumber(s string) Value {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// --- YAML ---

func yamlSyntax(msg string) error {
	return &DocumentError{"syntax", "invalid YAML: " + msg, "check indentation and quoting around that position"}
}

func yamlTooLarge(msg string) error {
	return &DocumentError{"too_large", "manifest exceeds the parser's limits: " + msg, "reduce nesting and alias use"}
}

func parseYAMLDocument(text string) (Value, error) {
	root, err := parseYAML(text)
	if err != nil {
		var ye *yamlError
		if errors.As(err, &ye) && strings.HasPrefix(ye.msg, "too_large: ") {
			return nil, yamlTooLarge(strings.TrimPrefix(ye.msg, "too_large: "))
		}
		return nil, yamlSyntax(err.Error())
	}
	if root == nil {
		return nil, nil
	}
	b := &builder{}
	return b.build(root, 1)
}

type builder struct {
	nodes, aliases int
}

func (b *builder) build(n *yamlNode, depth int) (Value, error) {
	if depth > maxYAMLDepth {
		return nil, yamlTooLarge("nesting too deep")
	}
	b.nodes++
	for n.kind == aliasNode {
		b.aliases++
		n = n.items[0]
	}
	if b.nodes > maxYAMLNodes || b.aliases > maxYAMLAliases {
		return nil, yamlTooLarge("too many nodes or aliases")
	}
	switch n.kind {
	case scalarNode:
		return resolveScalar(n)
	case seqNode:
		out := make([]Value, 0, len(n.items))
		for _, item := range n.items {
			v, err := b.build(b.deref(item), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return b.mapping(n, depth)
}

// deref follows aliases to their anchored node (the parser stores it as the alias's item).
func (b *builder) deref(n *yamlNode) *yamlNode {
	for n.kind == aliasNode {
		b.aliases++
		n = n.items[0]
	}
	return n
}

func (b *builder) mapping(n *yamlNode, depth int) (Value, error) {
	out := NewObject()
	merged := NewObject()
	for i, kn := range n.keys {
		vn := b.deref(n.values[i])
		if kn.kind == scalarNode && kn.value == "<<" && kn.style == plainStyle && (kn.tag == "" || kn.tag == "!!merge") {
			sources := []*yamlNode{vn}
			if vn.kind == seqNode {
				sources = nil
				for _, s := range vn.items {
					sources = append(sources, b.deref(s))
				}
			}
			for _, src := range sources {
				if src.kind != mapNode {
					return nil, yamlSyntax("merge of a non-mapping")
				}
				mv, err := b.mapping(src, depth)
				if err != nil {
					return nil, err
				}
				mo := mv.(*Object)
				for _, k := range mo.Keys {
					if !merged.Has(k) {
						merged.Set(k, mo.values[k])
					}
				}
			}
			continue
		}
		kn = b.deref(kn)
		if kn.kind != scalarNode {
			return nil, yamlSyntax("mapping keys must be scalars")
		}
		if kn.style == plainStyle && kn.tag == "" && isNullText(kn.value) {
			return nil, yamlSyntax("a mapping key is null")
		}
		key := kn.value
		if out.Has(key) {
			return nil, yamlSyntax(fmt.Sprintf("duplicate mapping key %q", key))
		}
		v, err := b.build(vn, depth+1)
		if err != nil {
			return nil, err
		}
		out.Set(key, v)
	}
	for _, k := range merged.Keys {
		if !out.Has(k) {
			out.Set(k, merged.values[k])
		}
	}
	return out, nil
}

func isNullText(s string) bool {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

var (
	floatRe       = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)
	specialFloat  = regexp.MustCompile(`(?i)^[+-]?(?:inf|infinity|nan)$`)
	errNonFinite  = errors.New("non-finite float")
	nanSpellings  = map[string]bool{".nan": true, ".NaN": true, ".NAN": true}
	infSpellings  = map[string]bool{".inf": true, ".Inf": true, ".INF": true}
	trueSpellings = map[string]bool{"true": true, "True": true, "TRUE": true}
	falseSpelling = map[string]bool{"false": true, "False": true, "FALSE": true}
)

func yamlTrim(s string) string { return strings.Trim(s, " \t\r\n") }

func underscoredDigits(digits string, radix uint64) (uint64, bool) {
	if digits == "" {
		return 0, false
	}
	var v uint64
	saw := false
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c == '_' {
			if i == 0 || digits[i-1] == '_' || i+1 >= len(digits) || digits[i+1] == '_' {
				return 0, false
			}
			continue
		}
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= radix {
			return 0, false
		}
		if v > (math.MaxUint64-d)/radix {
			return 0, false
		}
		v = v*radix + d
		saw = true
	}
	return v, saw
}

// parseYAMLInt parses an integer as serde-saphyr does (sign, 0x/0o/0b, underscores between
// digits, no leading zeros); negative values must fit int64, others uint64 (or int64 when
// signed is true).
func parseYAMLInt(t string, signed bool) (Value, bool) {
	neg := false
	rest := t
	if strings.HasPrefix(t, "-") {
		if !signed {
			return nil, false
		}
		neg, rest = true, t[1:]
	} else if strings.HasPrefix(t, "+") {
		rest = t[1:]
	}
	radix := uint64(10)
	switch {
	case strings.HasPrefix(rest, "0x"), strings.HasPrefix(rest, "0X"):
		radix, rest = 16, rest[2:]
	case strings.HasPrefix(rest, "0o"), strings.HasPrefix(rest, "0O"):
		radix, rest = 8, rest[2:]
	case strings.HasPrefix(rest, "0b"), strings.HasPrefix(rest, "0B"):
		radix, rest = 2, rest[2:]
	}
	if radix == 10 && strings.HasPrefix(rest, "0") && rest != "0" {
		return nil, false
	}
	mag, ok := underscoredDigits(rest, radix)
	if !ok {
		return nil, false
	}
	if neg {
		if mag > 1<<63 {
			return nil, false
		}
		if mag == 1<<63 {
			return int64(math.MinInt64), true
		}
		return -int64(mag), true
	}
	if signed && mag > math.MaxInt64 {
		return nil, false
	}
	if mag <= math.MaxInt64 {
		return int64(mag), true
	}
	return mag, true
}

func leadingZeroDecimal(t string) bool {
	d := t
	if strings.HasPrefix(d, "+") || strings.HasPrefix(d, "-") {
		d = d[1:]
	}
	if len(d) <= 1 || d[0] != '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// parseYAMLFloat returns a finite float, or false; errNonFinite for non-finite spellings.
func parseYAMLFloat(s string) (float64, bool, error) {
	t := yamlTrim(s)
	unsigned := t
	if strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-") {
		unsigned = t[1:]
	}
	if nanSpellings[unsigned] || infSpellings[unsigned] {
		return 0, false, errNonFinite
	}
	if floatRe.MatchString(t) || specialFloat.MatchString(t) {
		f, err := strconv.ParseFloat(t, 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, true, nil
		}
		if math.IsInf(f, 0) && unsigned != "" && unsigned[0] >= '0' && unsigned[0] <= '9' {
			return 0, false, errNonFinite
		}
	}
	return 0, false, nil
}

// resolvePlain is the value of an untagged plain scalar, as serde-saphyr infers it with
// strict booleans.
func resolvePlain(s string) (Value, error) {
	if isNullText(s) {
		return nil, nil
	}
	t := yamlTrim(s)
	if trueSpellings[t] {
		return true, nil
	}
	if falseSpelling[t] {
		return false, nil
	}
	unsigned := t
	signed := strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-")
	if signed {
		unsigned = t[1:]
	}
	if strings.HasPrefix(unsigned, "0X") || strings.HasPrefix(unsigned, "0O") || strings.HasPrefix(unsigned, "0B") || (signed && nanSpellings[unsigned]) {
		return s, nil
	}
	if strings.HasPrefix(t, "-") {
		if !leadingZeroDecimal(t) {
			if v, ok := parseYAMLInt(t, true); ok {
				return v, nil
			}
		}
	} else if v, ok := parseYAMLInt(t, false); ok {
		return v, nil
	}
	f, ok, err := parseYAMLFloat(s)
	if err != nil {
		return nil, err
	}
	if ok {
		return f, nil
	}
	return s, nil
}

func resolveScalar(n *yamlNode) (Value, error) {
	tag := n.tag
	if strings.HasPrefix(tag, "tag:yaml.org,2002:") {
		tag = "!!" + strings.TrimPrefix(tag, "tag:yaml.org,2002:")
	}
	t := yamlTrim(n.value)
	switch tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		if trueSpellings[t] {
			return true, nil
		}
		if falseSpelling[t] {
			return false, nil
		}
		return nil, yamlSyntax(fmt.Sprintf("%q is not a boolean", n.value))
	case "!!int":
		if v, ok := parseYAMLInt(t, strings.HasPrefix(t, "-")); ok {
			return v, nil
		}
		return nil, yamlSyntax(fmt.Sprintf("%q is not an integer", n.value))
	case "!!float":
		f, ok, err := parseYAMLFloat(n.value)
		if err != nil {
			return nil, yamlSyntax("non-finite float " + t)
		}
		if ok {
			return f, nil
		}
		if v, ok := parseYAMLInt(t, true); ok {
			return toFloat(v), nil
		}
		return nil, yamlSyntax(fmt.Sprintf("%q is not a float", n.value))
	case "!!str", "!":
		return n.value, nil
	}
	if n.style != plainStyle {
		return n.value, nil
	}
	v, err := resolvePlain(n.value)
	if err != nil {
		return nil, yamlSyntax(fmt.Sprintf("non-finite float %s is not allowed", t))
	}
	return v, nil
}

func toFloat(v Value) float64 {
	switch t := v.(type) {
	case int64:
		return float64(t)
	case uint64:
		return float64(t)
	case float64:
		return t
	}
	return 0
}

// --- RFC 8785 ---

// es6Number formats a float as ECMAScript's Number.prototype.toString does.
func es6Number(x float64) (string, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "", errors.New("JCS cannot encode a non-finite number")
	}
	if x == 0 {
		return "0", nil
	}
	sign := ""
	if x < 0 {
		sign, x = "-", -x
	}
	e := strconv.FormatFloat(x, 'e', -1, 64) // d.ddddde±XX
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	digits = strings.TrimRight(digits, "0")
	k := len(digits)
	n := exp + 1
	var out string
	switch {
	case k <= n && n <= 21:
		out = digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		out = digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		out = "0." + strings.Repeat("0", -n) + digits
	default:
		e := n - 1
		s := "+"
		if e < 0 {
			s, e = "-", -e
		}
		out = digits[:1]
		if k > 1 {
			out += "." + digits[1:]
		}
		out += "e" + s + strconv.Itoa(e)
	}
	return sign + out, nil
}

func jcsString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func utf16Less(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

// CanonicalJSON is the RFC 8785 (JCS) form of a value.
func CanonicalJSON(v Value) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJCS(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJCS(b *bytes.Buffer, v Value) error {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64, uint64, float64, int:
		var f float64
		if i, ok := t.(int); ok {
			f = float64(i)
		} else {
			f = toFloat(t)
		}
		s, err := es6Number(f)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case string:
		jcsString(b, t)
	case []Value:
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJCS(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *Object:
		keys := append([]string(nil), t.Keys...)
		sort.Slice(keys, func(i, j int) bool { return utf16Less(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			jcsString(b, k)
			b.WriteByte(':')
			if err := writeJCS(b, t.values[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("not a JSON value: %T", v)
	}
	return nil
}

// DocumentDigest is "sha256:<hex>" of the JCS form of a parsed manifest document.
func DocumentDigest(v Value) (string, error) {
	c, err := CanonicalJSON(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
