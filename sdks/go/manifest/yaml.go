// Package manifest: this file owns the YAML reader. Go's standard library has no YAML
// parser, so this is a small one for the YAML that manifests use: block mappings and
// sequences (including compact "- key: value" items), flow collections, plain, single- and
// double-quoted scalars, literal and folded block scalars, comments, anchors, aliases,
// merge keys and the core tags. Scalars are resolved as the appliance's reader
// (serde-saphyr with strict booleans) resolves them; see resolvePlain in document.go.
package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type nodeKind int

const (
	scalarNode nodeKind = iota
	seqNode
	mapNode
	aliasNode
)

type scalarStyle int

const (
	plainStyle scalarStyle = iota
	quotedStyle
	blockStyle
)

// yamlNode is one parsed node before scalar resolution.
type yamlNode struct {
	kind   nodeKind
	style  scalarStyle
	tag    string
	value  string // scalar text, or the alias name
	items  []*yamlNode
	keys   []*yamlNode
	values []*yamlNode
	line   int
}

// yamlError is a syntax error with its position.
type yamlError struct {
	line, col int
	msg       string
}

func (e *yamlError) Error() string {
	return fmt.Sprintf("%s at line %d column %d", e.msg, e.line, e.col)
}

const maxYAMLDepth = 64

type yamlParser struct {
	src     []rune
	pos     int
	anchors map[string]*yamlNode
	depth   int
}

func (p *yamlParser) fail(msg string, args ...interface{}) {
	line, col := 1, 1
	for i := 0; i < p.pos && i < len(p.src); i++ {
		if p.src[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	panic(&yamlError{line: line, col: col, msg: fmt.Sprintf(msg, args...)})
}

func (p *yamlParser) at(i int) rune {
	if i < 0 || i >= len(p.src) {
		return 0
	}
	return p.src[i]
}

func (p *yamlParser) peek() rune { return p.at(p.pos) }

func (p *yamlParser) eof() bool { return p.pos >= len(p.src) }

func isBlank(r rune) bool { return r == ' ' || r == '\t' }

func isBreakOrEOF(r rune) bool { return r == '\n' || r == '\r' || r == 0 }

func isBlankOrEnd(r rune) bool { return isBlank(r) || isBreakOrEOF(r) }

func (p *yamlParser) lineStart(i int) int {
	for i > 0 && p.src[i-1] != '\n' {
		i--
	}
	return i
}

func (p *yamlParser) column() int { return p.pos - p.lineStart(p.pos) }

// skipInline skips spaces, tabs and a comment up to the end of the line.
func (p *yamlParser) skipInline() {
	for isBlank(p.peek()) {
		p.pos++
	}
	if p.peek() == '#' && (p.pos == 0 || isBlankOrEnd(p.at(p.pos-1)) || p.at(p.pos-1) == 0) {
		for !isBreakOrEOF(p.peek()) {
			p.pos++
		}
	}
}

// skipLines skips blank lines, comments and indentation; returns false at the end of input
// or of the document ("..." or "---").
func (p *yamlParser) skipLines() bool {
	for {
		for p.peek() == ' ' {
			p.pos++
		}
		if p.peek() == '\t' {
			// Tabs may separate, not indent: allowed only before a comment or line end.
			q := p.pos
			for isBlank(p.at(q)) {
				q++
			}
			if !(p.at(q) == '#' || isBreakOrEOF(p.at(q))) {
				p.fail("found a tab character where indentation is expected")
			}
			p.pos = q
		}
		if p.peek() == '#' {
			for !isBreakOrEOF(p.peek()) {
				p.pos++
			}
		}
		if p.peek() == '\r' {
			p.pos++
		}
		if p.peek() == '\n' {
			p.pos++
			continue
		}
		if p.eof() {
			return false
		}
		if p.column() == 0 && p.isDocumentMarker() {
			return false
		}
		return true
	}
}

func (p *yamlParser) isDocumentMarker() bool {
	if p.column() != 0 {
		return false
	}
	s := p.pos
	if (p.at(s) == '-' && p.at(s+1) == '-' && p.at(s+2) == '-') ||
		(p.at(s) == '.' && p.at(s+1) == '.' && p.at(s+2) == '.') {
		return isBlankOrEnd(p.at(s + 3))
	}
	return false
}

// parseYAML parses one YAML document; nil means an empty document (null).
func parseYAML(text string) (root *yamlNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			if ye, ok := r.(*yamlError); ok {
				root, err = nil, ye
				return
			}
			panic(r)
		}
	}()
	if !utf8.ValidString(text) {
		return nil, &yamlError{line: 1, col: 1, msg: "invalid UTF-8"}
	}
	text = strings.TrimPrefix(text, "\ufeff")
	p := &yamlParser{src: []rune(text), anchors: map[string]*yamlNode{}}
	// Directives.
	for {
		if !p.skipLines() {
			break
		}
		if p.column() == 0 && p.peek() == '%' {
			for !isBreakOrEOF(p.peek()) {
				p.pos++
			}
			continue
		}
		break
	}
	started := false
	if p.isDocumentMarker() && p.peek() == '-' {
		p.pos += 3
		started = true
		p.skipInline()
	}
	var node *yamlNode
	if p.skipLinesOrInline(started) {
		node = p.parseNode(-1, false)
	}
	// After the document: only "..." / comments, and no second document.
	for {
		if !p.skipLines() {
			if p.eof() {
				break
			}
			if p.peek() == '.' {
				p.pos += 3
				p.skipInline()
				continue
			}
			p.fail("only one YAML document is allowed")
		}
		p.fail("unexpected content after the document")
	}
	return node, nil
}

// skipLinesOrInline moves to the first content of the document's root node.
func (p *yamlParser) skipLinesOrInline(afterMarker bool) bool {
	if afterMarker && !isBreakOrEOF(p.peek()) {
		return true
	}
	return p.skipLines()
}

// parseNode parses a block node whose first token is at the current position. parentIndent
// is the indentation of the enclosing block collection (-1 at the root). inline is true
// right after "- " or "key: " on the same line.
func (p *yamlParser) parseNode(parentIndent int, inline bool) *yamlNode {
	p.depth++
	if p.depth > maxYAMLDepth {
		panic(&yamlError{line: 0, col: 0, msg: "too_large: nesting exceeds the parser's limit"})
	}
	defer func() { p.depth-- }()
	line := p.currentLine()
	anchor, tag := p.properties()
	if anchor != "" || tag != "" {
		p.skipInline()
		if isBreakOrEOF(p.peek()) {
			// Properties alone on a line: the node follows on later lines, or is empty.
			if p.skipLines() && p.column() > parentIndent {
				n := p.parseNode(parentIndent, false)
				return p.finish(n, anchor, tag)
			}
			if p.skipLinesPeek() && p.column() == parentIndent && p.peek() == '-' && isBlankOrEnd(p.at(p.pos+1)) {
				n := p.parseBlockSeq(p.column())
				return p.finish(n, anchor, tag)
			}
			return p.finish(&yamlNode{kind: scalarNode, style: plainStyle, line: line}, anchor, tag)
		}
	}
	col := p.column()
	c := p.peek()
	var n *yamlNode
	switch {
	case c == '*':
		n = p.parseAlias()
		if p.isKeyIndicatorAhead() {
			p.fail("an alias cannot be a mapping key here")
		}
	case c == '-' && isBlankOrEnd(p.at(p.pos+1)):
		if inline && parentIndent >= 0 && !p.afterSeqIndicator() {
			p.fail("block sequence entries are not allowed here")
		}
		n = p.parseBlockSeq(col)
	case c == '?' && isBlankOrEnd(p.at(p.pos+1)):
		p.fail("explicit mapping keys (?) are not supported")
	case c == '|' || c == '>':
		n = p.parseBlockScalar(parentIndent)
	case c == '[' || c == '{':
		n = p.parseFlow()
		p.skipInline()
		if p.peek() == ':' {
			p.fail("a flow collection cannot be a mapping key")
		}
	default:
		if p.isImplicitKeyStart() {
			if inline && p.afterMapIndicator() {
				p.fail("mapping values are not allowed here")
			}
			n = p.parseBlockMap(col)
		} else {
			n = p.parseScalarValue(parentIndent)
		}
	}
	return p.finish(n, anchor, tag)
}

func (p *yamlParser) skipLinesPeek() bool {
	save := p.pos
	ok := p.skipLines()
	if !ok {
		p.pos = save
	}
	return ok
}

func (p *yamlParser) currentLine() int {
	line := 1
	for i := 0; i < p.pos && i < len(p.src); i++ {
		if p.src[i] == '\n' {
			line++
		}
	}
	return line
}

// afterSeqIndicator reports whether the current token follows "- " on its line.
func (p *yamlParser) afterSeqIndicator() bool {
	i := p.pos - 1
	for i >= 0 && isBlank(p.src[i]) {
		i--
	}
	return i >= 0 && p.src[i] == '-'
}

// afterMapIndicator reports whether the current token follows "key: " on its line.
func (p *yamlParser) afterMapIndicator() bool {
	i := p.pos - 1
	for i >= 0 && isBlank(p.src[i]) {
		i--
	}
	return i >= 0 && p.src[i] == ':'
}

func (p *yamlParser) finish(n *yamlNode, anchor, tag string) *yamlNode {
	if tag != "" {
		if n.kind == aliasNode {
			p.fail("an alias cannot have a tag")
		}
		cp := *n
		cp.tag = tag
		n = &cp
	}
	if anchor != "" {
		p.anchors[anchor] = n
	}
	return n
}

// properties reads an optional anchor (&a) and tag (!t) in either order.
func (p *yamlParser) properties() (anchor, tag string) {
	for i := 0; i < 2; i++ {
		switch p.peek() {
		case '&':
			if anchor != "" {
				p.fail("a node has two anchors")
			}
			p.pos++
			anchor = p.readName()
			if anchor == "" {
				p.fail("an anchor needs a name")
			}
			p.skipInline()
		case '!':
			if tag != "" {
				p.fail("a node has two tags")
			}
			start := p.pos
			for !isBlankOrEnd(p.peek()) && !strings.ContainsRune(",[]{}", p.peek()) {
				p.pos++
			}
			tag = string(p.src[start:p.pos])
			p.skipInline()
		}
	}
	return anchor, tag
}

func (p *yamlParser) readName() string {
	start := p.pos
	for !isBlankOrEnd(p.peek()) && !strings.ContainsRune(",[]{}", p.peek()) {
		p.pos++
	}
	return string(p.src[start:p.pos])
}

func (p *yamlParser) parseAlias() *yamlNode {
	line := p.currentLine()
	p.pos++
	name := p.readName()
	if name == "" {
		p.fail("an alias needs a name")
	}
	if _, ok := p.anchors[name]; !ok {
		p.fail("unknown anchor %q", name)
	}
	return &yamlNode{kind: aliasNode, value: name, items: []*yamlNode{p.anchors[name]}, line: line}
}

// isKeyIndicatorAhead reports whether ": " (or ":" at the end of the line) follows on this
// line after blanks.
func (p *yamlParser) isKeyIndicatorAhead() bool {
	i := p.pos
	for isBlank(p.at(i)) {
		i++
	}
	return p.at(i) == ':' && isBlankOrEnd(p.at(i+1))
}

// isImplicitKeyStart reports whether the line from the current position is "key: …".
func (p *yamlParser) isImplicitKeyStart() bool {
	save := p.pos
	defer func() { p.pos = save }()
	ok := func() (ok bool) {
		defer func() {
			if r := recover(); r != nil {
				if _, isYE := r.(*yamlError); isYE {
					ok = false
					return
				}
				panic(r)
			}
		}()
		switch p.peek() {
		case '"':
			p.parseDoubleQuoted()
		case '\'':
			p.parseSingleQuoted()
		default:
			p.scanPlainLine(false)
		}
		return true
	}()
	if !ok {
		return false
	}
	if !p.onSameLine(save) {
		return false
	}
	return p.isKeyIndicatorAhead()
}

func (p *yamlParser) onSameLine(from int) bool {
	for i := from; i < p.pos; i++ {
		if p.src[i] == '\n' {
			return false
		}
	}
	return true
}

func (p *yamlParser) parseBlockMap(indent int) *yamlNode {
	n := &yamlNode{kind: mapNode, line: p.currentLine()}
	for {
		if p.column() != indent {
			p.fail("bad indentation of a mapping entry")
		}
		key := p.parseKey()
		p.skipInline()
		if p.peek() != ':' {
			p.fail("expected ':' after a mapping key")
		}
		p.pos++
		p.skipInline()
		var value *yamlNode
		if isBreakOrEOF(p.peek()) {
			value = p.blockValue(indent)
		} else {
			value = p.parseNode(indent, true)
		}
		n.keys = append(n.keys, key)
		n.values = append(n.values, value)
		if !p.nextEntry(indent) {
			return n
		}
		if p.peek() == '-' && isBlankOrEnd(p.at(p.pos+1)) {
			p.fail("a sequence entry where a mapping key is expected")
		}
	}
}

// blockValue parses the value of "key:" whose line ends there: a more indented node, a
// sequence at the key's indentation, or null.
func (p *yamlParser) blockValue(indent int) *yamlNode {
	line := p.currentLine()
	save := p.pos
	if !p.skipLines() {
		p.pos = save
		return &yamlNode{kind: scalarNode, style: plainStyle, line: line}
	}
	col := p.column()
	if col > indent {
		return p.parseNode(indent, false)
	}
	if col == indent && p.peek() == '-' && isBlankOrEnd(p.at(p.pos+1)) {
		return p.parseBlockSeq(col)
	}
	p.pos = save
	return &yamlNode{kind: scalarNode, style: plainStyle, line: line}
}

// nextEntry moves to the next entry of a block collection at indent; false when the
// collection ends.
func (p *yamlParser) nextEntry(indent int) bool {
	p.skipInline()
	if !isBreakOrEOF(p.peek()) {
		p.fail("unexpected content after a value")
	}
	save := p.pos
	if !p.skipLines() {
		p.pos = save
		return false
	}
	col := p.column()
	if col == indent {
		return true
	}
	if col > indent {
		p.fail("bad indentation")
	}
	p.pos = save
	return false
}

func (p *yamlParser) parseKey() *yamlNode {
	line := p.currentLine()
	anchor, tag := p.properties()
	var k *yamlNode
	switch p.peek() {
	case '"':
		k = &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseDoubleQuoted(), line: line}
	case '\'':
		k = &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseSingleQuoted(), line: line}
	case '*':
		k = p.parseAlias()
	default:
		start := p.pos
		v := p.scanPlainLine(false)
		if p.pos == start {
			p.fail("expected a mapping key")
		}
		k = &yamlNode{kind: scalarNode, style: plainStyle, value: v, line: line}
	}
	return p.finish(k, anchor, tag)
}

func (p *yamlParser) parseBlockSeq(indent int) *yamlNode {
	n := &yamlNode{kind: seqNode, line: p.currentLine()}
	for {
		if p.column() != indent || p.peek() != '-' || !isBlankOrEnd(p.at(p.pos+1)) {
			p.fail("expected a sequence entry")
		}
		p.pos++
		p.skipInline()
		var item *yamlNode
		if isBreakOrEOF(p.peek()) {
			line := p.currentLine()
			save := p.pos
			if p.skipLines() && p.column() > indent {
				item = p.parseNode(indent, false)
			} else {
				p.pos = save
				item = &yamlNode{kind: scalarNode, style: plainStyle, line: line}
			}
		} else {
			item = p.parseNode(indent, true)
		}
		n.items = append(n.items, item)
		if !p.nextEntry(indent) {
			return n
		}
	}
}

// parseScalarValue parses a plain or quoted scalar in block context, which may span lines.
func (p *yamlParser) parseScalarValue(parentIndent int) *yamlNode {
	line := p.currentLine()
	switch p.peek() {
	case '"':
		return &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseDoubleQuoted(), line: line}
	case '\'':
		return &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseSingleQuoted(), line: line}
	}
	c := p.peek()
	if strings.ContainsRune(",[]{}#&*!|>%@`", c) {
		p.fail("found character %q that cannot start a plain scalar", c)
	}
	first := p.scanPlainLine(false)
	parts := []string{first}
	// Continuation lines: more indented than the parent, not a comment.
	for {
		save := p.pos
		p.skipInline()
		if !isBreakOrEOF(p.peek()) || p.at(p.pos-1) == '#' {
			p.pos = save
			break
		}
		if p.commentBefore(save) {
			p.pos = save
			break
		}
		empty := 0
		ok := false
		for {
			if p.peek() == '\r' {
				p.pos++
			}
			if p.peek() != '\n' {
				break
			}
			p.pos++
			ls := p.pos
			for p.peek() == ' ' {
				p.pos++
			}
			for isBlank(p.peek()) {
				p.pos++
			}
			if isBreakOrEOF(p.peek()) && !p.eof() {
				empty++
				continue
			}
			if p.eof() || p.peek() == '#' || p.pos-ls <= parentIndent || (p.pos == ls && p.isDocumentMarker()) {
				break
			}
			ok = true
			break
		}
		if !ok {
			p.pos = save
			break
		}
		start := p.pos
		more := p.scanPlainLine(false)
		if p.pos == start {
			p.pos = save
			break
		}
		if p.isKeyIndicatorAhead() {
			p.fail("mapping values are not allowed here")
		}
		if empty > 0 {
			parts = append(parts, strings.Repeat("\n", empty)+more)
		} else {
			parts = append(parts, " "+more)
		}
	}
	return &yamlNode{kind: scalarNode, style: plainStyle, value: strings.Join(parts, ""), line: line}
}

func (p *yamlParser) commentBefore(lineEnd int) bool {
	for i := lineEnd; i < len(p.src) && !isBreakOrEOF(p.src[i]); i++ {
		if p.src[i] == '#' {
			return true
		}
	}
	return false
}

// scanPlainLine reads a plain scalar up to the end of the line, ": ", " #" or (in flow
// context) a flow indicator; returns it without trailing blanks.
func (p *yamlParser) scanPlainLine(flow bool) string {
	start := p.pos
	end := p.pos
	for !isBreakOrEOF(p.peek()) {
		c := p.peek()
		if c == ':' {
			next := p.at(p.pos + 1)
			if isBlankOrEnd(next) || (flow && strings.ContainsRune(",[]{}", next)) {
				break
			}
		}
		if c == '#' && p.pos > start && isBlank(p.at(p.pos-1)) {
			break
		}
		if flow && strings.ContainsRune(",[]{}", c) {
			break
		}
		p.pos++
		if !isBlank(c) {
			end = p.pos
		}
	}
	p.pos = end
	return string(p.src[start:end])
}

func (p *yamlParser) parseSingleQuoted() string {
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.fail("unterminated single-quoted scalar")
		}
		c := p.peek()
		if c == '\'' {
			if p.at(p.pos+1) == '\'' {
				b.WriteRune('\'')
				p.pos += 2
				continue
			}
			p.pos++
			return b.String()
		}
		if c == '\n' || c == '\r' {
			p.foldQuotedBreak(&b)
			continue
		}
		b.WriteRune(c)
		p.pos++
	}
}

// foldQuotedBreak folds a line break inside a quoted scalar: trailing blanks before it are
// dropped, one break becomes a space, n+1 breaks become n newlines.
func (p *yamlParser) foldQuotedBreak(b *strings.Builder) {
	s := strings.TrimRight(b.String(), " \t")
	b.Reset()
	b.WriteString(s)
	breaks := 0
	for {
		if p.peek() == '\r' {
			p.pos++
		}
		if p.peek() != '\n' {
			break
		}
		p.pos++
		breaks++
		for isBlank(p.peek()) {
			p.pos++
		}
	}
	if p.eof() {
		p.fail("unterminated quoted scalar")
	}
	if p.column() == 0 && p.isDocumentMarker() {
		p.fail("document marker inside a quoted scalar")
	}
	if breaks == 1 {
		b.WriteRune(' ')
	} else {
		b.WriteString(strings.Repeat("\n", breaks-1))
	}
}

func (p *yamlParser) parseDoubleQuoted() string {
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.fail("unterminated double-quoted scalar")
		}
		c := p.peek()
		switch {
		case c == '"':
			p.pos++
			return b.String()
		case c == '\\':
			p.pos++
			e := p.peek()
			p.pos++
			switch e {
			case '0':
				b.WriteRune(0)
			case 'a':
				b.WriteRune(7)
			case 'b':
				b.WriteRune(8)
			case 't', '\t':
				b.WriteRune('\t')
			case 'n':
				b.WriteRune('\n')
			case 'v':
				b.WriteRune(11)
			case 'f':
				b.WriteRune(12)
			case 'r':
				b.WriteRune('\r')
			case 'e':
				b.WriteRune(27)
			case ' ':
				b.WriteRune(' ')
			case '"':
				b.WriteRune('"')
			case '/':
				b.WriteRune('/')
			case '\\':
				b.WriteRune('\\')
			case 'N':
				b.WriteRune(0x85)
			case '_':
				b.WriteRune(0xA0)
			case 'L':
				b.WriteRune(0x2028)
			case 'P':
				b.WriteRune(0x2029)
			case 'x', 'u', 'U':
				n := map[rune]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.pos+n > len(p.src) {
					p.fail("bad escape in a double-quoted scalar")
				}
				v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
				if err != nil || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
					p.fail("bad escape in a double-quoted scalar")
				}
				b.WriteRune(rune(v))
				p.pos += n
			case '\n', '\r':
				if e == '\r' && p.peek() == '\n' {
					p.pos++
				}
				for isBlank(p.peek()) {
					p.pos++
				}
			default:
				p.fail("unknown escape character %q", e)
			}
		case c == '\n' || c == '\r':
			p.foldQuotedBreak(&b)
		default:
			b.WriteRune(c)
			p.pos++
		}
	}
}

// parseBlockScalar parses "|" or ">" with optional chomping and indentation indicators.
func (p *yamlParser) parseBlockScalar(parentIndent int) *yamlNode {
	line := p.currentLine()
	literal := p.peek() == '|'
	p.pos++
	chomp := byte('c')
	explicit := 0
	for i := 0; i < 2; i++ {
		c := p.peek()
		if c == '+' || c == '-' {
			if chomp != 'c' {
				p.fail("two chomping indicators")
			}
			chomp = byte(c)
			p.pos++
		} else if c >= '1' && c <= '9' {
			if explicit != 0 {
				p.fail("two indentation indicators")
			}
			explicit = int(c - '0')
			p.pos++
		}
	}
	p.skipInline()
	if !isBreakOrEOF(p.peek()) {
		p.fail("unexpected text after a block scalar indicator")
	}
	indent := 0
	if explicit > 0 {
		indent = explicit
		if parentIndent >= 0 {
			indent = parentIndent + explicit
		}
	}
	var lines []string
	lastEnd := p.pos
	for p.pos < len(p.src) {
		if p.peek() == '\r' {
			p.pos++
		}
		if p.peek() != '\n' {
			break
		}
		ls := p.pos + 1
		q := ls
		for p.at(q) == ' ' {
			q++
		}
		spaces := q - ls
		if q >= len(p.src) {
			break
		}
		if isBreakOrEOF(p.at(q)) {
			if indent > 0 && spaces > indent {
				lines = append(lines, string(p.src[ls+indent:q]))
			} else {
				lines = append(lines, "")
			}
			p.pos = q
			continue
		}
		if indent == 0 {
			if spaces <= parentIndent {
				break
			}
			indent = spaces
		}
		if spaces < indent || (spaces == 0 && (p.at(q) == '#' || isDocMarkerAt(p, q))) {
			break
		}
		e := q
		for !isBreakOrEOF(p.at(e)) {
			e++
		}
		lines = append(lines, string(p.src[ls+indent:e]))
		p.pos = e
		lastEnd = e
	}
	p.pos = lastEnd
	trailing := 0
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
		trailing++
	}
	var text string
	if literal {
		text = strings.Join(lines, "\n")
	} else {
		text = foldLines(lines)
	}
	switch {
	case len(lines) > 0 && chomp == 'c':
		text += "\n"
	case len(lines) > 0 && chomp == '+':
		text += strings.Repeat("\n", trailing+1)
	case chomp == '+':
		text = strings.Repeat("\n", trailing)
	}
	return &yamlNode{kind: scalarNode, style: blockStyle, value: text, line: line}
}

func isDocMarkerAt(p *yamlParser, q int) bool {
	save := p.pos
	p.pos = q
	defer func() { p.pos = save }()
	return p.isDocumentMarker()
}

// foldLines joins the lines of a folded block scalar as libyaml does: a single break between
// two normal lines becomes a space, empty lines become newlines (the first break is
// dropped), and breaks around more-indented lines are kept.
func foldLines(lines []string) string {
	var b strings.Builder
	pending := ""
	started := false
	prevMore := false
	for _, l := range lines {
		if l == "" {
			pending += "\n"
			continue
		}
		more := l[0] == ' ' || l[0] == '\t'
		switch {
		case !started:
			b.WriteString(pending)
		case !prevMore && !more && pending == "":
			b.WriteByte(' ')
		case !prevMore && !more:
			b.WriteString(pending)
		default:
			b.WriteString("\n" + pending)
		}
		b.WriteString(l)
		pending = ""
		started = true
		prevMore = more
	}
	return b.String()
}

// --- flow collections ---

func (p *yamlParser) skipFlowSpace() {
	for {
		c := p.peek()
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '#' && (p.pos == 0 || isBlankOrEnd(p.at(p.pos-1))):
			for !isBreakOrEOF(p.peek()) {
				p.pos++
			}
		case c == 0 && p.eof():
			p.fail("unterminated flow collection")
		default:
			return
		}
	}
}

func (p *yamlParser) parseFlow() *yamlNode {
	p.depth++
	if p.depth > maxYAMLDepth {
		panic(&yamlError{msg: "too_large: nesting exceeds the parser's limit"})
	}
	defer func() { p.depth-- }()
	line := p.currentLine()
	open := p.peek()
	p.pos++
	if open == '[' {
		n := &yamlNode{kind: seqNode, line: line}
		for {
			p.skipFlowSpace()
			if p.peek() == ']' {
				p.pos++
				return n
			}
			item := p.parseFlowNode()
			p.skipFlowSpace()
			if p.peek() == ':' {
				// A single-pair mapping inside a sequence: [a: b].
				p.pos++
				v := p.flowValue(']')
				item = &yamlNode{kind: mapNode, keys: []*yamlNode{item}, values: []*yamlNode{v}, line: item.line}
				p.skipFlowSpace()
			}
			n.items = append(n.items, item)
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
			default:
				p.fail("expected ',' or ']' in a flow sequence")
			}
		}
	}
	n := &yamlNode{kind: mapNode, line: line}
	for {
		p.skipFlowSpace()
		if p.peek() == '}' {
			p.pos++
			return n
		}
		key := p.parseFlowNode()
		p.skipFlowSpace()
		value := p.emptyScalar()
		if p.peek() == ':' {
			p.pos++
			value = p.flowValue('}')
		}
		n.keys = append(n.keys, key)
		n.values = append(n.values, value)
		p.skipFlowSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			p.fail("expected ',' or '}' in a flow mapping")
		}
	}
}

func (p *yamlParser) parseFlowNode() *yamlNode {
	line := p.currentLine()
	anchor, tag := p.properties()
	p.skipFlowSpace()
	var n *yamlNode
	switch c := p.peek(); {
	case c == '[' || c == '{':
		n = p.parseFlow()
	case c == '*':
		n = p.parseAlias()
	case c == '"':
		n = &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseDoubleQuoted(), line: line}
	case c == '\'':
		n = &yamlNode{kind: scalarNode, style: quotedStyle, value: p.parseSingleQuoted(), line: line}
	case c == ',' || c == ']' || c == '}':
		if anchor == "" && tag == "" {
			p.fail("unexpected %q in a flow collection", c)
		}
		n = &yamlNode{kind: scalarNode, style: plainStyle, line: line}
	default:
		if strings.ContainsRune("#&*!|>%@`", c) || ((c == '-' || c == '?' || c == ':') && isBlankOrEnd(p.at(p.pos+1))) {
			p.fail("found character %q that cannot start a plain scalar", c)
		}
		parts := []string{}
		for {
			part := p.scanPlainLine(true)
			parts = append(parts, part)
			// Multi-line plain scalars in flow context fold like quoted ones.
			save := p.pos
			for isBlank(p.peek()) {
				p.pos++
			}
			if !(p.peek() == '\n' || p.peek() == '\r') {
				p.pos = save
				break
			}
			breaks := 0
			for p.peek() == '\n' || p.peek() == '\r' || isBlank(p.peek()) {
				if p.peek() == '\n' {
					breaks++
				}
				p.pos++
			}
			c := p.peek()
			if p.eof() || strings.ContainsRune(",[]{}#", c) || (c == ':' && (isBlankOrEnd(p.at(p.pos+1)) || strings.ContainsRune(",[]{}", p.at(p.pos+1)))) {
				p.pos = save
				break
			}
			if breaks > 1 {
				parts = append(parts, strings.Repeat("\n", breaks-1))
			} else {
				parts = append(parts, " ")
			}
		}
		n = &yamlNode{kind: scalarNode, style: plainStyle, value: strings.Join(parts, ""), line: line}
	}
	return p.finish(n, anchor, tag)
}

// flowValue reads the value after a ':' in a flow collection closed by close: empty (a null
// scalar) when a ',' or close follows at once.
func (p *yamlParser) flowValue(close rune) *yamlNode {
	p.skipFlowSpace()
	if c := p.peek(); c == ',' || c == close {
		return p.emptyScalar()
	}
	return p.parseFlowNode()
}

// emptyScalar is the plain empty scalar (null) at the current line.
func (p *yamlParser) emptyScalar() *yamlNode {
	return &yamlNode{kind: scalarNode, style: plainStyle, line: p.currentLine()}
}
